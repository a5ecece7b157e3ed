"""Keep bench/provider_bench.py working: a tiny run, and its rate-limit arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import provider_bench  # noqa: E402


def test_peak_per_minute_counts_a_sliding_window() -> None:
    assert (
        provider_bench.peak_per_minute([0, 1, 59.9, 60, 61, 200]) == 3
    )  # 60 s apart: not one minute
    assert provider_bench.peak_per_minute([0, 0.5, 1, 59.9]) == 4
    assert provider_bench.peak_per_minute([]) == 0


def test_bucket_drains_one_per_request_and_refills_one_per_second() -> None:
    assert provider_bench.bucket_min([0.0] * 10, capacity=10) == 0
    assert provider_bench.bucket_min([float(i) for i in range(100)], capacity=5) == 4


@pytest.mark.slow
def test_tiny_run_stays_within_limits_and_the_spec() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "provider_bench.py"),
            "--sources",
            "2",
            "--latency",
            "0",
            "--action-seconds",
            "0.1",
            "--poll",
            "0.05",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    results = json.loads(out.stdout)["results"]
    assert [r["scenario"] for r in results] == [
        "digitalocean volumes",
        "digitalocean droplets",
        "hetzner servers",
    ]
    for r in results:
        assert r["violations"] == 0 and r["within_limit"]
        assert 1 <= r["calls_per_snapshot"] <= 20
