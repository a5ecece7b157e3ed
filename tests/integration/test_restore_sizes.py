"""Restore sizes and the provider's own failure text (issue #9), against the spec-validated
fakes (which refuse, as the real APIs do, a size whose disk is smaller than the snapshot) and
moto: a restore picks the smallest size that fits unless told otherwise, and a failed snapshot
says what the provider said."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from hcloud import Client
from tests.fakes.digitalocean_fake import DigitalOceanFake
from tests.fakes.hetzner_fake import HetznerFake
from tests.fixtures.aws import REGION, MotoEC2, moto_session

from safesnap.errors import ProviderError
from safesnap_providers.aws.adapter import Aws
from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.digitalocean.adapter import DigitalOcean
from safesnap_providers.digitalocean.api import DoApi
from safesnap_providers.hetzner.adapter import Hetzner

LABELS = managed_labels(plan="p", target="db", run_id="r1", kind="nightly")


def _do(fake: DigitalOceanFake, **kw: Any) -> DigitalOcean:
    api = DoApi(fake.token, fake.url, timeout=5)
    return DigitalOcean(api, region="nyc3", poll_interval=0.01, max_poll_interval=0.02, **kw)


def _hz(fake: HetznerFake, **kw: Any) -> Hetzner:
    client = Client(token=fake.token, api_endpoint=fake.url, timeout=5)
    return Hetzner(client, poll_interval=0.01, max_poll_interval=0.02, **kw)


def _droplet_snapshot(fake: DigitalOceanFake, do: DigitalOcean, disk: int) -> Any:
    did = fake.add_droplet(disk=disk)
    (pending,) = do.create_snapshot(SnapshotRequest(str(did), "big", LABELS, source_kind="server"))
    return do.wait(pending, timeout=5)


def test_do_droplet_restore_takes_the_smallest_size_that_fits(do_fake) -> None:
    do = _do(do_fake)
    snap = _droplet_snapshot(do_fake, do, disk=60)  # more than s-1vcpu-1gb's 25 GB
    new_id = do.restore_volume(snap, name="restored")
    assert do_fake.droplets[int(new_id)]["region"] == "nyc3"
    assert do_fake.count("GET", r"/v2/sizes$") == 1
    assert do_fake.count("POST", r"/v2/droplets$") == 1  # first try: the right size


def test_do_droplet_restore_size_can_be_chosen(do_fake) -> None:
    do = _do(do_fake)
    snap = _droplet_snapshot(do_fake, do, disk=60)
    do.restore_volume(snap, name="r1", size="s-4vcpu-8gb")
    assert do_fake.count("GET", r"/v2/sizes$") == 0
    with pytest.raises(ProviderError) as info:  # too small: DigitalOcean's own refusal
        do.restore_volume(snap, name="r2", size="s-1vcpu-1gb")
    assert info.value.status == 422
    planned = _do(do_fake, restore_size="s-2vcpu-4gb")  # the plan's restore_size
    planned.restore_volume(snap, name="r3")
    assert do_fake.count("GET", r"/v2/sizes$") == 0


def test_hetzner_restore_takes_the_smallest_fitting_server_type(hz_fake) -> None:
    hz = _hz(hz_fake)
    sid = hz_fake.add_server(disk=100)  # an image larger than cx22's 40 GB disk
    (snap,) = hz.create_snapshot(SnapshotRequest(str(sid), "big", LABELS, source_kind="server"))
    done = hz.wait(snap, timeout=5)
    new_id = hz.restore_volume(done, name="restored")
    assert int(new_id) in hz_fake.servers
    with pytest.raises(ProviderError):
        hz.restore_volume(done, name="too-small", size="cx22")  # Hetzner refuses it


def test_hetzner_failed_snapshot_carries_the_action_error(hz_fake) -> None:
    hz = _hz(hz_fake)
    hz_fake.fail_actions = True
    (snap,) = hz.create_snapshot(server_request(hz_fake))
    with pytest.raises(ProviderError) as info:
        hz.wait(snap, timeout=5)
    assert "action_failed: Action failed" in info.value.message


def server_request(fake: HetznerFake) -> SnapshotRequest:
    return SnapshotRequest(str(fake.add_server()), "s", LABELS, source_kind="server")


def test_do_failed_action_says_what_the_action_reported(do_fake) -> None:
    do = _do(do_fake)
    do_fake.fail_actions = True
    did = do_fake.add_droplet()
    (pending,) = do.create_snapshot(SnapshotRequest(str(did), "s", LABELS, source_kind="server"))
    with pytest.raises(ProviderError) as info:
        do.wait(pending, timeout=5)
    assert "snapshot of droplet" in info.value.message
    assert "ended with status errored" in info.value.message


def test_aws_failed_snapshot_carries_the_state_message(moto_ec2: MotoEC2) -> None:
    session = moto_session()

    def failed(parsed: dict[str, Any], **_: Any) -> None:
        for item in parsed.get("Snapshots", []):
            item["State"] = "error"
            item["StateMessage"] = "The KMS key is disabled."

    session.events.register("after-call.ec2.DescribeSnapshots", failed)
    aws = Aws(region=REGION, session=session, endpoint_url=moto_ec2.endpoint, poll_interval=0.01)
    labels = managed_labels(plan="p", target="db", run_id=uuid.uuid4().hex[:8], kind="nightly")
    (snap,) = aws.create_snapshot(SnapshotRequest(moto_ec2.volume(), "x", labels))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        aws.wait(snap, timeout=5)
    assert "The KMS key is disabled." in info.value.message
    assert time.monotonic() - started < 5
