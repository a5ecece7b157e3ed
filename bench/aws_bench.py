"""EC2 API calls and wall time of safesnap's AWS adapter against moto's server.

Two measurements:

1. One nightly run for N volumes, as the pipeline does it: create a snapshot of every volume
   (tags at creation), wait for each (moto answers `pending` for the first describes, as EC2
   does), copy each to a DR region and wait for the copies, then prune through
   `snapshot_ops.prune_target` with keep_last=1 over a history of earlier runs.
2. Listing a plan's snapshots when the region holds many (pagination): calls and time for
   page sizes 1000 (the API maximum, what safesnap uses) and 100.

Calls are counted per operation with a botocore `before-call` hook: requests that reached the
client, i.e. API calls EC2 counts against its request-rate limits. Times are moto's (local, no
network latency; moto's filtered DescribeSnapshots is slow with many snapshots), so the call
counts are what carries over to AWS, not the seconds.

    .venv/bin/python bench/aws_bench.py                 # 10 volumes, 5 earlier runs, 300 listed
    .venv/bin/python bench/aws_bench.py --volumes 3 --listed 200
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.aws import (
    OTHER_REGION,
    REGION,
    MotoEC2,
    moto_session,
    paginate_describe,
    pending_for,
    shared_moto_endpoint,
)

from safesnap.config.plan import load_plan
from safesnap.snapshots.ops import prune_target
from safesnap_providers.aws.adapter import Aws
from safesnap_providers.base import SnapshotRequest, managed_labels


def counting(session: Any, calls: Counter[str] | None = None) -> Counter[str]:
    calls = Counter() if calls is None else calls

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    session.events.register("before-call.ec2", count)
    return calls


def nightly(volumes: int, history: int, tmp: Path) -> dict[str, Any]:
    endpoint = shared_moto_endpoint()
    setup = MotoEC2(endpoint, moto_session())  # no hooks: earlier runs are long completed
    vols = [setup.volume() for _ in range(volumes)]
    earlier = Aws(region=REGION, session=setup.session, endpoint_url=endpoint)
    for h in range(history):  # earlier runs, so prune has something to delete
        # moto stamps StartTime to the second, so runs made in one second tie; run ids that
        # sort by time (as the pipeline's timestamped ones do) break the tie the right way.
        run_id = f"20260101T0000{h:02d}Z-old"
        labels = managed_labels(plan="bench", target="db", run_id=run_id, kind="nightly")
        for v in vols:
            earlier.create_snapshot(SnapshotRequest(source_id=v, name=f"old{h}", labels=labels))
    session = moto_session()
    calls = counting(session)  # before any client exists: clients copy the session's hooks
    pending_for(session, describes=2)
    provider = Aws(
        region=REGION, session=session, endpoint_url=endpoint, max_attempts=3, poll_interval=0.05
    )
    started = time.perf_counter()
    labels = managed_labels(
        plan="bench", target="db", run_id="20261126T000000Z-now", kind="nightly"
    )
    made = [
        s
        for v in vols
        for s in provider.create_snapshot(SnapshotRequest(source_id=v, name="now", labels=labels))
    ]
    done = [provider.wait(s, timeout=60) for s in made]
    copies = [provider.copy_to_region(s, OTHER_REGION, labels) for s in done]
    for c in copies:
        provider.wait(c, timeout=60)
    after_snapshots = time.perf_counter() - started
    # Prune through a session without the `pending` hook (it would make the earlier runs look
    # unfinished on their first describe), counting into the same counter.
    prune_session = moto_session()
    counting(prune_session, calls)
    pruner = Aws(region=REGION, session=prune_session, endpoint_url=endpoint)
    plan = _plan(tmp, endpoint, vols)
    outcome = prune_target(
        plan, plan.targets[0], provider=pruner, now=datetime.now(UTC) + timedelta(minutes=1)
    )
    total = time.perf_counter() - started
    return {
        "volumes": volumes,
        "earlier_runs": history,
        "calls": dict(sorted(calls.items())),
        "total_calls": sum(calls.values()),
        "calls_per_volume": round(sum(calls.values()) / volumes, 2),
        "deleted": len(outcome.deleted),
        "kept": len(outcome.kept),
        "snapshot_and_copy_seconds": round(after_snapshots, 2),
        "total_seconds": round(total, 2),
    }


def _plan(tmp: Path, endpoint: str, vols: list[str]) -> Any:
    ids = ", ".join(f'"{v}"' for v in vols)
    path = tmp / "plan.toml"
    path.write_text(
        f'plan = "bench"\n[destination]\npath = "{tmp / "out"}"\n'
        "[retention]\nkeep_last = 1\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"
        f'[providers.aws]\nregion = "{REGION}"\nendpoint_url = "{endpoint}"\n'
        f'[[targets]]\nname = "db"\npath = "{tmp / "db.sqlite"}"\n'
        f'snapshot = {{ provider = "aws", volume_ids = [{ids}], copy_to = ["{OTHER_REGION}"] }}\n'
    )
    return load_plan(path, env_file=tmp / "none.env")


def listing(n: int, page_size: int) -> dict[str, Any]:
    endpoint = shared_moto_endpoint()
    session = moto_session()
    paginate_describe(session)
    moto = MotoEC2(endpoint, session)
    calls = counting(session)
    provider = Aws(region=REGION, session=session, endpoint_url=endpoint, page_size=page_size)
    labels = managed_labels(plan="list", target=f"t{page_size}", run_id="r", kind="nightly")
    vol = moto.volume()
    tags = [{"Key": k, "Value": v} for k, v in labels.items()]
    ec2 = moto.client()
    for _ in range(n):
        ec2.create_snapshot(
            VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}]
        )
    calls.clear()
    started = time.perf_counter()
    found = provider.list_snapshots(labels)
    return {
        "snapshots": n,
        "page_size": page_size,
        "found": len(found),
        "calls": sum(calls.values()),
        "seconds": round(time.perf_counter() - started, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=10)
    parser.add_argument("--history", type=int, default=5)
    parser.add_argument("--listed", type=int, default=300)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "nightly": nightly(args.volumes, args.history, Path(tmp)),
            "listing": [listing(args.listed, size) for size in (1000, 100)],
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
