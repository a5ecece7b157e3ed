"""Minimum intervals between snapshots of one volume (issue #9), against moto and the
spec-validated DigitalOcean fake: a short remaining wait is waited out before quiescing, a long
one fails at once, and time is the provider's own (its HTTP Date against its snapshot times),
never the host clock. Sleeps are injected and recorded, never slept."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tests.fakes.digitalocean_fake import DigitalOceanFake
from tests.fixtures.aws import REGION, MotoEC2

from safesnap.errors import ProviderError
from safesnap.snapshots.limits import check_volume_limits
from safesnap_providers.aws.adapter import Aws
from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.digitalocean.adapter import DigitalOcean
from safesnap_providers.digitalocean.api import DoApi


def _labels(plan: str) -> dict[str, str]:
    return managed_labels(plan=plan, target="db", run_id=uuid.uuid4().hex[:8], kind="nightly")


def _do(fake: DigitalOceanFake) -> DigitalOcean:
    return DigitalOcean(DoApi(fake.token, fake.url, timeout=5), region="nyc3")


def _do_snapshot_aged(
    fake: DigitalOceanFake, do: DigitalOcean, age: float
) -> tuple[str, dict[str, str]]:
    """A volume with one safesnap snapshot taken `age` seconds ago by DigitalOcean's clock."""
    volume = fake.add_volume()
    labels = _labels("p")
    (snap,) = do.create_snapshot(SnapshotRequest(volume, "s-0", labels))
    taken = datetime.now(UTC) - timedelta(seconds=age)
    fake.snapshots[snap.id]["created_at"] = taken.strftime("%Y-%m-%dT%H:%M:%SZ")
    return volume, labels


def test_aws_second_run_within_15_s_waits_instead_of_failing(moto_ec2: MotoEC2) -> None:
    aws = Aws(region=REGION, session=moto_ec2.session, endpoint_url=moto_ec2.endpoint)
    volume = moto_ec2.volume()
    plan = f"p-{uuid.uuid4().hex[:6]}"
    aws.create_snapshot(SnapshotRequest(volume, "first", _labels(plan)))
    sleeps: list[float] = []
    request = SnapshotRequest(volume, "second", _labels(plan))
    waited = check_volume_limits(
        aws, aws.capabilities(), [request], dict(request.labels), datetime.now(UTC),
        sleep=sleeps.append,
    )  # fmt: skip
    # What is left of the 15 s (by moto's clock: a loaded host takes seconds between the two
    # calls), plus 1 s for the Date header's whole seconds; never more than 16 s.
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 16.0
    assert waited == sleeps[0]
    assert aws.provider_now() is not None  # measured on AWS's clock (moto's Date header)


def test_do_long_remaining_wait_fails_early_and_clearly(do_fake: DigitalOceanFake) -> None:
    do = _do(do_fake)
    volume, labels = _do_snapshot_aged(do_fake, do, age=30)
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as info:
        check_volume_limits(
            do, do.capabilities(), [SnapshotRequest(volume, "s-1", labels)], labels,
            datetime.now(UTC), sleep=sleeps.append,
        )  # fmt: skip
    assert sleeps == []  # nothing was waited for (and nothing quiesced: this runs first)
    assert "every 600 s" in info.value.message and "max_interval_wait" in (info.value.hint or "")
    assert 560 <= (info.value.retry_after or 0) <= 575


def test_do_host_clock_behind_does_not_refuse(do_fake: DigitalOceanFake) -> None:
    do = _do(do_fake)
    # 630 s have passed by DigitalOcean's clock; the host's clock is 60 s behind and would
    # say 570 s ("try again in 30 s") if it were asked.
    volume, labels = _do_snapshot_aged(do_fake, do, age=630)
    sleeps: list[float] = []
    behind = datetime.now(UTC) - timedelta(seconds=60)
    waited = check_volume_limits(
        do, do.capabilities(), [SnapshotRequest(volume, "s-1", labels)], labels, behind,
        sleep=sleeps.append,
    )  # fmt: skip
    assert (waited, sleeps) == (0.0, [])


def test_do_host_clock_ahead_still_waits_what_do_requires(do_fake: DigitalOceanFake) -> None:
    do = _do(do_fake)
    volume, labels = _do_snapshot_aged(do_fake, do, age=570)  # 30 s to go by DO's clock
    sleeps: list[float] = []
    ahead = datetime.now(UTC) + timedelta(seconds=60)  # would say "630 s passed, go"
    check_volume_limits(
        do, do.capabilities(), [SnapshotRequest(volume, "s-1", labels)], labels, ahead,
        sleep=sleeps.append,
    )  # fmt: skip
    assert len(sleeps) == 1 and 28.0 <= sleeps[0] <= 33.0


def test_max_interval_wait_is_configurable(do_fake: DigitalOceanFake) -> None:
    do = _do(do_fake)
    volume, labels = _do_snapshot_aged(do_fake, do, age=570)
    with pytest.raises(ProviderError):
        check_volume_limits(
            do, do.capabilities(), [SnapshotRequest(volume, "s-1", labels)], labels,
            datetime.now(UTC), max_wait=10, sleep=lambda s: time.sleep(0),
        )  # fmt: skip
