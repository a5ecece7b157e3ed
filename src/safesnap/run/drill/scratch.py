"""The drill's scratch place: one private directory per target, gone when the target is done.

`.safesnap-drill.<target>.<random>` under the scratch root (the destination by default: it
has room for a full copy, which /tmp often has not). mkdtemp makes it 0700 with a name no
other process can predict. A flocked `.lock` inside marks it live: SIGTERM and SIGINT unwind
through `scratch_dir`'s `finally` (run/interrupts.py), and what a SIGKILL leaves (the lock is
released by the kernel) the next drill sweeps. Dot-names keep it out of `list` and `prune`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safesnap.artifacts.destination import make_private_dirs, writing_to
from safesnap.output import log

PREFIX = ".safesnap-drill."
LOCK_NAME = ".lock"
# A directory without its lock file is one a drill was killed in between mkdtemp and the
# lock's creation (microseconds); anything that young may still be that drill's.
UNLOCKED_MIN_AGE = 60.0


@contextmanager
def scratch_dir(root: Path, label: str) -> Iterator[Path]:
    """A fresh private directory under `root`, removed with everything in it on exit, also
    when the body raises or a signal unwinds it."""
    make_private_dirs(root)
    with writing_to(root, doing="create a drill scratch directory in"):
        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{label}.", dir=root))
    fd = -1
    try:
        fd = os.open(path / LOCK_NAME, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield path
    finally:
        remove_tree(path)
        if fd >= 0:
            os.close(fd)


def remove_tree(path: Path) -> None:
    """rmtree without following symlinks (a restored files tree may hold links out of it)."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not remove the drill scratch directory %s", path)


def sweep_scratch(root: Path) -> list[str]:
    """Remove scratch directories whose drill is gone; return their paths."""
    if not root.is_dir():
        return []
    removed = []
    for path in sorted(root.iterdir()):
        ours = path.name.startswith(PREFIX) and path.is_dir() and not path.is_symlink()
        if ours and not _alive(path):
            remove_tree(path)
            removed.append(str(path))
    if removed:
        log.info("removed %d drill scratch director(ies) left by a killed drill", len(removed))
    return removed


def _alive(path: Path) -> bool:
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return time.time() - path.stat().st_mtime < UNLOCKED_MIN_AGE
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
