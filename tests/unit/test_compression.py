"""Codecs: round trips, level validation, damaged streams become IntegrityError."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safesnap.artifacts.codecs import (
    CHUNK,
    check_codec,
    compressing_writer,
    decompressing_reader,
    read_chunk,
)
from safesnap.errors import ConfigError, IntegrityError

CODECS = ["zstd", "gzip", "xz", "none"]


def compress(data: bytes, codec: str, level: int | None = None) -> bytes:
    raw = io.BytesIO()
    with compressing_writer(raw, codec, level) as w:
        for i in range(0, len(data), 4096):
            w.write(data[i : i + 4096])
    assert not raw.closed  # the caller still has to fsync and rename the real file
    return raw.getvalue()


def decompress(blob: bytes, codec: str) -> bytes:
    reader = decompressing_reader(io.BytesIO(blob), codec)
    out = bytearray()
    for _ in range(10_000):  # bounded
        chunk = read_chunk(reader, CHUNK)
        if not chunk:
            break
        out += chunk
    return bytes(out)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=20_000), st.sampled_from(CODECS))
def test_round_trip(data: bytes, codec: str) -> None:
    assert decompress(compress(data, codec), codec) == data


@pytest.mark.parametrize("codec", ["zstd", "gzip", "xz"])
def test_compresses_and_levels_apply(codec: str) -> None:
    data = b"abcdefgh" * 50_000
    fast, small = compress(data, codec, 1), compress(data, codec, 9)
    assert len(fast) < len(data) // 10
    assert len(small) <= len(fast)


def test_gzip_output_is_reproducible() -> None:
    # mtime=0 and no file name in the header: same input, same bytes, same sha256.
    assert compress(b"x" * 1000, "gzip") == compress(b"x" * 1000, "gzip")


@pytest.mark.parametrize(
    ("codec", "level"), [("gzip", 10), ("zstd", 23), ("zstd", 0), ("xz", -1), ("lz4", None)]
)
def test_bad_codec_or_level_is_config_error(codec: str, level: int | None) -> None:
    with pytest.raises(ConfigError):
        check_codec(codec, level)


def test_default_levels() -> None:
    assert check_codec("zstd") == 3
    assert check_codec("none", 5) == 0


@pytest.mark.parametrize("codec", ["zstd", "gzip", "xz"])
def test_damaged_stream_is_integrity_error(codec: str) -> None:
    blob = bytearray(compress(bytes(range(256)) * 400, codec))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(IntegrityError, match="damaged"):
        decompress(bytes(blob), codec)


@pytest.mark.parametrize("codec", ["gzip", "xz"])
def test_truncated_stream_is_integrity_error(codec: str) -> None:
    blob = compress(bytes(range(256)) * 400, codec)
    with pytest.raises(IntegrityError):
        decompress(blob[: len(blob) // 2], codec)


def test_truncated_zstd_returns_short_data_silently() -> None:
    # Observed with zstandard 0.25: its stream reader ends quietly on a cut-off frame. This is
    # why artifacts compare content size and sha256 (test_artifacts covers truncation there).
    data = bytes(range(256)) * 400
    blob = compress(data, "zstd")
    out = decompress(blob[: len(blob) // 2], "zstd")
    assert data.startswith(out)
    assert len(out) < len(data)


def test_failed_write_does_not_finish_the_stream() -> None:
    raw = io.BytesIO()

    def fail() -> None:
        with compressing_writer(raw, "zstd") as w:
            w.write(b"partial")
            raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        fail()
    assert not raw.closed
