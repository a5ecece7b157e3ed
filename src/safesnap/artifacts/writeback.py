"""Steady writeback: write a large file in flushed steps instead of one burst at fsync time.

Left alone, the kernel lets gigabytes of an artifact pile up dirty in the page cache and then
flushes them in bursts (and at our final fsync), which is when a live database's own commits
wait longest for their fsyncs (DESIGN.md; a ~200 ms writer commit at the artifact's fsync in
docs/benchmarks.md). Here every STEP bytes the step just written is handed to writeback at
once (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which neither waits nor touches the journal),
the step before it is waited for and then dropped from the page cache
(`posix_fadvise(DONTNEED)`): at most two steps are ever dirty, and the artifact does not push
the database's own pages out of memory. Where sync_file_range is missing (not Linux), the
previous step is `fdatasync`ed instead.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import IO, Any

# 1 MiB: what a live database's fsync may queue behind is at most two steps. Measured on a 1 GiB
# database under the 5 ms writer (docs/benchmarks.md, "Writeback step"): writer p99 during the
# backup 3.9-4.4 ms with 8 MiB steps, 1.7-2.7 ms with 1 MiB, no better with 512 KiB; wall time
# unchanged. Two steps in flight still keep a disk busy: at 1-2 ms per request, a 1 MiB step is
# written at hundreds of MB/s, above what the compressor produces.
STEP = 1 << 20
_WRITE = 2  # SYNC_FILE_RANGE_WRITE (linux/fs.h)
_WAIT_ALL = 1 | 2 | 4  # WAIT_BEFORE | WRITE | WAIT_AFTER: the range is on disk on return


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range through ctypes (the os module does not wrap it), or None."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_sync_file_range: Callable[[int, int, int, int], int] | bool | None = False  # False: not loaded


def sync_range(fd: int, offset: int, length: int, flags: int) -> None:
    global _sync_file_range  # loaded once, on the first artifact large enough to need it
    if _sync_file_range is False:
        _sync_file_range = _load_sync_file_range()
    func = _sync_file_range
    if callable(func) and func(fd, offset, length, flags) == 0:
        return
    if flags != _WRITE:  # no sync_file_range (or it failed): a plain data sync instead
        os.fdatasync(fd)


def drop_cache(fd: int, offset: int = 0, length: int = 0) -> None:
    """Advise the kernel to drop clean cached pages of a range (0, 0: the whole file)."""
    with contextlib.suppress(OSError, AttributeError):  # advice only; some FS refuse it
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


class SteadyWriter(io.RawIOBase):
    """Pass-through writer over a buffered file that flushes its data in STEP-sized steps."""

    def __init__(self, fh: IO[bytes], step: int = STEP) -> None:
        self._fh = fh
        self._step = step
        self._written = 0  # bytes written through us
        self._kicked = 0  # bytes handed to writeback
        self._pending: tuple[int, int] | None = None  # the step being written back

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = self._fh.write(data)
        self._written += n
        if self._written - self._kicked >= self._step:
            self._kick()
        return n

    def flush(self) -> None:
        if not self._fh.closed:
            self._fh.flush()

    def _kick(self) -> None:
        self._fh.flush()
        fd = self._fh.fileno()
        start, end = self._kicked, self._written
        sync_range(fd, start, end - start, _WRITE)
        if self._pending is not None:
            p_start, p_end = self._pending
            sync_range(fd, p_start, p_end - p_start, _WAIT_ALL)
            drop_cache(fd, p_start, p_end - p_start)
        self._pending = (start, end)
        self._kicked = end
