"""Scratch directories: private places for a full-size working copy, gone when the work is done.

A drill restores into one (under the destination by default: it has room for a full copy,
which /tmp often has not); `verify` and the nightly run's verify step decompress a SQLite
artifact into one under the system temp directory (or `--tmp-dir`). At tracker scale that
copy is the whole database, so it must never outlive its process:

`.safesnap-<kind>.<label>.<random>` under the root. mkdtemp makes it 0700 with a name no other
process can predict. A flocked `.lock` inside marks it live: SIGTERM and SIGINT unwind through
`scratch_dir`'s `finally` (run/interrupts.py), and what a SIGKILL or the OOM killer leaves (the
kernel releases the lock) the next `scratch_dir` of the same kind sweeps. Dot-names keep it out
of `list` and `prune`. In a shared /tmp, other users' directories are left alone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safesnap.artifacts.atomic import safe_label
from safesnap.artifacts.destination import make_private_dirs, writing_to
from safesnap.output import log

LOCK_NAME = ".lock"
# A directory without its lock file is one whose process was killed between mkdtemp and the
# lock's creation (microseconds); anything that young may still be that process's.
UNLOCKED_MIN_AGE = 60.0


def _prefix(kind: str) -> str:
    return f".safesnap-{kind}."


@contextmanager
def scratch_dir(root: Path | None, kind: str, label: str, *, sweep: bool = False) -> Iterator[Path]:
    """A fresh private directory under `root` (None: the system temp directory, `$TMPDIR`),
    removed with everything in it on exit, also when the body raises or a signal unwinds it.
    `sweep` first removes what killed processes left of the same kind under `root`."""
    root = root if root is not None else Path(tempfile.gettempdir())
    make_private_dirs(root)
    if sweep:
        sweep_scratch(root, kind)
    with writing_to(root, doing=f"create a {kind} scratch directory in"):
        path = Path(tempfile.mkdtemp(prefix=f"{_prefix(kind)}{safe_label(label)}.", dir=root))
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
        log.warning("could not remove the scratch directory %s", path)


def sweep_scratch(root: Path, kind: str) -> list[str]:
    """Remove this user's scratch directories of `kind` whose process is gone; return them."""
    if not root.is_dir():
        return []
    removed = []
    for path in sorted(root.glob(f"{_prefix(kind)}*")):
        if _abandoned(path):
            remove_tree(path)
            removed.append(str(path))
    if removed:
        log.info("removed %d %s scratch director(ies) left by a killed run", len(removed), kind)
    return removed


def _abandoned(path: Path) -> bool:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    # Not a real directory (lstat: a symlink is not), or another user's (a shared /tmp).
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return False
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return time.time() - st.st_mtime >= UNLOCKED_MIN_AGE
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its process holds the lock: alive
    finally:
        os.close(fd)
    return True
