"""WAL mode without a temporary copy: stream exactly the pages one read transaction sees.

docs/decisions/0008-sqlite-streamed-copy.md has the argument in full; in short:

1. Pin. Read the wal-index header H0, begin a read transaction (BEGIN + one read, which makes
   SQLite load the wal-index header and take a read lock), read the header again, H1. If
   H0 == H1 byte for byte, no commit and no WAL restart happened in between (each commit bumps
   iChange, a restart changes the salts), so the reader's snapshot is H1: the main file plus,
   for every page, its newest WAL frame at or below H1.mxFrame, `n_page` pages long.
2. Which read lock? SQLite's reader takes read-lock slot 0 ("everything is in the main file,
   ignore the WAL") exactly when nBackfill == mxFrame as it starts, else a slot i > 0 whose mark
   is <= mxFrame (wal.c walTryBeginRead). nBackfill only grows between restarts. So:
   * nBackfill read *after* BEGIN < mxFrame: slot i > 0. The WAL cannot be restarted or
     truncated while it is held (that needs every slot i > 0 exclusively) and frames are only
     appended, so frames 1..mxFrame stay as they are; checkpoints copy frames <= our mark into
     the main file, but only for pages we take from the WAL anyway.
   * nBackfill read *before* BEGIN == mxFrame: every frame is already in the main file, the
     reader reads the main file only (slot 0, which also blocks any further checkpoint from
     writing it): stream the main file alone.
   * anything else is ambiguous: release and try again (bounded).
3. Stream pages 1..n_page: runs of main-file pages read with pread, the WAL pages patched in.

The integrity check and row counts run on the same connection, inside the same transaction, so
they describe exactly the streamed bytes.
"""

from __future__ import annotations

import bisect
import io
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safesnap.artifacts.writeback import drop_cache
from safesnap.engines.sqlite import wal
from safesnap.engines.sqlite.fds import SourceFiles

PIN_ATTEMPTS = 200  # each a few hundred microseconds; a 5 ms writer collides a few % of the time
READ_BYTES = 1 << 20  # pages per pread: 1 MiB, the compressor's chunk
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Pinned:
    header: wal.IndexHeader
    index: wal.WalIndex | None  # None: the main file alone holds the snapshot (slot 0)
    attempts: int
    page_size: int
    n_page: int


class NotStreamable(Exception):
    """The snapshot cannot be streamed; the caller falls back to the copy-then-check path."""


def pin(conn: sqlite3.Connection, files: SourceFiles) -> Pinned:
    """Begin the read transaction on `conn` and work out exactly what it sees (see above).

    On success the transaction stays open (the caller ends it); on NotStreamable it is closed.
    `files` must outlive `conn` (SourceFiles).
    """
    try:
        if not Path(f"{files.source}-shm").exists():  # SQLite opens the WAL files on a first read
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        shm = files.fd("-shm")
    except OSError as exc:
        raise NotStreamable(f"cannot read the wal-index (-shm): {exc.strerror}") from None
    for attempt in range(1, PIN_ATTEMPTS + 1):  # bounded
        before = wal.read_index_header(shm)
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        after = wal.read_index_header(shm)
        slot = _classify(before, after)
        if slot is not None and after is not None:
            try:
                index = wal.index_frames(files.fd("-wal"), after) if slot else None
                return Pinned(after, index, attempt, *_layout(files.fd(), after))
            except (OSError, wal.WalFormatError) as exc:
                conn.execute("ROLLBACK")
                raise NotStreamable(f"WAL does not match the wal-index: {exc}") from None
        conn.execute("ROLLBACK")
        time.sleep(min(0.0002 * attempt, 0.005))  # let the colliding commit finish
    raise NotStreamable(f"no stable wal-index header in {PIN_ATTEMPTS} attempts")


def _classify(before: wal.IndexHeader | None, after: wal.IndexHeader | None) -> bool | None:
    """True: read through the WAL; False: main file alone; None: unknown, try again."""
    if before is None or after is None or before.raw != after.raw:
        return None
    if after.backfilled < after.max_frame:
        return True
    if before.backfilled == after.max_frame:
        return False
    return None


def _layout(db_fd: int, hdr: wal.IndexHeader) -> tuple[int, int]:
    """(page size, pages) of the snapshot. A WAL without frames leaves both 0 in the wal-index;
    SQLite then takes the main file's size (pager.c pagerPagecount), which nothing can change
    while we read: there is nothing to checkpoint and a writer would first append frames."""
    if hdr.max_frame:
        return hdr.page_size, hdr.n_page
    head = os.pread(db_fd, 100, 0)
    size = os.fstat(db_fd).st_size
    raw = int.from_bytes(head[16:18], "big")
    page_size = 65536 if raw == 1 else raw
    if page_size < 512 or page_size & (page_size - 1):
        raise wal.WalFormatError(f"bad page size {raw} in the database header")
    return page_size, size // page_size


def _ram() -> int:
    """Physical memory. A database under a quarter of it stays cached: dropping its pages
    would make the concurrent integrity check, and the application, read them from disk
    again (100 MiB, load ~9 on 2 cores: quick_check 3.4 s after a dropping stream, 2.2 s
    after a caching one)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0  # unknown: drop, the safe side for a large database


def _noreuse_works(release: str | None = None) -> bool:
    """POSIX_FADV_NOREUSE does something on Linux 6.3 and later: pages read through the
    descriptor are not promoted in the page cache, so a one-pass read of 17 GB is reclaimed
    first and evicts nothing the application uses; older kernels accept it and ignore it."""
    if not hasattr(os, "POSIX_FADV_NOREUSE"):
        return False
    parts = (release or os.uname().release).split(".")
    try:
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (6, 3)
    except (IndexError, ValueError):
        return False


def cache_policy(size: int, release: str | None = None) -> str:
    """How the stream treats the page cache for a database of `size` bytes.

    "noreuse" (Linux >= 6.3): read once, keep whatever was cached before. On 17 GiB
    (docs/benchmarks.md, "17 GiB") it read 1.8 GB from disk and took 107 s where dropping every
    piece after reading it read 9 GB and took 114 s: the concurrent integrity check, which
    follows the b-trees behind the stream, found its pages still cached. Dropping also evicts
    the application's own hot pages of the file.
    "drop" (older kernels, a database over a quarter of memory): drop each piece once read.
    "keep": leave the cache alone (small databases stay cached for the check)."""
    if _noreuse_works(release):
        return "noreuse"
    return "drop" if size > _ram() // 4 else "keep"


class PageStream(io.RawIOBase):
    """The snapshot's database file as a byte stream, read in READ_BYTES pieces."""

    def __init__(
        self, files: SourceFiles, pinned: Pinned, progress: Progress | None = None
    ) -> None:
        self.page_size = pinned.page_size
        self.n_page = pinned.n_page
        self.size = pinned.n_page * pinned.page_size
        self._frames = pinned.index.frames if pinned.index else {}
        self._wal_pages = sorted(self._frames)
        self._progress = progress
        self._next = 1  # next page number to produce
        self._db = files.fd()  # owned by `files`: never closed here (see SourceFiles)
        self.cache_policy = cache_policy(self.size)
        self._drop = self.cache_policy == "drop"
        self._wal = files.fd("-wal") if self._frames else -1
        os.posix_fadvise(self._db, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        if self.cache_policy == "noreuse":
            os.posix_fadvise(self._db, 0, 0, os.POSIX_FADV_NOREUSE)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._next > self.n_page:
            return b""
        want = READ_BYTES if size is None or size < 0 else max(size, self.page_size)
        count = min(max(1, want // self.page_size), self.n_page - self._next + 1)
        first = self._next
        data = self._pages(first, count)
        if self._drop:  # read once, on a kernel without NOREUSE (see cache_policy)
            drop_cache(self._db, (first - 1) * self.page_size, count * self.page_size)
        self._next += count
        if self._progress is not None:
            self._progress((self._next - 1) * self.page_size)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def _pages(self, first: int, count: int) -> bytes:
        """Pages first..first+count-1: the main file's bytes as read when no page of the run
        is in the WAL or past the file's end (the common case, no copy), else patched."""
        ps = self.page_size
        length = count * ps
        raw = os.pread(self._db, length, (first - 1) * ps)
        lo = bisect.bisect_left(self._wal_pages, first)
        hi = bisect.bisect_left(self._wal_pages, first + count)
        if len(raw) == length and lo == hi:
            return raw
        data = bytearray(raw)
        data.extend(bytes(length - len(raw)))  # past the main file's end: WAL pages (or zeros)
        for pgno in self._wal_pages[lo:hi]:  # bounded by the pages in this piece
            page = os.pread(self._wal, ps, self._frames[pgno])
            if len(page) != ps:
                raise wal.WalFormatError(f"WAL frame for page {pgno} is cut short")
            start = (pgno - first) * ps
            data[start : start + ps] = page
        return bytes(data)
