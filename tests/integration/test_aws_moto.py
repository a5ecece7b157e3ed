"""The AWS adapter against moto's EC2 server: instance sets, cross-region copies with tags,
restores, pagination, and retries that never duplicate a snapshot."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from tests.fixtures.aws import (
    OTHER_REGION,
    REGION,
    MotoEC2,
    inject_error,
    paginate_describe,
    pending_for,
)

from safesnap.config.plan import load_plan
from safesnap.errors import ProviderError, ProviderTimeoutError
from safesnap_providers.aws.adapter import Aws
from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.registry import build_provider
from safesnap_providers.retry import RetryPolicy
from safesnap_providers.wrappers import unwrap

NO_WAIT = RetryPolicy(sleep=lambda s: None, jitter=0)


def _provider(moto: MotoEC2, **kw: Any) -> Aws:
    return Aws(
        region=REGION,
        session=moto.session,
        endpoint_url=moto.endpoint,
        max_attempts=1,
        poll_interval=0.01,
        **kw,
    )


def _labels(run_id: str = "r1") -> dict[str, str]:
    return managed_labels(plan="p", target="db", run_id=run_id, kind="nightly")


def test_instance_set_copy_and_restore(moto_ec2: MotoEC2) -> None:
    seen = pending_for(moto_ec2.session, describes=2)
    provider = _provider(moto_ec2, encrypted=True, kms_key_id="alias/dr")
    instance = moto_ec2.instance(extra_volumes=2)
    labels = _labels()
    snaps = provider.create_snapshot(
        SnapshotRequest(source_id=instance, name="set", labels=labels, source_kind="instance")
    )
    attached = moto_ec2.client().describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]
    )["Volumes"]
    assert len(attached) >= 2
    assert sorted(s.source_id for s in snaps) == sorted(v["VolumeId"] for v in attached)
    assert all(s.state == "pending" for s in snaps)
    done = [provider.wait(s, timeout=10) for s in snaps]
    assert all(s.state == "completed" for s in done)
    assert all(seen[s.id] == 3 for s in snaps)  # two pending answers, then completed
    assert {s.labels["source"] for s in done} == {instance}

    copy_labels = {**labels, "kind": "nightly"}
    copy = provider.copy_to_region(done[0], OTHER_REGION, copy_labels)
    assert copy.region == OTHER_REGION
    there = moto_ec2.client(OTHER_REGION).describe_snapshots(SnapshotIds=[copy.id])["Snapshots"][0]
    tags = {t["Key"]: t["Value"] for t in there["Tags"]}
    assert tags["copied-from"] == done[0].id  # tagged at creation, in the destination region
    assert tags["managed-by"] == "safesnap"
    assert there.get("KmsKeyId") == "alias/dr"
    listed = provider.list_snapshots(copy_labels, region=OTHER_REGION)
    assert [s.copied_from for s in listed] == [done[0].id]
    assert provider.list_snapshots(copy_labels, region=REGION) != listed

    volume_id = provider.restore_volume(done[1], name="restored-db", zone=f"{REGION}b")
    volume = moto_ec2.client().describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["SnapshotId"] == done[1].id
    assert volume["AvailabilityZone"] == f"{REGION}b"


def test_wait_gives_up_at_its_timeout_after_one_last_describe(moto_ec2: MotoEC2) -> None:
    """A snapshot that stays pending: `wait` sleeps at most its timeout in all (the last sleep
    cut to the time left) and describes once more at the deadline before giving up."""
    seen = pending_for(moto_ec2.session, describes=10**6)
    slept: list[float] = []
    now = [0.0]  # a clock that moves only when the adapter sleeps: a slow describe under load
    # (moto's first call, a busy CI machine) must not eat the budget and make this flaky.

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    provider = Aws(
        region=REGION,
        session=moto_ec2.session,
        endpoint_url=moto_ec2.endpoint,
        max_attempts=1,
        poll_interval=0.08,
        sleep=sleep,
    )
    provider.pace = dataclasses.replace(provider.pace, clock=lambda: now[0])
    [snap] = provider.create_snapshot(
        SnapshotRequest(source_id=moto_ec2.volume(), name="slow", labels=_labels())
    )
    with pytest.raises(ProviderTimeoutError) as info:
        provider.wait(snap, timeout=0.3)
    assert abs(sum(slept) - 0.3) < 1e-6 and max(slept) <= 0.08
    assert seen[snap.id] == len(slept) + 1  # one describe at once, then one after each sleep
    assert "wait_timeout" in (info.value.hint or "")


def test_restore_without_zone_is_refused(moto_ec2: MotoEC2) -> None:
    provider = _provider(moto_ec2)
    snap = provider.create_snapshot(
        SnapshotRequest(source_id=moto_ec2.volume(), name="x", labels=_labels())
    )[0]
    before = len(moto_ec2.client().describe_volumes()["Volumes"])
    with pytest.raises(ProviderError, match="availability zone"):
        provider.restore_volume(snap, name="r")
    assert len(moto_ec2.client().describe_volumes()["Volumes"]) == before


def test_list_follows_next_token(moto_ec2: MotoEC2) -> None:
    pages = paginate_describe(moto_ec2.session)
    provider = _provider(moto_ec2, page_size=5)
    labels = _labels("paged")
    volume = moto_ec2.volume()
    made = {
        s.id
        for i in range(12)
        for s in provider.create_snapshot(
            SnapshotRequest(source_id=volume, name=f"n{i}", labels=labels)
        )
    }
    assert {s.id for s in provider.list_snapshots(labels)} == made
    assert len(pages) >= 3  # 12 snapshots in pages of 5


def test_missing_volume_is_permanent_with_request_id(moto_ec2: MotoEC2) -> None:
    provider = _provider(moto_ec2)
    with pytest.raises(ProviderError) as info:
        provider.create_snapshot(
            SnapshotRequest(source_id="vol-0123456789abcdef0", name="x", labels=_labels())
        )
    assert not info.value.transient
    assert "InvalidVolume.NotFound" in info.value.message
    assert info.value.request_id


def test_throttled_create_is_retried_once_without_duplicates(
    moto_ec2: MotoEC2, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.toml"
    volume = moto_ec2.volume()
    plan_file.write_text(
        textwrap.dedent(f"""
        plan = "p"
        [destination]
        path = "{tmp_path / "out"}"
        [providers.aws]
        region = "{REGION}"
        endpoint_url = "{moto_ec2.endpoint}"
        max_attempts = 2
        [[targets]]
        name = "db"
        path = "{tmp_path / "db.sqlite"}"
        snapshot = {{ provider = "aws", volume_ids = ["{volume}"] }}
    """)
    )
    plan = load_plan(plan_file, env_file=tmp_path / "none.env")
    provider = build_provider(plan.targets[0].snapshot, plan, policy=NO_WAIT)
    adapter = unwrap(provider)
    assert isinstance(adapter, Aws)
    inject_error(adapter.session, status=503, code="RequestLimitExceeded", times=1)
    labels = _labels("throttled")
    snaps = provider.create_snapshot(SnapshotRequest(source_id=volume, name="x", labels=labels))
    assert len(snaps) == 1
    assert [s.id for s in provider.list_snapshots(labels)] == [snaps[0].id]


def test_lost_create_answer_reuses_the_snapshot(moto_ec2: MotoEC2) -> None:
    """CreateSnapshot succeeded in EC2 but the answer never arrived (read timeout): the retry
    must find the labelled snapshot instead of creating a second one."""
    from safesnap_providers.wrappers import Counting, Retrying

    lost = [1]

    def lose_answer(**_: Any) -> None:
        if lost[0]:
            lost[0] -= 1
            raise ReadTimeoutError(endpoint_url=moto_ec2.endpoint)

    moto_ec2.session.events.register("after-call.ec2.CreateSnapshot", lose_answer)
    counted = Counting(_provider(moto_ec2))
    provider = Retrying(counted, NO_WAIT)
    volume = moto_ec2.volume()
    labels = _labels("lost")
    snaps = provider.create_snapshot(SnapshotRequest(source_id=volume, name="x", labels=labels))
    assert len(snaps) == 1
    all_for_volume = moto_ec2.client().describe_snapshots(
        Filters=[{"Name": "volume-id", "Values": [volume]}]
    )["Snapshots"]
    assert [s["SnapshotId"] for s in all_for_volume] == [snaps[0].id]
    assert counted.by_method["create_snapshot"] == 1
