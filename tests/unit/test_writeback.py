"""Steady writeback: the artifact's bytes are all there, and its finished steps leave the page
cache as it goes (checked with util-linux `fincore`, the kernel's own residency count)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.fixtures.pagecache import HAS_FINCORE, resident

from safesnap.artifacts.writeback import SteadyWriter, drop_cache

STEP = 1 << 20
needs_fincore = pytest.mark.skipif(not HAS_FINCORE, reason="no fincore")


def write(path: Path, blocks: list[bytes], steady: bool) -> None:
    with path.open("wb") as fh:
        sink = SteadyWriter(fh, step=STEP) if steady else fh
        for block in blocks:  # bounded by the list
            sink.write(block)
        sink.flush()


def test_content_is_exact_across_step_boundaries(tmp_path: Path) -> None:
    blocks = [os.urandom(n) for n in (1, STEP - 1, 3 * STEP + 7, 12345, STEP)]
    path = tmp_path / "out"
    write(path, blocks, steady=True)
    assert path.read_bytes() == b"".join(blocks)


@needs_fincore
def test_finished_steps_leave_the_page_cache(tmp_path: Path) -> None:
    blocks = [os.urandom(256 << 10) for _ in range(64)]  # 16 MiB in 256 KiB writes
    plain, steady = tmp_path / "plain", tmp_path / "steady"
    write(plain, blocks, steady=False)
    write(steady, blocks, steady=True)
    assert resident(plain) >= 15 * STEP  # the control: a plain write stays cached
    # At most the step being written back, the unflushed remainder and the buffer remain.
    assert resident(steady) <= 3 * STEP
    fd = os.open(plain, os.O_RDONLY)
    try:
        os.fsync(fd)
        drop_cache(fd)
    finally:
        os.close(fd)
    assert resident(plain) < STEP
