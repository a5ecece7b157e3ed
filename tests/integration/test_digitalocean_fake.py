"""DigitalOcean adapter behaviour against the spec-validated fake (beyond the contract suite)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import digitalocean
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.contract.backends.digitalocean import dead_endpoint
from tests.fakes.digitalocean_fake import MAX_SNAPSHOTS_PER_VOLUME, DigitalOceanFake

from safesnap.errors import ConfigError, ProviderError, ProviderTimeoutError
from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.digitalocean.adapter import (
    DigitalOcean,
    from_settings,
    label_tags,
    tag_labels,
)
from safesnap_providers.digitalocean.api import DoApi, retry_after
from safesnap_providers.digitalocean.config import DigitalOceanSettings, DigitalOceanSnapshot


@pytest.fixture
def fake() -> Iterator[DigitalOceanFake]:
    server = DigitalOceanFake().start()
    try:
        yield server
        server.assert_clean()
    finally:
        server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def do(fake: DigitalOceanFake, sleeps: list[float]) -> DigitalOcean:
    api = DoApi(fake.token, fake.url, timeout=5)
    return DigitalOcean(
        api,
        poll_interval=0.01,
        max_poll_interval=0.05,
        droplet_copies=True,
        sleep=lambda s: (sleeps.append(s), time.sleep(s))[1],
    )


LABELS = managed_labels(plan="p", target="db", run_id="r1", kind="nightly")


def volume_request(vid: str, name: str = "s") -> SnapshotRequest:
    return SnapshotRequest(source_id=vid, name=name, labels=LABELS)


def test_429_is_transient_with_retry_after_and_not_retried_inside(fake, do) -> None:
    vid = fake.add_volume()
    fake.rate_limit(retry_after=7)
    before = fake.count()
    with pytest.raises(ProviderError) as info:
        do.create_snapshot(volume_request(vid))
    err = info.value
    assert (err.transient, err.status, err.retry_after) == (True, 429, 7.0)
    assert err.request_id
    assert fake.count() == before + 1  # one request: the adapter leaves retrying to retry.py
    assert fake.snapshots == {}  # nothing half-created


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_transient(fake, do, status: int) -> None:
    fake.server_error(status)
    with pytest.raises(ProviderError) as info:
        do.list_snapshots({})
    assert info.value.transient and info.value.status == status


def test_401_is_permanent_and_never_shows_the_token(fake) -> None:
    secret = "dop_v1_SECRET_VALUE_123"
    bad = DigitalOcean(DoApi(secret, fake.url, timeout=5))
    with pytest.raises(ProviderError) as info:
        bad.list_snapshots({})
    err = info.value
    assert not err.transient and err.status == 401 and err.hint
    assert (
        secret not in str(err.to_dict()) and secret not in repr(bad) and secret not in repr(bad.api)
    )


def test_404_and_422_are_permanent(fake, do) -> None:
    with pytest.raises(ProviderError) as info:
        do.create_snapshot(volume_request("0c2a1f4e-0000-4000-8000-000000000000"))
    assert (info.value.transient, info.value.status) == (False, 404)
    vid = fake.add_volume()
    for i in range(MAX_SNAPSHOTS_PER_VOLUME):
        do.create_snapshot(volume_request(vid, f"s{i}"))
    with pytest.raises(ProviderError) as info:
        do.create_snapshot(volume_request(vid, "one-too-many"))
    assert (info.value.transient, info.value.status) == (False, 422)
    assert do.capabilities().max_snapshots_per_volume == MAX_SNAPSHOTS_PER_VOLUME
    assert len(do.list_snapshots(LABELS)) == MAX_SNAPSHOTS_PER_VOLUME


def test_volume_snapshot_is_completed_at_once_with_labels_as_tags(fake, do) -> None:
    vid = fake.add_volume()
    [snap] = do.create_snapshot(volume_request(vid))
    assert snap.state == "completed" and snap.labels == LABELS
    assert sorted(fake.snapshots[snap.id]["tags"]) == sorted(label_tags(LABELS))
    calls = fake.count()
    assert do.wait(snap, timeout=1) == snap
    assert fake.count() == calls  # synchronous: nothing to poll


def test_slow_droplet_action_is_polled_with_backoff_then_labelled(fake, do, sleeps) -> None:
    fake.action_polls = 4
    did = fake.add_droplet()
    [pending] = do.create_snapshot(SnapshotRequest(str(did), "d", LABELS, source_kind="server"))
    assert pending.state == "pending" and fake.snapshots == {}  # the image comes with success
    done = do.wait(pending, timeout=10)
    assert done.state == "completed" and done.labels == LABELS
    assert fake.count("GET", r"/v2/actions/") == 4
    assert sleeps == sorted(sleeps) and max(sleeps) <= 0.05  # growing, capped
    assert [s.id for s in do.list_snapshots(LABELS)] == [done.id]


def test_wait_gives_up_after_timeout_with_bounded_polls(fake, do) -> None:
    fake.action_seconds = 60
    did = fake.add_droplet()
    [pending] = do.create_snapshot(SnapshotRequest(str(did), "d", LABELS, source_kind="server"))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        do.wait(pending, timeout=0.3)
    assert time.monotonic() - started < 2
    assert fake.count("GET", r"/v2/actions/") <= 0.3 / 0.01 + 1


def test_failed_action_raises_and_leaves_no_image(fake, do) -> None:
    fake.fail_actions = True
    did = fake.add_droplet()
    [pending] = do.create_snapshot(SnapshotRequest(str(did), "d", LABELS, source_kind="server"))
    with pytest.raises(ProviderError) as info:
        do.wait(pending, timeout=5)
    assert not info.value.transient
    assert fake.snapshots == {} and do.list_snapshots({}) == []


def test_droplet_snapshot_transfer_lands_in_the_other_region(fake, do) -> None:
    fake.action_polls = 2
    did = fake.add_droplet()
    [pending] = do.create_snapshot(SnapshotRequest(str(did), "d", LABELS, source_kind="server"))
    snap = do.wait(pending, timeout=5)
    copy = do.copy_to_region(snap, "fra1", LABELS)
    assert (copy.state, copy.region, copy.copied_from) == ("pending", "fra1", snap.id)
    done = do.wait(copy, timeout=5)
    assert done.state == "completed" and done.region == "fra1"
    there = do.list_snapshots(LABELS, region="fra1")
    assert [(s.id, s.copied_from) for s in there] == [(snap.id, snap.id)]
    # Without a region each image is listed once, in its home region (retention counts it once).
    assert [(s.id, s.region, s.copied_from) for s in do.list_snapshots(LABELS)] == [
        (snap.id, "nyc3", None)
    ]


def test_transfer_started_elsewhere_is_waited_for_by_region(fake, do) -> None:
    did = fake.add_droplet()
    [pending] = do.create_snapshot(SnapshotRequest(str(did), "d", LABELS, source_kind="server"))
    snap = do.wait(pending, timeout=5)
    fake.action_polls = 3
    copy = do.copy_to_region(snap, "fra1", LABELS)
    other = DigitalOcean(DoApi(fake.token, fake.url, timeout=5), poll_interval=0.01)
    done = other.wait(copy, timeout=5)  # never saw the action id: watches the image's regions
    assert done.region == "fra1" and "fra1" in fake.snapshots[snap.id]["regions"]


def test_volume_snapshots_refuse_to_change_region(fake, do) -> None:
    [snap] = do.create_snapshot(volume_request(fake.add_volume()))
    with pytest.raises(ProviderError) as info:
        do.copy_to_region(snap, "fra1", LABELS)
    assert not info.value.transient and "cannot change region" in info.value.message
    assert fake.count("POST", r"/v2/images/") == 0


def test_pagination_is_followed(fake, do) -> None:
    fake.page_size = 1
    vid = fake.add_volume()
    ids = {do.create_snapshot(volume_request(vid, f"s{i}"))[0].id for i in range(3)}
    assert {s.id for s in do.list_snapshots(LABELS)} == ids
    assert fake.count("GET", r"^/v2/snapshots$") == 3


def test_fake_rejects_a_malformed_request(fake) -> None:
    vid = fake.add_volume()
    reply = requests.post(
        f"{fake.url}/v2/volumes/{vid}/snapshots",
        json={"tags": ["x"]},
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=5,
    )
    assert reply.status_code == 400  # `name` is required by the published schema
    assert fake.snapshots == {}
    assert any("name" in v for v in fake.violations)
    fake.violations.clear()  # seen and expected; the fixture checks nothing else slipped


def test_fake_flags_its_own_invalid_response(fake, do) -> None:
    [snap] = do.create_snapshot(volume_request(fake.add_volume()))
    fake.snapshots[snap.id]["size_gigabytes"] = "huge"  # breaks the response schema
    do.list_snapshots({})
    assert any(v.startswith("RESPONSE 200") for v in fake.violations)
    fake.violations.clear()


def test_library_quirks_are_normalised(fake, do) -> None:
    """python-digitalocean's own objects add a trailing slash and send `{}` on DELETE."""
    [snap] = do.create_snapshot(volume_request(fake.add_volume()))
    lib = digitalocean.Snapshot(token=fake.token, id=snap.id, end_point=f"{fake.url}/v2/")
    assert lib.destroy() is True
    assert snap.id not in fake.snapshots


def test_endpoint_comes_from_settings_not_the_environment(fake, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", dead_endpoint() + "/v2/")
    monkeypatch.setenv("DO_TOKEN_FOR_TEST", fake.token)
    config = DigitalOceanSettings(token_env="DO_TOKEN_FOR_TEST", endpoint_url=fake.url)
    spec = DigitalOceanSnapshot(provider="digitalocean", volume_ids=[fake.add_volume("ams3")])
    provider = from_settings(config, spec, env_file=tmp_path / "none.env")
    assert provider.list_snapshots({}) == []
    assert fake.token not in repr(provider)
    assert not provider.capabilities().cross_region_copy  # volumes cannot move
    assert provider.region == "ams3"  # read from the plan's volume, once


def test_missing_token_is_a_config_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DO_TOKEN_ABSENT", raising=False)
    with pytest.raises(ConfigError) as info:
        from_settings(
            DigitalOceanSettings(token_env="DO_TOKEN_ABSENT"), None, env_file=tmp_path / "none.env"
        )
    assert "DO_TOKEN_ABSENT" in info.value.message


def test_retry_after_parsing() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"ratelimit-reset": "1060"}, now=1000) == 60.0
    assert retry_after({"retry-after": "Thu, 01 Jan 1970 00:01:40 GMT"}, now=90) == 10.0
    assert retry_after({}) is None


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
        st.text(st.characters(codec="utf-8"), max_size=40),
        max_size=6,
    )
)
def test_labels_round_trip_through_tags(labels: dict[str, str]) -> None:
    tags = label_tags(labels)
    assert all(re.fullmatch(r"[a-zA-Z0-9_\-:]+", t) for t in tags)  # DO's tag name pattern
    assert tag_labels(tags) == labels


def test_lost_answer_to_a_droplet_snapshot_is_adopted_not_duplicated(fake, do) -> None:
    """The first POST starts the action but its answer is lost (500 after acting); the retry
    layer finds nothing labelled (droplet snapshots are tagged when done), tries again, DO says
    "pending event", and the adapter adopts the running snapshot action."""
    from safesnap_providers.retry import RetryPolicy
    from safesnap_providers.wrappers import Retrying

    fake.action_polls = 3
    did = fake.add_droplet()
    fake.inject(
        fake.error(500, "server_error", "lost"), method="POST", path="/actions$", after=True
    )
    wrapped = Retrying(
        do, RetryPolicy(max_attempts=3, initial_wait=0, jitter=0, sleep=lambda s: None)
    )
    [pending] = wrapped.create_snapshot(
        SnapshotRequest(str(did), "d", LABELS, source_kind="server")
    )
    done = wrapped.wait(pending, timeout=5)
    assert fake.count("POST", r"/v2/droplets/\d+/actions$") == 2
    assert len([a for a in fake.actions.values() if a.command == "snapshot"]) == 1
    assert [s.id for s in do.list_snapshots(LABELS)] == [done.id]


def test_pending_event_of_another_action_stays_an_error(fake, do) -> None:
    fake.action_seconds = 60
    did = fake.add_droplet()
    with fake._lock:
        fake.new_action("reboot", did)
    with pytest.raises(ProviderError) as info:
        do.create_snapshot(SnapshotRequest(str(did), "d", LABELS, source_kind="server"))
    assert info.value.status == 422 and not info.value.transient


def test_read_timeout_is_transient(fake) -> None:
    fake.latency = 0.5
    slow = DigitalOcean(DoApi(fake.token, fake.url, timeout=0.1))
    with pytest.raises(ProviderError) as info:
        slow.list_snapshots({})
    assert info.value.transient and info.value.status is None
