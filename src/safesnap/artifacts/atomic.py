"""Atomic file creation, and the one temp-file scheme every safesnap writer uses.

The recipe is Litestream's `file/replica_client.go` and the POSIX rule that rename(2) within one
directory is atomic: write a temp file in the *same* directory (so rename never crosses a file
system), fsync it, rename it into place, then fsync the directory so the new entry itself
survives a power cut.

Every temp file safesnap creates (artifact and manifest writes, the SQLite engine's raw copy and
restore copy, report files) comes from `temp_file` and is named

    .safesnap-tmp.<label>.<16 hex>.tmp        (SQLite adds -wal / -shm / -journal beside it)

It is created with O_CREAT|O_EXCL and mode 0600 (never readable by others, never shared by two
writers), and its writer holds an exclusive flock(2) on it for its whole life: the kernel drops
the lock when the process dies, even on SIGKILL, which is how `catalog.sweep_temporaries` tells
a dead writer's leftover from a live writer's work without guessing from ages. To make that
hold from the first instant, the file is created under a claim name (`.new` instead of `.tmp`),
locked, and only then renamed to its `.tmp` name: no sweeper ever sees an unlocked `.tmp` file
of a live writer. The lock is released only after the name is gone (published or unlinked).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from safesnap.artifacts.destination import destination_error
from safesnap.errors import RefusedError
from safesnap.output import log

TEMP_PREFIX = ".safesnap-tmp."
TEMP_SUFFIX = ".tmp"
CLAIM_SUFFIX = ".new"
# Files SQLite itself creates beside a database it opens (our temp copies included).
SIDECARS = ("-wal", "-shm", "-journal")
FILE_MODE = 0o600
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_LABEL_MAX = 100  # keeps the whole name far below NAME_MAX (255) with any suffix


def safe_label(label: str) -> str:
    """`label` made fit for a file name of safesnap's own (temp files, scratch directories)."""
    return _LABEL_UNSAFE.sub("_", label)[:_LABEL_MAX] or "file"


def temp_name(label: str) -> str:
    """A fresh temp name of the scheme; `label` only says what it will become (sanitised)."""
    return f"{TEMP_PREFIX}{safe_label(label)}.{secrets.token_hex(8)}{TEMP_SUFFIX}"


def fsync_dir(directory: Path) -> None:
    """Persist a directory entry change (rename, unlink) across a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        # No flock on this file system (some FUSE mounts): the sweeper falls back to the
        # file's age there (catalog.NO_FLOCK_MIN_AGE). Backing up matters more than the mark.
        log.debug("no flock on %s (%s); sweeping it will rely on its age", path, exc.strerror)


def create_temp(directory: Path, label: str) -> tuple[Path, int]:
    """Create a 0600 temp file of the scheme in `directory`, flocked; return (path, fd).

    The caller owns the fd (closing it releases the lock) and must unlink the path before
    closing it (see `temp_file`, which does both).
    """
    path = directory / temp_name(label)
    claim = path.with_name(path.name[: -len(TEMP_SUFFIX)] + CLAIM_SUFFIX)
    try:
        fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:  # read-only, immutable, full, not a directory: the destination's fault
        raise destination_error(exc, directory, doing="create a temporary file in") from None
    try:
        _lock(fd, claim)
        os.rename(claim, path)  # appears under its sweepable name already locked
    except BaseException:
        claim.unlink(missing_ok=True)
        os.close(fd)
        raise
    return path, fd


def remove_temp(path: Path) -> None:
    """Unlink a temp file and any SQLite sidecars of it; missing files are fine."""
    for name in (str(path), *(f"{path}{suffix}" for suffix in SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def publish(tmp: Path, final: Path, *, overwrite: bool) -> None:
    """Move a finished temp file to `final` atomically; without `overwrite`, never clobber.

    A no-clobber rename is link(2) + unlink(2): link fails with EEXIST if `final` appeared in the
    meantime (another writer), which a check-then-rename cannot guarantee.
    """
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError:
        # No hard links here (some FUSE/vfat mounts): check-then-rename, racy but best available.
        if final.exists():
            raise FileExistsError(str(final)) from None
        os.rename(tmp, final)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def temp_file(directory: Path, label: str) -> Iterator[tuple[Path, BinaryIO]]:
    """A flocked 0600 temp file of the scheme in `directory`; the caller publishes it itself
    (see `publish`) or uses it as scratch.

    On every exit (clean, exception, SIGTERM/SIGINT unwinding through here) whatever is still
    under the temp name is unlinked, sidecars included, and only then is the lock released.
    """
    tmp, fd = create_temp(directory, label)
    fh = os.fdopen(fd, "wb")
    try:
        yield tmp, fh
    finally:
        try:
            remove_temp(tmp)
        finally:
            with contextlib.suppress(OSError):  # a failed flush of a discarded file is noise
                fh.close()


@contextlib.contextmanager
def atomic_write(final: Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Yield a 0600 file handle; on a clean exit the data is fsynced and appears at `final`.

    On any exception the temp file is removed and `final` is untouched. Without `overwrite`,
    an existing `final` raises RefusedError (before anything is written, and again at publish
    time if it appeared meanwhile).
    """
    if not overwrite and final.exists():
        raise RefusedError(f"{final} already exists", hint="Pass --force to replace it.")
    with temp_file(final.parent, final.name) as (tmp, fh):
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        try:
            publish(tmp, final, overwrite=overwrite)
        except FileExistsError:
            raise RefusedError(
                f"{final} already exists", hint="Pass --force to replace it."
            ) from None
    fsync_dir(final.parent)
