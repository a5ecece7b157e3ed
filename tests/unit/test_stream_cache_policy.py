"""How the streamed SQLite copy treats the page cache (engines/sqlite/stream.cache_policy)."""

from __future__ import annotations

import pytest

from safesnap.engines.sqlite import stream

GIB = 1 << 30


@pytest.mark.parametrize("release", ["6.3.0", "6.18.44-fc-v1252", "7.0.1-arch1"])
def test_kernels_with_noreuse_keep_what_was_cached(release: str) -> None:
    assert stream.cache_policy(17 * GIB, release) == "noreuse"
    assert stream.cache_policy(1 << 20, release) == "noreuse"


@pytest.mark.parametrize("release", ["6.2.16", "5.15.0-91-generic", "4.19.0", "garbage"])
def test_older_kernels_drop_a_large_database_and_keep_a_small_one(
    release: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "_ram", lambda: 8 * GIB)
    assert stream.cache_policy(3 * GIB, release) == "drop"
    assert stream.cache_policy(GIB, release) == "keep"
