"""AWS EBS through moto's server on 127.0.0.1, with snapshots held `pending` for their first
describe and DescribeSnapshots paged (tests/fixtures/aws.py explains both)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safesnap_providers.aws.adapter import Aws
from tests.contract.harness import ProviderHarness
from tests.fixtures.aws import (
    OTHER_REGION,
    REGION,
    MotoEC2,
    inject_error,
    moto_session,
    paginate_describe,
    pending_for,
    shared_moto_endpoint,
)

PAGE_SIZE = 5  # DescribeSnapshots accepts 5..1000


def _dead_endpoint() -> str:
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    del tmp_path
    endpoint = shared_moto_endpoint()
    session = moto_session()
    pending_for(session, describes=1)
    paginate_describe(session)
    moto = MotoEC2(endpoint, session)
    # max_attempts=1: botocore would otherwise retry injected 5xx itself (correct in production,
    # slow here); the classification is what the contract checks.
    provider = Aws(
        region=REGION,
        session=session,
        endpoint_url=endpoint,
        max_attempts=1,
        poll_interval=0.05,
        page_size=PAGE_SIZE,
    )

    def inject(*, status: int, retry_after: float | None = None, **_: Any) -> None:
        code = "RequestLimitExceeded" if status == 429 else "InternalError"
        # EC2 throttles with HTTP 503 RequestLimitExceeded; 429 is what a proxy would send.
        inject_error(session, status=status, code=code, retry_after=retry_after)

    def foreign() -> str:
        return str(moto.client().create_snapshot(VolumeId=moto.volume())["SnapshotId"])

    def exists(snapshot_id: str) -> bool:
        found = moto.client().describe_snapshots(
            Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}]
        )
        return bool(found["Snapshots"])

    def unreachable() -> Aws:
        return Aws(
            region=REGION, session=moto_session(), endpoint_url=_dead_endpoint(), max_attempts=1
        )

    sent: list[str] = []  # every EC2 operation sent through the harness's session

    def record(model: Any, **_: Any) -> None:
        sent.append(str(model.name))

    session.events.register("before-call.ec2", record)

    def world() -> object:
        # The operations that change something, and what moto holds: volumes, and snapshots
        # labelled managed-by (moto ships ~1,300 public AMI snapshots per region, 0.7 s per
        # describe; every snapshot safesnap makes is labelled at creation).
        from safesnap_providers.base import MANAGED_BY_KEY  # the tag every one of them has

        plain = MotoEC2(endpoint, moto_session())  # no hooks: unpaged, unaltered answers
        managed = [{"Name": "tag-key", "Values": [MANAGED_BY_KEY]}]
        seen: list[object] = [[op for op in sent if not op.startswith("Describe")]]
        for region in (REGION, OTHER_REGION):
            ec2 = plain.client(region)
            snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=managed)["Snapshots"]
            seen.append(sorted((s["SnapshotId"], str(s.get("Tags"))) for s in snaps))
            seen.append(sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]))
        return seen

    yield ProviderHarness(
        provider=provider,
        make_source=lambda: (moto.volume(), "volume"),
        region=REGION,
        other_region=OTHER_REGION,
        inject=inject,
        extras={
            "make_foreign_snapshot": foreign,
            "exists": exists,
            "page_size": PAGE_SIZE,
            "make_instance": lambda: moto.instance(extra_volumes=2),
            "unreachable": unreachable,
            "missing_source": ("vol-0123456789abcdef0", "volume"),
            "zone": f"{REGION}a",
            "world": world,
        },
    )
