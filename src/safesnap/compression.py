"""Streaming codecs (zstd, gzip, xz, none) with memory bounded by the chunk size.

Every codec is driven through a file-like writer/reader pair, fed `CHUNK` bytes at a time, so a
17 GB database never sits in memory. zstd uses the `zstandard` streaming API with the frame
checksum on (a corrupt frame is caught by the codec, not only by our sha256).
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


@contextmanager
def compressing_writer(raw: IO[bytes], codec: str, level: int | None = None) -> Iterator[IO[bytes]]:
    """Yield a writer that compresses into `raw`; the stream is finished on clean exit.

    `raw` is never closed here (the caller still has to fsync and rename it).
    """
    lvl = check_codec(codec, level)
    if codec == "none":
        yield raw
        return
    writer: Any
    if codec == "zstd":
        cctx = zstandard.ZstdCompressor(level=lvl, write_checksum=True)
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


def codec_for_suffix(name: str) -> str:
    """Guess the codec from a file name (used only when a manifest does not say)."""
    for codec, suffix in SUFFIXES.items():
        if suffix and name.endswith(suffix):
            return codec
    return "none"
