"""What a files target stores, and the tar stream that stores it.

Symlinks follow tar's and borg's rules:
* a path named in `paths` that is a symlink is followed: its content (a file, or a directory's
  tree) is stored under the configured path, which is what the operator named;
* inside a directory, a symlink is stored as a symlink (its target text, never followed), so a
  link to `/etc/ssl/certs` or a loop costs nothing and cannot pull in the whole disk;
* sockets, FIFOs and device nodes are skipped (reading a FIFO would block forever), and so is a
  file or directory inside the tree that cannot be read; each skip is counted with its reason.
Hard-linked files are stored as separate copies (config trees hold few, and a restore then never
depends on another entry). Only regular files and symlinks are stored; directories are
recreated from the paths below them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from safesnap.engines.files.scope import Scope, excluded, is_mysql_datadir, is_sqlite, sidecar_of
from safesnap.errors import SourceError


@dataclass(frozen=True)
class Entry:
    path: Path  # where to read it
    arcname: str  # the name in the archive: the configured path, relative to /
    link: str | None = None  # symlink target text; None for a regular file
    listed: bool = False  # named in `paths`: follow symlinks, and failing to read is an error


@dataclass
class Collection:
    entries: list[Entry] = field(default_factory=list)
    # {"path", "reason"} as the manifest records them; filled by the walk and the tar thread.
    skipped: list[dict[str, str]] = field(default_factory=list)
    excluded: int = 0  # entries matched by `exclude` (not listed one by one: may be thousands)
    copied_live: list[str] = field(default_factory=list)  # live databases archived anyway

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append({"path": str(path), "reason": reason})

    def skipped_counts(self) -> dict[str, int]:
        """Per reason keyword ("socket", "fifo", "device", "unreadable", ...) for the report."""
        counts: dict[str, int] = {}
        for item in self.skipped:
            key = item["reason"].split(":", 1)[0]
            counts[key] = counts.get(key, 0) + 1
        return counts


def arcname(path: Path) -> str:
    """The configured path, absolute and relative to `/`; symlinks in it are NOT resolved, so
    the content is stored under the name the operator wrote."""
    return os.path.abspath(path).lstrip("/")


def collect(paths: list[Path], scope: Scope | None = None) -> Collection:
    """Everything to store under `paths`, in a stable order; SourceError for a missing path.
    `scope` says what to leave out of the directory trees (engines/files/scope.py)."""
    scope = scope or Scope()
    missing = [str(p) for p in paths if not p.exists()]  # follows links: a dangling one is missing
    if missing:
        raise SourceError(f"file(s) to back up not found: {', '.join(missing)}")
    out = Collection()
    seen: set[str] = set()
    for path in paths:
        for entry in _listed(path, out, scope):
            if entry.arcname not in seen:  # overlapping paths: store each name once
                seen.add(entry.arcname)
                out.entries.append(entry)
    _drop_links_above_entries(out)
    return out


def _listed(path: Path, out: Collection, scope: Scope) -> Iterator[Entry]:
    try:
        st = path.stat()  # follows a listed symlink on purpose
    except OSError as exc:  # vanished or unreadable since the check above: the operator named it
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        yield from _walk(path, arcname(path), out, scope)
    elif stat.S_ISREG(st.st_mode):
        yield Entry(path, arcname(path), listed=True)
    else:
        out.skip(path, _special_reason(st.st_mode))


def _walk(top: Path, top_arc: str, out: Collection, scope: Scope) -> Iterator[Entry]:
    """Depth-first over `top`, sorted by name, never following a symlink below `top`."""
    stack = [(top, top_arc)]
    start = len(top_arc) + 1
    while stack:  # bounded: each directory is pushed once (no link is followed)
        directory, arc = stack.pop()
        try:
            children = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            out.skip(directory, f"unreadable: {exc.strerror}")
            continue
        subdirs: list[tuple[Path, str]] = []
        live: set[str] = set()  # live databases left out here: their sidecars follow (sorted)
        for child in children:
            path, child_arc = Path(child.path), f"{arc}/{child.name}"
            if _left_out(path, child_arc[start:], live, out, scope):
                continue
            entry = _child(path, child_arc, out)
            if isinstance(entry, Entry):
                if entry.link is None and _live_sqlite(entry, live, out, scope):
                    continue
                yield entry
            elif entry == "dir" and not _live_mysql(path, out, scope):
                subdirs.append((path, child_arc))
        stack.extend(reversed(subdirs))


def _child(path: Path, arc: str, out: Collection) -> Entry | str | None:
    try:
        arc.encode("utf-8")  # the manifest is JSON; an undecodable name cannot be recorded
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return Entry(path, arc, link=os.readlink(path))
    except UnicodeEncodeError:
        out.skip(os.fsencode(path).decode("utf-8", "replace"), "bad name: not UTF-8")
        return None
    except OSError as exc:
        out.skip(path, f"unreadable: {exc.strerror}")
        return None
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return Entry(path, arc)
    out.skip(path, _special_reason(st.st_mode))
    return None


def _left_out(path: Path, rel: str, live: set[str], out: Collection, scope: Scope) -> bool:
    """Excluded by a glob, covered by another target (or the destination), or the sidecar of
    a live database left out just before it."""
    if scope.exclude and excluded(rel, scope.exclude):
        out.excluded += 1
        return True
    who = scope.covered.get(os.path.abspath(path)) if scope.covered else None
    if who is not None:
        out.skip(path, f"covered: backed up by {who}")
        return True
    base = sidecar_of(path.name)
    if base is not None and base in live:
        out.skip(path, f"live database: sidecar of {base}, which no target backs up")
        return True
    return False


_COPY_HINT = 'set live_databases = "copy" to archive it anyway'


def _live_sqlite(entry: Entry, live: set[str], out: Collection, scope: Scope) -> bool:
    """A SQLite file in the tree that no target covers (covered ones never get here)."""
    if not is_sqlite(entry.path):
        return False
    if scope.copy_live:
        out.copied_live.append(str(entry.path))
        return False
    live.add(entry.path.name)
    out.skip(entry.path, f"live database: SQLite file no target backs up; {_COPY_HINT}")
    return True


def _live_mysql(path: Path, out: Collection, scope: Scope) -> bool:
    """True when the directory is a MySQL data directory to leave out."""
    try:
        names = os.listdir(path)
    except OSError:
        return False  # the walk reports it unreadable
    if not is_mysql_datadir(names):
        return False
    if scope.mysql_targets:
        who = ", ".join(scope.mysql_targets)
        out.skip(path, f"covered: MySQL data directory, backed up by target {who} (dump)")
        return True
    if scope.copy_live:
        out.copied_live.append(str(path))
        return False
    out.skip(path, f"live database: MySQL data directory no target backs up; {_COPY_HINT}")
    return True


def _special_reason(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "device"
    return "special"


def _drop_links_above_entries(out: Collection) -> None:
    """A link that another listed path lies below (paths = [dir, dir/link/file]) cannot be
    restored together with it: the listed path wins, the link is skipped."""
    links = {e.arcname for e in out.entries if e.link is not None}
    below = {p for e in out.entries for p in _parents(e.arcname) if p in links}
    if below:
        for entry in out.entries:
            if entry.arcname in below:
                out.skip(entry.path, "link: a listed path lies below it")
        out.entries = [e for e in out.entries if e.arcname not in below]


def _parents(name: str) -> Iterator[str]:
    parts = name.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


class _HashingReader:
    """File wrapper that hashes what tarfile reads from it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data


def write_tar(
    found: Collection, sink: BinaryIO, files: dict[str, dict[str, Any]], links: dict[str, str]
) -> None:
    """Stream every entry into a tar on `sink`; fill `files` and `links` as they go."""
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in found.entries:
            if entry.link is not None:
                tar.addfile(_link_info(entry))
                links[entry.arcname] = entry.link
                continue
            stored = _add_file(tar, entry, found)
            if stored is not None:
                files[entry.arcname] = stored


def _link_info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.arcname)
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link or "", 0o777
    with contextlib.suppress(OSError):  # gone meanwhile: the link text is what matters
        info.mtime = int(entry.path.lstat().st_mtime)
    return info


def _add_file(tar: tarfile.TarFile, entry: Entry, found: Collection) -> dict[str, Any] | None:
    """Open first and describe the opened file (no race between stat and read); O_NOFOLLOW and
    O_NONBLOCK keep a file swapped for a link or a FIFO since the walk from being followed or
    blocking. A listed file that cannot be read fails the target; one inside a tree is skipped."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if entry.listed else os.O_NOFOLLOW)
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        if entry.listed:
            raise SourceError(f"cannot read {entry.path}: {exc.strerror}") from None
        found.skip(entry.path, f"unreadable: {exc.strerror}")
        return None
    with os.fdopen(fd, "rb") as raw:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            found.skip(entry.path, _special_reason(st.st_mode))
            return None
        info = tarfile.TarInfo(entry.arcname)
        info.size, info.mode, info.mtime = st.st_size, stat.S_IMODE(st.st_mode), int(st.st_mtime)
        info.uid, info.gid = st.st_uid, st.st_gid
        reader = _HashingReader(raw)
        try:
            tar.addfile(info, reader)
        except OSError as exc:
            if exc.errno is not None:
                raise  # a real I/O error (reading, or the pipe closed by a failed consumer)
            # tarfile's "unexpected end of data": the file shrank after its size was taken,
            # and its header is already in the stream, so the archive cannot be finished.
            raise SourceError(f"{entry.path} changed while being read: {exc}") from None
    return {"bytes": info.size, "sha256": reader.hash.hexdigest()}
