"""Read-only parsing of SQLite's WAL file and wal-index (-shm) header.

Formats: <https://www.sqlite.org/fileformat2.html#walformat> (WAL) and <https://www.sqlite.org/
walformat.html> (wal-index). Both are stable file formats SQLite promises to keep reading.

* The WAL starts with a 32-byte header (big-endian: magic, version, page size, checkpoint
  sequence, two salts, a checksum of the first 24 bytes). Each frame is a 24-byte header (page
  number, database size in pages after a commit or 0, the two salts, the cumulative checksum)
  followed by one page. Frames whose salts differ from the header's are leftovers of an earlier
  generation of the file.
* The wal-index header is two identical 48-byte copies of `WalIndexHdr` in native byte order at
  the start of the -shm file, then `WalCkptInfo` (nBackfill, the read marks, ...). A writer
  updates the second copy, then the first, so two equal copies with a valid checksum are a
  complete header. `iChange` grows with every commit and a WAL restart changes the salts: the
  same header read twice means no commit happened in between.
"""

from __future__ import annotations

import array
import os
import struct
import sys
from dataclasses import dataclass

WAL_HEADER_SIZE = 32
FRAME_HEADER_SIZE = 24
WAL_MAGIC = (0x377F0682, 0x377F0683)  # checksums over little- resp. big-endian words
WAL_VERSION = 3007000
_INDEX_HDR = struct.Struct("=IIIBBHII8s8s8s")  # WalIndexHdr, native order (wal.c)
_INDEX_HDR_SIZE = 48
_CKPT_INFO_OFFSET = 96  # WalCkptInfo follows the two header copies
_SHM_HEAD = _CKPT_INFO_OFFSET + 4  # through nBackfill
_MASK = 0xFFFFFFFF


class WalFormatError(Exception):
    """The WAL or wal-index does not have the shape the pinned snapshot needs."""


def checksum(data: bytes | memoryview, s1: int, s2: int, *, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum (wal.c walChecksumBytes) continued from (s1, s2).

    Pure Python runs at ~10 MiB/s, so it is used for headers; whole frames are verified this
    way only in tests (the locking argument in stream.py is what makes frames trustworthy).
    """
    words = array.array("I", bytes(data))
    if big_endian != (sys.byteorder == "big"):
        words.byteswap()
    it = iter(words)
    for x0 in it:  # bounded by the data length; pairs of 32-bit words
        x1 = next(it)
        s1 = (s1 + x0 + s2) & _MASK
        s2 = (s2 + x1 + s1) & _MASK
    return s1, s2


@dataclass(frozen=True)
class IndexHeader:
    """The wal-index header as one reader would have seen it, plus nBackfill read with it."""

    raw: bytes  # the 48 header bytes: equal raw bytes mean the same snapshot
    change: int
    page_size: int
    max_frame: int
    n_page: int
    frame_checksum: tuple[int, int]
    salt: bytes  # 8 bytes exactly as in the WAL header (wal.c copies them raw)
    backfilled: int  # WalCkptInfo.nBackfill at the time of the read


def read_index_header(shm_fd: int) -> IndexHeader | None:
    """The current wal-index header, or None when absent, uninitialised or mid-update.

    `shm_fd` must stay open until this process's SQLite connections to the database are
    closed: closing any descriptor of a file drops every POSIX lock the process holds on it,
    SQLite's read locks in the -shm included (sqlite.org/howtocorrupt.html, 2.2).
    """
    try:
        data = os.pread(shm_fd, _SHM_HEAD, 0)
    except OSError:
        return None
    if len(data) < _SHM_HEAD:
        return None
    first, second = data[:_INDEX_HDR_SIZE], data[_INDEX_HDR_SIZE : 2 * _INDEX_HDR_SIZE]
    if first != second:
        return None  # a writer is between its two copies: read again
    version, _, change, is_init, _, size, mx, n_page, fck, salt, ck = _INDEX_HDR.unpack(first)
    native_big = sys.byteorder == "big"
    if not is_init or version != WAL_VERSION:
        return None
    if checksum(first[:40], 0, 0, big_endian=native_big) != _words(ck, native_big):
        return None
    (backfilled,) = struct.unpack_from("=I", data, _CKPT_INFO_OFFSET)
    page_size = (size & 0xFE00) + ((size & 1) << 16)  # 1 encodes 65536 (wal.c)
    return IndexHeader(
        first, change, page_size, mx, n_page, _words(fck, native_big), salt, backfilled
    )


def _words(raw: bytes, big: bool) -> tuple[int, int]:
    a, b = struct.unpack(">II" if big else "<II", raw)
    return a, b


@dataclass(frozen=True)
class WalIndex:
    """Where each page's newest frame at or below the snapshot's end frame lives."""

    page_size: int
    frames: dict[int, int]  # page number -> byte offset of its page data in the WAL


def frame_offset(frame: int, page_size: int) -> int:
    """Byte offset of frame `frame`'s header (frames count from 1)."""
    return WAL_HEADER_SIZE + (frame - 1) * (FRAME_HEADER_SIZE + page_size)


def index_frames(wal_fd: int, hdr: IndexHeader) -> WalIndex:
    """Map pages to their newest frame <= hdr.max_frame, checking the WAL matches `hdr`.

    Checks: WAL header magic, version, page size, salts equal to the wal-index's, its own
    checksum; every frame 1..max_frame carries those salts; the last one is a commit frame of
    `n_page` pages whose cumulative checksum is the one the wal-index recorded for it.
    """
    head = os.pread(wal_fd, WAL_HEADER_SIZE, 0)
    big = _check_wal_header(head, hdr)
    ps = hdr.page_size
    frames: dict[int, int] = {}
    per_read = max(1, (4 << 20) // (FRAME_HEADER_SIZE + ps))
    frame = 1
    while frame <= hdr.max_frame:  # bounded by max_frame; every pass advances `frame`
        count = min(per_read, hdr.max_frame - frame + 1)
        start = frame_offset(frame, ps)
        block = os.pread(wal_fd, count * (FRAME_HEADER_SIZE + ps), start)
        if len(block) < count * (FRAME_HEADER_SIZE + ps):
            raise WalFormatError(f"WAL shorter than frame {hdr.max_frame}")
        for i in range(count):
            off = i * (FRAME_HEADER_SIZE + ps)
            pgno = _frame_page(block, off, hdr)
            frames[pgno] = start + off + FRAME_HEADER_SIZE
        frame += count
    if hdr.max_frame:
        _check_last_frame(wal_fd, hdr, big)
    return WalIndex(ps, frames)


def _check_wal_header(head: bytes, hdr: IndexHeader) -> bool:
    if len(head) < WAL_HEADER_SIZE:
        raise WalFormatError("WAL header missing")
    magic, version, page_size = struct.unpack_from(">III", head, 0)
    if magic not in WAL_MAGIC or version != WAL_VERSION:
        raise WalFormatError("not a WAL header")
    big = bool(magic == WAL_MAGIC[1])
    if page_size != hdr.page_size or head[16:24] != hdr.salt:
        raise WalFormatError("WAL header does not match the wal-index (page size or salts)")
    if checksum(head[:24], 0, 0, big_endian=big) != struct.unpack_from(">II", head, 24):
        raise WalFormatError("WAL header checksum mismatch")
    return big


def _frame_page(block: bytes, off: int, hdr: IndexHeader) -> int:
    pgno = int.from_bytes(block[off : off + 4], "big")
    if block[off + 8 : off + 16] != hdr.salt or not pgno > 0:
        raise WalFormatError("WAL frame of another generation below the snapshot's end frame")
    return pgno


def _check_last_frame(wal_fd: int, hdr: IndexHeader, big: bool) -> None:
    del big  # the stored checksum words are always big-endian in the frame header
    head = os.pread(wal_fd, FRAME_HEADER_SIZE, frame_offset(hdr.max_frame, hdr.page_size))
    commit_size = int.from_bytes(head[4:8], "big")
    stored = struct.unpack_from(">II", head, 16)
    if commit_size != hdr.n_page or stored != hdr.frame_checksum:
        raise WalFormatError("the snapshot's end frame is not the commit the wal-index records")


def verify_chain(wal_fd: int, hdr: IndexHeader) -> None:
    """Recompute the cumulative checksum of frames 1..max_frame (slow; used by tests)."""
    head = os.pread(wal_fd, WAL_HEADER_SIZE, 0)
    big = _check_wal_header(head, hdr)
    s1, s2 = struct.unpack_from(">II", head, 24)
    size = FRAME_HEADER_SIZE + hdr.page_size
    for frame in range(1, hdr.max_frame + 1):
        data = os.pread(wal_fd, size, frame_offset(frame, hdr.page_size))
        s1, s2 = checksum(data[:8], s1, s2, big_endian=big)
        s1, s2 = checksum(data[FRAME_HEADER_SIZE:], s1, s2, big_endian=big)
        if (s1, s2) != struct.unpack_from(">II", data, 16):
            raise WalFormatError(f"checksum chain broken at frame {frame}")
    if hdr.max_frame and (s1, s2) != hdr.frame_checksum:
        raise WalFormatError("chain does not end at the wal-index's frame checksum")
