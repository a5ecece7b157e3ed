"""Streaming codecs (zstd, gzip, xz, none) with memory bounded by the chunk size.

Every codec is driven through a file-like writer/reader pair, fed `CHUNK` bytes at a time, so a
17 GB database never sits in memory. zstd uses the `zstandard` streaming API with the frame
checksum on (a corrupt frame is caught by the codec, not only by our sha256).

zstd compresses on `threads` worker threads of its own (libzstd's job mode), never in the calling
thread: with the default of one worker this is what `zstd -T1` does, so reading, hashing and
writing in the caller overlap with compression. The synchronous API (no workers) runs at the
speed of `zstd --single-thread`, which on 1 GiB was ~1.5x slower than `zstd -T1` (measured, see
docs/benchmarks.md, "SQLite"). At the fast levels (1-4) jobs are `ZSTD_JOB_SIZE` instead of
zstd's default 4x the window (8 MiB at level 3): measured on 1 GiB, 12% less CPU, the same
wall time and ratio (+0.005%), and less memory (peak RSS of a bare python-zstandard process:
28 MiB instead of 54 with one worker, 37 instead of 90 with two).
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO, cast

import zstandard

from safesnap.errors import ConfigError, IntegrityError

CHUNK = 1024 * 1024  # 1 MiB: large enough for codec throughput, small enough to not matter
SUFFIXES = {"zstd": ".zst", "gzip": ".gz", "xz": ".xz", "none": ""}
# zstd's own default (3) is the fast, good-ratio point; gzip 6 and xz 6 are their tools' defaults.
DEFAULT_LEVELS = {"zstd": 3, "gzip": 6, "xz": 6, "none": 0}
LEVEL_RANGES = {"zstd": (1, 22), "gzip": (1, 9), "xz": (0, 9), "none": (0, 0)}
MAX_THREADS = 16  # compression worker threads; 0 means one per core (zstd only)
ZSTD_JOB_SIZE = 2 * 1024 * 1024  # >= the window of levels 1-4, so a job's overlap is 1/8 of it
# What a damaged stream raises inside each codec; mapped to IntegrityError for callers.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    zstandard.ZstdError,
    lzma.LZMAError,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
)


def check_codec(codec: str, level: int | None = None) -> int:
    """Validate the codec name and level; return the level to use."""
    if codec not in SUFFIXES:
        raise ConfigError(
            f"unknown compression {codec!r}; choose one of: {', '.join(SUFFIXES)}",
        )
    if level is None or codec == "none":
        return DEFAULT_LEVELS[codec]
    low, high = LEVEL_RANGES[codec]
    if not low <= level <= high:
        raise ConfigError(f"compression level {level} is out of range for {codec} ({low}-{high})")
    return level


def check_threads(threads: int) -> int:
    """Validate a compression thread count; return python-zstandard's `threads` value for it."""
    if not 0 <= threads <= MAX_THREADS:
        raise ConfigError(f"compression threads {threads} is out of range (0-{MAX_THREADS})")
    return -1 if threads == 0 else threads  # zstandard: -1 = one per logical CPU


@contextmanager
def compressing_writer(
    raw: IO[bytes], codec: str, level: int | None = None, threads: int = 1
) -> Iterator[IO[bytes]]:
    """Yield a writer that compresses into `raw`; the stream is finished on clean exit.

    `threads` is the number of zstd compression workers (0: one per core); gzip, xz and none
    ignore it. `raw` is never closed here (the caller still has to fsync and rename it).
    """
    lvl = check_codec(codec, level)
    workers = check_threads(threads)
    if codec == "none":
        yield raw
        return
    writer: Any
    if codec == "zstd":
        cctx = zstandard.ZstdCompressor(compression_params=zstd_parameters(lvl, workers))
        writer = cctx.stream_writer(raw, closefd=False)
    elif codec == "gzip":
        # mtime=0 and no file name: identical input gives an identical file (reproducible sha256).
        writer = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=lvl, mtime=0)
    else:
        writer = lzma.LZMAFile(raw, mode="wb", preset=lvl, format=lzma.FORMAT_XZ)  # noqa: SIM115
    ok = False
    try:
        yield cast(IO[bytes], writer)
        ok = True
    finally:
        if ok:
            writer.close()  # writes the end of the stream; does not close `raw`
        else:
            _close_quietly(writer)


def zstd_parameters(level: int, workers: int) -> zstandard.ZstdCompressionParameters:
    """Level `level` with the frame checksum on and `workers` compression threads."""
    params = zstandard.ZstdCompressionParameters
    fast = params.from_level(level).strategy <= zstandard.STRATEGY_DFAST
    return params.from_level(
        level,
        write_checksum=True,
        threads=workers,
        job_size=ZSTD_JOB_SIZE if fast else 0,  # 0: zstd's default
    )


def _close_quietly(writer: Any) -> None:
    # Already failing; the temp file is being discarded anyway, so a second error is noise.
    with contextlib.suppress(Exception):
        writer.close()


def decompressing_reader(raw: IO[bytes], codec: str) -> BinaryIO:
    """A reader yielding the original bytes of `raw`; does not close `raw` when closed
    (zstd: closefd=False; gzip/xz never close a passed-in file object)."""
    check_codec(codec)
    if codec == "none":
        return cast(BinaryIO, raw)
    if codec == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_size=CHUNK, read_across_frames=True, closefd=False
        )
        return cast(BinaryIO, reader)
    if codec == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    return cast(BinaryIO, lzma.LZMAFile(raw, mode="rb", format=lzma.FORMAT_XZ))


def read_chunk(reader: IO[bytes], size: int = CHUNK) -> bytes:
    """One chunk of decompressed data; codec errors become IntegrityError."""
    try:
        return reader.read(size)
    except DECODE_ERRORS as exc:
        raise IntegrityError(
            f"compressed data is damaged ({type(exc).__name__}: {exc})",
            hint="The artifact cannot be trusted; restore from another backup.",
        ) from None
