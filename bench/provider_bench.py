"""API calls and wall time of one nightly snapshot run against the DigitalOcean and Hetzner fakes.

The fakes are the spec-validated ones from tests/fakes, given a realistic per-request latency
and actions that take a realistic time to finish. One run, as the pipeline does it per plan:
create every snapshot, wait for each (sequentially), list the plan's snapshots, delete one
expired snapshot per source (retention). Sources: N DigitalOcean volumes (synchronous
snapshots), N droplets (action + polling + labelling), N Hetzner servers (action + polling).

It checks the observed request timeline against each provider's published limits:
DigitalOcean 250 requests/min and 5,000/h per token; Hetzner 3,600/h per project refilled
1/s (simulated as a token bucket; the bucket must never run dry).

    .venv/bin/python bench/provider_bench.py                      # full: 200 ms, 30 s actions
    .venv/bin/python bench/provider_bench.py --latency 0.02 --action-seconds 2 --poll 0.5
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hcloud import Client
from tests.fakes.digitalocean_fake import DigitalOceanFake
from tests.fakes.hetzner_fake import HetznerFake
from tests.fakes.openapi_fake import OpenApiFake

from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.digitalocean.adapter import DigitalOcean, label_tags
from safesnap_providers.digitalocean.api import DoApi
from safesnap_providers.hetzner.adapter import Hetzner

DO_PER_MIN, DO_PER_HOUR, HZ_PER_HOUR = 250, 5000, 3600
OLD = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Result:
    scenario: str
    sources: int
    api_calls: int
    calls_per_snapshot: float
    wall_seconds: float
    peak_calls_per_min: int
    limit: str
    within_limit: bool
    violations: int


def peak_per_minute(times: list[float]) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 60:
            start += 1
        best = max(best, end - start + 1)
    return best


def bucket_min(times: list[float], capacity: int = HZ_PER_HOUR, refill: float = 1.0) -> float:
    """Lowest level of Hetzner's bucket (full at start, 1 token/s back, 1 per request)."""
    level, last, lowest = float(capacity), times[0] if times else 0.0, float(capacity)
    for t in times:
        level = min(capacity, level + (t - last) * refill) - 1
        last, lowest = t, min(lowest, level)
    return lowest


def run_plan(
    provider: Any, requests: list[SnapshotRequest], labels: dict[str, str], timeout: float
) -> None:
    created = [s for r in requests for s in provider.create_snapshot(r)]
    for snap in created:
        provider.wait(snap, timeout=timeout)
    mine = provider.list_snapshots({"plan": labels["plan"]})
    old = [s for s in mine if s.labels.get("run-id") == "old"]
    for snap in old:
        provider.delete_snapshot(snap)


def measure(
    name: str,
    fake: OpenApiFake,
    body: Callable[[], None],
    sources: int,
    check: Callable[[list[float]], tuple[str, bool]],
) -> Result:
    fake.calls.clear()
    fake.call_times.clear()
    started = time.monotonic()
    body()
    wall = time.monotonic() - started
    times = list(fake.call_times)
    limit, ok = check(times)
    return Result(
        name,
        sources,
        len(times),
        round(len(times) / sources, 2),
        round(wall, 1),
        peak_per_minute(times),
        limit,
        ok,
        len(fake.violations),
    )


def do_check(times: list[float]) -> tuple[str, bool]:
    peak = peak_per_minute(times)
    return f"DO 250/min, 5000/h (peak {peak}/min)", peak <= DO_PER_MIN and len(times) <= DO_PER_HOUR


def hz_check(times: list[float]) -> tuple[str, bool]:
    low = bucket_min(times)
    return f"Hetzner bucket 3600, 1/s (lowest {low:.0f})", low > 0


def bench_do(args: argparse.Namespace, labels: dict[str, str]) -> list[Result]:
    fake = DigitalOceanFake().start()
    fake.latency, fake.action_seconds = args.latency, args.action_seconds
    do = DigitalOcean(
        DoApi(fake.token, fake.url), poll_interval=args.poll or 10.0, max_poll_interval=60.0
    )
    try:
        vols = [fake.add_volume() for _ in range(args.sources)]
        for vid in vols:  # one expired snapshot per volume for retention to delete
            _old_do_snapshot(fake, vid, labels)
        reqs = [SnapshotRequest(v, f"nightly-{i}", labels) for i, v in enumerate(vols)]
        vol = measure(
            "digitalocean volumes",
            fake,
            lambda: run_plan(do, reqs, labels, 3600),
            args.sources,
            do_check,
        )
        drops = [fake.add_droplet() for _ in range(args.sources)]
        dreqs = [
            SnapshotRequest(str(d), f"nightly-d{i}", labels, source_kind="server")
            for i, d in enumerate(drops)
        ]
        drop = measure(
            "digitalocean droplets",
            fake,
            lambda: run_plan(do, dreqs, labels, 3600),
            args.sources,
            do_check,
        )
        return [vol, drop]
    finally:
        fake.stop()


def _old_do_snapshot(fake: DigitalOceanFake, vid: str, labels: dict[str, str]) -> None:
    sid = f"old-{vid}"
    fake.snapshots[sid] = {
        "id": sid,
        "name": "old",
        "created_at": OLD,
        "regions": ["nyc3"],
        "min_disk_size": 10,
        "size_gigabytes": 1.0,
        "resource_id": vid,
        "resource_type": "volume",
        "tags": label_tags({**labels, "run-id": "old"}),
    }


def bench_hetzner(args: argparse.Namespace, labels: dict[str, str]) -> list[Result]:
    fake = HetznerFake().start()
    fake.latency, fake.action_seconds = args.latency, args.action_seconds
    hz = Hetzner(
        Client(token=fake.token, api_endpoint=fake.url, timeout=30),
        poll_interval=args.poll or 5.0,
        max_poll_interval=30.0,
    )
    try:
        servers = [fake.add_server() for _ in range(args.sources)]
        for sid in servers:
            image = fake._new_image(fake.servers[sid], {"labels": {**labels, "run-id": "old"}})
            image["status"] = "available"
        reqs = [
            SnapshotRequest(str(s), f"nightly-{i}", labels, source_kind="server")
            for i, s in enumerate(servers)
        ]
        return [
            measure(
                "hetzner servers",
                fake,
                lambda: run_plan(hz, reqs, labels, 3600),
                args.sources,
                hz_check,
            )
        ]
    finally:
        fake.stop()


def machine() -> dict[str, str]:
    import os

    return {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=20, help="volumes/droplets/servers")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per API call")
    parser.add_argument("--action-seconds", type=float, default=30.0, help="action duration")
    parser.add_argument(
        "--poll",
        type=float,
        default=None,
        help="first poll interval (default: the settings' 10 s DO / 5 s Hetzner)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    labels = managed_labels(plan="bench", target="db", run_id="now", kind="nightly")
    results = bench_do(args, labels) + bench_hetzner(args, labels)
    if args.json:
        print(
            json.dumps(
                {"machine": machine(), "args": vars(args), "results": [asdict(r) for r in results]},
                indent=2,
            )
        )
        return
    print(f"machine: {machine()}  args: {vars(args)}")
    print(
        "| scenario | sources | API calls | calls/snapshot | wall s | peak calls/min | limit | ok |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r.scenario} | {r.sources} | {r.api_calls} | {r.calls_per_snapshot} | "
            f"{r.wall_seconds} | {r.peak_calls_per_min} | {r.limit} | "
            f"{'yes' if r.within_limit and not r.violations else 'NO'} |"
        )


if __name__ == "__main__":
    main()
