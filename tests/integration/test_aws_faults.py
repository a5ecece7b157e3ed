"""AWS faults a real nightly run meets (issue #9), against moto's EC2 server: the waits AWS asks
for, the concurrent-copy limit, and a snapshot an AMI still uses. Backoff sleeps are injected
(RetryPolicy.sleep), so the tests assert the computed waits without sleeping them."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import boto3
from tests.fixtures.aws import OTHER_REGION, REGION, MotoEC2, inject_error, moto_session

from safesnap.config.plan import load_plan
from safesnap.snapshots.ops import prune_target
from safesnap_providers.aws.adapter import Aws
from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.retry import RetryPolicy
from safesnap_providers.wrappers import Retrying


def _aws(moto: MotoEC2, session: boto3.Session | None = None) -> Aws:
    return Aws(
        region=REGION,
        session=session or moto.session,
        endpoint_url=moto.endpoint,
        max_attempts=1,
        poll_interval=0.01,
    )


def _retrying(adapter: Aws, sleeps: list[float]) -> Retrying:
    return Retrying(adapter, RetryPolicy(sleep=sleeps.append, jitter=0))


def _labels(run_id: str) -> dict[str, str]:
    return managed_labels(plan="p", target="db", run_id=run_id, kind="nightly")


def test_snapshot_rate_per_volume_backs_off_at_least_15_s(moto_ec2: MotoEC2) -> None:
    session = moto_session()  # its own event hooks: the injection stays in this test
    volume = moto_ec2.volume()
    inject_error(session, status=400, code="SnapshotCreationPerVolumeRateExceeded", times=2)
    sleeps: list[float] = []
    provider = _retrying(_aws(moto_ec2, session), sleeps)
    run_id = f"rate-{uuid.uuid4().hex[:8]}"
    snaps = provider.create_snapshot(SnapshotRequest(volume, "x", _labels(run_id)))
    assert sleeps == [15.0, 15.0]  # what AWS asks for, not 1 s and 2 s
    assert [s.source_id for s in snaps] == [volume]
    assert len(provider.list_snapshots({"run-id": run_id})) == 1  # no duplicate


def test_copy_resource_limit_exceeded_is_transient(moto_ec2: MotoEC2) -> None:
    session = moto_session()
    adapter = _aws(moto_ec2, session)
    run_id = f"copy-{uuid.uuid4().hex[:8]}"
    (source,) = adapter.create_snapshot(SnapshotRequest(moto_ec2.volume(), "x", _labels(run_id)))
    # The 21st concurrent copy into a region: AWS answers ResourceLimitExceeded.
    inject_error(session, status=400, code="ResourceLimitExceeded", times=1)
    sleeps: list[float] = []
    copy = _retrying(adapter, sleeps).copy_to_region(source, OTHER_REGION, _labels(run_id))
    assert sleeps == [30.0]
    assert copy.copied_from == source.id and copy.region == OTHER_REGION
    in_dr = adapter.list_snapshots({"run-id": run_id}, region=OTHER_REGION)
    assert [s.id for s in in_dr] == [copy.id]


def _plan(tmp_path: Path, moto: MotoEC2, volume: str) -> Any:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        textwrap.dedent(f"""
        plan = "p-{uuid.uuid4().hex[:8]}"
        [destination]
        path = "{tmp_path / "out"}"
        [providers.aws]
        region = "{REGION}"
        endpoint_url = "{moto.endpoint}"
        [retention]
        keep_last = 1
        [[targets]]
        name = "db"
        path = "{tmp_path / "db.sqlite"}"
        snapshot = {{ provider = "aws", volume_ids = ["{volume}"] }}
    """)
    )
    return load_plan(plan_file, env_file=tmp_path / "none.env")


def test_prune_skips_a_snapshot_an_ami_uses_with_a_warning(
    moto_ec2: MotoEC2, tmp_path: Path
) -> None:
    ec2 = moto_ec2.client()
    instance = moto_ec2.instance(extra_volumes=0)
    volume = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0][
        "BlockDeviceMappings"
    ][0]["Ebs"]["VolumeId"]
    plan = _plan(tmp_path, moto_ec2, volume)
    # An operator registered an AMI from safesnap's (old) snapshot: it is in use now.
    ami = ec2.create_image(InstanceId=instance, Name=f"ami-{uuid.uuid4().hex[:6]}")["ImageId"]
    (mapping,) = [
        m
        for m in ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"]
        if "Ebs" in m
    ]
    in_use = mapping["Ebs"]["SnapshotId"]
    old = managed_labels(plan=plan.plan, target="db", run_id="20200101T000000Z-old", kind="nightly")
    ec2.create_tags(Resources=[in_use], Tags=[{"Key": k, "Value": v} for k, v in old.items()])
    newer = managed_labels(
        plan=plan.plan, target="db", run_id="20991231T000000Z-new", kind="nightly"
    )
    (kept,) = _aws(moto_ec2).create_snapshot(SnapshotRequest(volume, "n", newer))

    outcome = prune_target(plan, plan.targets[0], provider=_aws(moto_ec2))
    assert outcome.errors == []  # `snapshots prune` exits 0
    assert in_use in outcome.kept and kept.id in outcome.kept and outcome.deleted == []
    (warning,) = [w for w in outcome.warnings if in_use in w]
    assert "in use" in warning and "InvalidSnapshot.InUse" in warning
    ids = {s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[in_use])["Snapshots"]}
    assert ids == {in_use}  # nothing was deleted
