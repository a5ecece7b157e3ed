"""Writing where backups (or restores) go: private directories and one mapping of OS errors.

Every place that writes into a destination (the artifact writer, the SQLite raw copy, the run
lock, a restore's staging directory) turns an OSError on a destination path into the same
`destination_failed` error (exit 12): one line naming the path and the OS reason, and a hint
that fits the reason. A full disk is therefore never reported as a damaged artifact, and a
destination that is a regular file, read-only or immutable never ends in a traceback.

Directories safesnap creates are 0700 whatever the umask, including missing parents (the
backups hold every secret the service has); directories that already exist are left as they are.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safesnap.errors import DestinationError

DIR_MODE = 0o700
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_ACCESS = {errno.EACCES, errno.EPERM}
_SHAPE = {errno.ENOTDIR, errno.EEXIST, errno.EISDIR}


def _hint(err: int | None) -> str:
    if err in SPACE_ERRNOS:
        return "The destination is full (or over a quota or file-size limit): free space."
    if err == errno.EROFS:
        return "The destination is mounted read-only: remount it read-write."
    if err in _ACCESS:
        return "No permission (or the immutable attribute is set: lsattr): fix the destination."
    if err in _SHAPE:
        return "A path component is a regular file where a directory is needed (or vice versa)."
    return "Check free space, permissions and mount state of the destination."


def destination_error(exc: OSError, path: Path | str, *, doing: str = "write") -> DestinationError:
    """The `destination_failed` error for `exc`, raised while doing `doing` on `path`.

    The path the OS names (exc.filename) wins: it is the component that actually failed.
    """
    where = exc.filename if exc.filename else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    return destination_failed(where, reason, err=exc.errno, doing=doing)


def destination_failed(
    path: Path | str, reason: str, *, err: int | None = None, doing: str = "write"
) -> DestinationError:
    """The same error where there is no OSError to map (SQLite reports "disk is full")."""
    return DestinationError(f"cannot {doing} {path}: {reason}", hint=_hint(err))


@contextmanager
def writing_to(path: Path | str, *, doing: str = "write") -> Iterator[None]:
    """Map any OSError raised inside the block to DestinationError (for destination-only code)."""
    try:
        yield
    except OSError as exc:
        raise destination_error(exc, path, doing=doing) from None


def make_private_dirs(path: Path) -> Path:
    """Create `path` and any missing parents, each 0700; DestinationError when impossible."""
    try:
        _make(Path(os.path.abspath(path)))
    except OSError as exc:
        raise destination_error(exc, path, doing="create directory") from None
    return path


def _make(path: Path) -> None:
    if path.is_dir():
        return
    if path.parent != path:
        _make(path.parent)  # bounded by the number of components of the path
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if path.is_dir():
            return  # created meanwhile by a concurrent run: fine
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
    os.chmod(path, DIR_MODE)  # mkdir applies the umask; the mode must not depend on it


def write_all(fd: int, data: bytes) -> None:
    """write(2) may write less than asked (a filling tmpfs writes what fits and returns the
    count, observed here); the next write then reports ENOSPC. Never drop the rest silently."""
    view = memoryview(data)
    while view:  # bounded: every pass writes > 0 bytes or raises
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]
