"""Reading a files artifact's tar back: what may be in it, and extracting it without escaping.

The tar is checked entry by entry before anything trusts it, on verify and on restore alike:
only regular files and symlinks (what safesnap writes), only relative names without `.` or `..`
components, each name once, nothing below a symlink or a file. Anything else is a crafted or
damaged artifact: IntegrityError (exit 5), so verify marks it unverified and restore writes
nothing.

Extraction writes into a private staging directory only: regular files first, created with
O_CREAT|O_EXCL|O_NOFOLLOW below directories it created itself (each component checked with
lstat), then the symlinks, last, so no file is ever written through a link (GNU tar's "delayed
symlinks"). A link's target is recreated as text and never followed, wherever it points.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from safesnap.artifacts.codecs import CHUNK
from safesnap.artifacts.destination import destination_error, write_all
from safesnap.errors import IntegrityError

_MAX_NAME = 4096  # PATH_MAX: longer names cannot be created anywhere
_MAX_PART = 255  # NAME_MAX


@dataclass
class Contents:
    files: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (bytes, sha256)
    links: dict[str, str] = field(default_factory=dict)  # name -> target text


def _unsafe(artifact: str, member: tarfile.TarInfo, why: str) -> IntegrityError:
    return IntegrityError(
        f"{artifact}: entry {member.name!r} {why}; safesnap never writes this, refusing it",
        hint="The archive was crafted or damaged; restore from another backup.",
    )


def check_member(artifact: str, member: tarfile.TarInfo) -> None:
    """IntegrityError unless `member` is a plain file or symlink under a safe relative name."""
    name = member.name
    parts = name.split("/")
    if not name or name.startswith("/"):
        raise _unsafe(artifact, member, "has an absolute or empty name")
    if any(p in ("", ".", "..") for p in parts):
        raise _unsafe(artifact, member, "has '.', '..' or empty components")
    if len(name.encode()) > _MAX_NAME or any(len(p.encode()) > _MAX_PART for p in parts):
        raise _unsafe(artifact, member, "has a name longer than the system allows")
    if member.issym():
        if not member.linkname or "\0" in member.linkname:
            raise _unsafe(artifact, member, "is a symlink without a target")
        return
    if not member.isreg() or member.issparse():
        raise _unsafe(artifact, member, f"is a {_kind(member)}, not a file or symlink")


def _kind(member: tarfile.TarInfo) -> str:
    kinds = ((member.islnk, "hard link"), (member.isdir, "directory"), (member.isdev, "device"))
    return next((label for test, label in kinds if test()), f"type {member.type!r} entry")


def check_layout(artifact: str, contents: Contents) -> None:
    """No entry may lie below a symlink or a file: extracting it would need to go through one."""
    names = set(contents.files) | set(contents.links)
    for name in sorted(names):
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in names:
                raise IntegrityError(
                    f"{artifact}: entry {name!r} lies below {parent!r}, which is not a directory",
                    hint="The archive was crafted or damaged; restore from another backup.",
                )


def _members(artifact: str, stream: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Checked members with their content (None for a symlink); duplicates are refused."""
    seen: set[str] = set()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            check_member(artifact, member)
            if member.name in seen:
                raise _unsafe(artifact, member, "appears twice")
            seen.add(member.name)
            yield member, None if member.issym() else tar.extractfile(member)


@contextmanager
def _tar_errors(artifact: str) -> Iterator[None]:
    """tarfile raises while iterating and while reading a member's data: both mean damage."""
    try:
        yield
    except tarfile.TarError as exc:
        raise IntegrityError(
            f"{artifact}: not a readable tar archive ({exc})",
            hint="The artifact is damaged; restore from another backup.",
        ) from None
    except OSError as exc:
        if exc.errno is not None:
            raise
        # tarfile's own "unexpected end of data" is a bare OSError: a truncated archive.
        raise IntegrityError(f"{artifact}: the tar archive is truncated ({exc})") from None


def read_contents(artifact: str, stream: BinaryIO) -> Contents:
    """Every entry's size and sha256 (files) or target (links), checked as above."""
    out = Contents()
    with _tar_errors(artifact):
        for member, content in _members(artifact, stream):
            if content is None:
                out.links[member.name] = member.linkname
            else:
                out.files[member.name] = (member.size, _sha256(content))
    check_layout(artifact, out)
    return out


def _sha256(content: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := content.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def extract(artifact: str, stream: BinaryIO, staging: Path) -> Contents:
    """Extract into `staging` (an empty private directory): files first, then the links."""
    out = Contents()
    links: list[tarfile.TarInfo] = []
    with _tar_errors(artifact):
        for member, content in _members(artifact, stream):
            if content is None:
                out.links[member.name] = member.linkname
                links.append(member)
            else:
                _write_file(artifact, staging, member, content)
                out.files[member.name] = (member.size, "")
    check_layout(artifact, out)
    for member in links:
        _make_link(artifact, staging, member)
    return out


def _parent_dir(artifact: str, staging: Path, member: tarfile.TarInfo) -> Path:
    """The member's parent inside staging, created 0700; every component must be a real
    directory (lstat), never a link or a file, so nothing below can land outside `staging`."""
    current = staging
    for part in member.name.split("/")[:-1]:
        current = current / part
        try:
            os.mkdir(current, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise _unsafe(artifact, member, f"lies below {part!r}, not a directory") from None
        except OSError as exc:
            raise destination_error(exc, current, doing="create directory") from None
    return current


def _file_mode(member: tarfile.TarInfo) -> int:
    """tarfile's `data` filter rule: no setuid/setgid/sticky, no group/other write, owner rw."""
    mode = member.mode & 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def _write_file(artifact: str, staging: Path, member: tarfile.TarInfo, content: IO[bytes]) -> None:
    path = _parent_dir(artifact, staging, member) / member.name.rsplit("/", 1)[-1]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise _unsafe(artifact, member, "collides with another entry") from None
    except OSError as exc:
        raise destination_error(exc, path) from None
    try:
        while chunk := content.read(CHUNK):  # reading: tar/codec errors stay what they are
            _write_all(fd, chunk, path)
        _finish(fd, path, _file_mode(member), member.mtime)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, path: Path) -> None:
    try:
        write_all(fd, data)
    except OSError as exc:
        raise destination_error(exc, path) from None


def _finish(fd: int, path: Path, mode: int, mtime: float) -> None:
    try:
        os.fchmod(fd, mode)
        os.utime(fd, (mtime, mtime))
        os.fsync(fd)
    except OSError as exc:
        raise destination_error(exc, path) from None


def _make_link(artifact: str, staging: Path, member: tarfile.TarInfo) -> None:
    path = _parent_dir(artifact, staging, member) / member.name.rsplit("/", 1)[-1]
    try:
        os.symlink(member.linkname, path)
    except FileExistsError:
        raise _unsafe(artifact, member, "collides with another entry") from None
    except OSError as exc:
        raise destination_error(exc, path) from None
    try:  # the link's own time; never the target's (follow_symlinks=False)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    except OSError as exc:
        raise destination_error(exc, path) from None
