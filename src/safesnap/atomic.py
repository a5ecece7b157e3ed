"""Atomic file creation: a crash at any point leaves the complete file or nothing visible.

The recipe is Litestream's `file/replica_client.go` and the POSIX rule that rename(2) within one
directory is atomic: write a temp file in the *same* directory (so rename never crosses a file
system), fsync it, rename it into place, then fsync the directory so the new entry itself
survives a power cut. The temp file is created with O_CREAT|O_EXCL and mode 0600, so its content
is never readable by other users, not even for a moment, and two writers never share one.

Temp names start with `.` and end with `.tmp` (`TEMP_PREFIX`/`TEMP_SUFFIX`), so listings skip
them and `catalog.sweep_temporaries` can find what a killed process left behind. The writer holds
an exclusive flock on its temp file for its whole life; the kernel drops it when the process
dies, which is how the sweeper tells a dead writer's leftovers from a live writer's work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from safesnap.errors import RefusedError

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"
FILE_MODE = 0o600


def temp_path_for(final: Path) -> Path:
    """A fresh hidden temp name beside `final` (random part: no two writers collide)."""
    return final.parent / f"{TEMP_PREFIX}{final.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def fsync_dir(directory: Path) -> None:
    """Persist a directory entry change (rename, unlink) across a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_exclusive(path: Path) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    fd = os.open(path, flags, FILE_MODE)
    # Marks the temp as "writer alive" for sweep_temporaries; the kernel releases it on death.
    # File systems without flock: the sweeper falls back to the file's age.
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return os.fdopen(fd, "wb")


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
def atomic_write(final: Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Yield a 0600 file handle; on a clean exit the data is fsynced and appears at `final`.

    On any exception the temp file is removed and `final` is untouched. Without `overwrite`,
    an existing `final` raises RefusedError (before anything is written, and again at publish
    time if it appeared meanwhile).
    """
    if not overwrite and final.exists():
        raise RefusedError(f"{final} already exists", hint="Pass --force to replace it.")
    tmp = temp_path_for(final)
    fh = _open_exclusive(tmp)
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            publish(tmp, final, overwrite=overwrite)
        except FileExistsError:
            raise RefusedError(
                f"{final} already exists", hint="Pass --force to replace it."
            ) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(final.parent)


@contextlib.contextmanager
def temp_file(directory: Path, stem: str) -> Iterator[tuple[Path, BinaryIO]]:
    """A 0600 hidden temp file in `directory` that the caller publishes itself (see `publish`).

    Removed on any exception, and also on a clean exit if the caller did not move it away.
    """
    tmp = temp_path_for(directory / stem)
    fh = _open_exclusive(tmp)
    try:
        with fh:
            yield tmp, fh
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
