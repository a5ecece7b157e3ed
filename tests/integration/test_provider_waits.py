"""Long waits against the spec-validated fakes: a transient error fails one poll, never the wait.

Issue #9: the whole polling loop used to run inside the 300 s retry budget of
`wrappers.Retrying.wait`, so a 503 late in a long wait (poll 20, far past 300 s of waiting)
failed it, and an early one restarted it with a fresh full timeout. Time is simulated (a fake
clock that the injected sleep advances), so hours of waiting take well under a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from hcloud import Client
from tests.fakes.digitalocean_fake import DigitalOceanFake
from tests.fakes.hetzner_fake import HetznerFake

from safesnap.errors import ProviderError
from safesnap_providers.base import SnapshotProvider, SnapshotRequest, managed_labels
from safesnap_providers.digitalocean.adapter import DigitalOcean
from safesnap_providers.digitalocean.api import DoApi
from safesnap_providers.hetzner.adapter import Hetzner
from safesnap_providers.retry import RetryPolicy
from safesnap_providers.wrappers import Retrying

LABELS = managed_labels(plan="p", target="db", run_id="20261204T010000Z-ab12", kind="nightly")
TIMEOUT = 4 * 3600.0


@dataclass
class FakeTime:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def wrapped(adapter: SnapshotProvider, t: FakeTime) -> Retrying:
    """As build_provider wraps it, with the retry policy on the same simulated clock."""
    return Retrying(adapter, RetryPolicy(sleep=t.sleep, clock=t.clock, jitter=0))


def do_provider(fake: DigitalOceanFake, t: FakeTime) -> Retrying:
    api = DoApi(fake.token, fake.url, timeout=5)
    return wrapped(DigitalOcean(api, region="nyc3", sleep=t.sleep, clock=t.clock), t)


def hz_provider(fake: HetznerFake, t: FakeTime) -> Retrying:
    client = Client(token=fake.token, api_endpoint=fake.url, timeout=5)
    return wrapped(Hetzner(client, sleep=t.sleep, clock=t.clock), t)


def droplet_request(fake: DigitalOceanFake) -> SnapshotRequest:
    return SnapshotRequest(
        str(fake.add_droplet()), "safesnap-db-20261204t010000z", LABELS, source_kind="server"
    )


def server_request(fake: HetznerFake) -> SnapshotRequest:
    return SnapshotRequest(str(fake.add_server()), "safesnap-db", LABELS, source_kind="server")


def test_do_503_late_in_a_long_wait_retries_the_poll_not_the_wait(do_fake) -> None:
    t = FakeTime()
    do_fake.action_polls = 30  # ~25 simulated minutes at the default 10 s -> 60 s pace
    provider = do_provider(do_fake, t)
    (pending,) = provider.create_snapshot(droplet_request(do_fake))
    do_fake.server_error(503, path=r"/v2/actions/\d+$", skip=20)  # the 21st poll fails
    done = provider.wait(pending, timeout=TIMEOUT)
    assert done.state == "completed" and done.labels["run-id"] == LABELS["run-id"]
    assert t.now > 600  # the failure came long after the old 300 s retry budget
    assert do_fake.count("GET", r"/v2/actions/\d+$") == 31  # 30 polls + the repeated one
    assert t.now <= TIMEOUT


def test_do_early_503_does_not_restart_the_wait_with_a_fresh_timeout(do_fake) -> None:
    t = FakeTime()
    do_fake.action_polls = 10**6  # never finishes
    provider = do_provider(do_fake, t)
    (pending,) = provider.create_snapshot(droplet_request(do_fake))
    do_fake.server_error(503, path=r"/v2/actions/\d+$", skip=1)
    timeout = 1800.0
    with pytest.raises(ProviderError) as info:
        provider.wait(pending, timeout=timeout)
    assert "still in progress" in info.value.message
    assert t.now == pytest.approx(timeout)  # bounded by the wait's own timeout, once


def test_do_wait_that_keeps_failing_ends_at_its_timeout_with_the_last_error(do_fake) -> None:
    t = FakeTime()
    do_fake.action_polls = 10**6
    provider = do_provider(do_fake, t)
    (pending,) = provider.create_snapshot(droplet_request(do_fake))
    do_fake.server_error(503, path=r"/v2/actions/\d+$", times=10**6)
    with pytest.raises(ProviderError) as info:
        provider.wait(pending, timeout=900.0)
    assert info.value.status == 503 and info.value.transient
    assert t.now == pytest.approx(900.0)
    assert max(t.slept) <= 60.0  # backoff capped at the pace's max interval
    assert do_fake.count("GET", r"/v2/actions/\d+$") < 40  # backoff, not a burst


def test_hetzner_503_late_in_a_long_wait_retries_the_poll_not_the_wait(hz_fake) -> None:
    t = FakeTime()
    hz_fake.action_polls = 40  # 5 s -> 30 s pace: ~17 simulated minutes
    provider = hz_provider(hz_fake, t)
    (pending,) = provider.create_snapshot(server_request(hz_fake))
    hz_fake.server_error(503, path=r"/v1/actions/\d+$", skip=30)
    done = provider.wait(pending, timeout=TIMEOUT)
    assert done.state == "completed"
    assert t.now > 600
    assert hz_fake.count("GET", r"/v1/actions/\d+$") == 41


def test_hetzner_early_503_does_not_restart_the_wait(hz_fake) -> None:
    t = FakeTime()
    hz_fake.action_polls = 10**6
    provider = hz_provider(hz_fake, t)
    (pending,) = provider.create_snapshot(server_request(hz_fake))
    hz_fake.server_error(503, path=r"/v1/actions/\d+$", skip=1)
    with pytest.raises(ProviderError) as info:
        provider.wait(pending, timeout=1200.0)
    assert "still creating" in info.value.message
    assert t.now == pytest.approx(1200.0)


def test_do_image_left_untagged_by_a_failed_wait_is_adopted_next_run(do_fake) -> None:
    t = FakeTime()
    do_fake.action_polls = 10**6
    provider = do_provider(do_fake, t)
    request = droplet_request(do_fake)
    (pending,) = provider.create_snapshot(request)
    with pytest.raises(ProviderError):
        provider.wait(pending, timeout=600.0)
    # The action finishes after safesnap gave up: a billed image nobody tagged.
    (action,) = do_fake.actions.values()
    action.polls_needed = 0
    action.advance()
    (image_id,) = do_fake.snapshots
    assert provider.list_snapshots({"plan": "p", "target": "db"}) == []  # invisible so far
    hand_made = do_fake.add_droplet_image(int(request.source_id), "my-own-image")
    other_target = do_fake.add_droplet_image(int(request.source_id), "safesnap-web-20261203t0")

    adapter = DigitalOcean(DoApi(do_fake.token, do_fake.url, timeout=5), region="nyc3")
    later = SnapshotRequest(
        request.source_id, "safesnap-db-20261205t010000z", LABELS, source_kind="server"
    )
    (adopted,) = adapter.adopt_unlabelled(later)
    assert adopted.id == image_id
    assert adopted.labels["run-id"] == "20261204T010000Z-recovered"
    assert adopted.labels["kind"] == "nightly" and "expires-at" not in adopted.labels
    listed = adapter.list_snapshots({"plan": "p", "target": "db"})
    assert [s.id for s in listed] == [image_id]  # now retention sees (and will prune) it
    assert do_fake.snapshots[hand_made]["tags"] == []  # not ours: untouched
    assert do_fake.snapshots[other_target]["tags"] == []
    assert adapter.adopt_unlabelled(later) == []  # idempotent


# ---- rate limits and pagination (issue #9) ------------------------------------------------


def test_do_429_with_a_reset_in_the_past_waits_a_growing_floor(do_fake) -> None:
    t = FakeTime()
    provider = do_provider(do_fake, t)
    vid = do_fake.add_volume()
    # No retry-after, and a ratelimit-reset already passed (clock skew): the header says 0 s.
    do_fake.rate_limit(retry_after=None, reset_at=time.time() - 120, times=3)
    request = SnapshotRequest(vid, "safesnap-db-x-0", LABELS)
    (snap,) = provider.create_snapshot(request)
    assert snap.state == "completed"
    assert t.slept == [1.0, 2.0, 4.0]  # not three retries in one burst
    assert len(do_fake.snapshots) == 1


def test_hetzner_429_honours_ratelimit_reset(hz_fake) -> None:
    hz = Hetzner(Client(token=hz_fake.token, api_endpoint=hz_fake.url, timeout=5))
    # A project allowed 360 requests/h refills one every 10 s; the bucket is full at Reset
    # (an hour away when empty), so the next request is possible ~10 s from now.
    hz_fake.rate_limit(limit=360)
    with pytest.raises(ProviderError) as info:
        hz.create_snapshot(server_request(hz_fake))
    assert info.value.retry_after is not None and 8.5 <= info.value.retry_after <= 10.0
    hz_fake.rate_limit(reset_in=-60)  # a reset in the past: the 1 s floor, not 0
    with pytest.raises(ProviderError) as info:
        hz.create_snapshot(server_request(hz_fake))
    assert info.value.retry_after == 1.0
    assert hz_fake.images == {}


def test_hetzner_endless_next_page_is_capped_with_a_clear_error(hz_fake) -> None:
    hz = Hetzner(Client(token=hz_fake.token, api_endpoint=hz_fake.url, timeout=5))
    hz_fake.endless_pages = True
    with pytest.raises(ProviderError) as info:
        hz.list_snapshots({"plan": "p"})
    assert "did not end after 100 pages" in info.value.message
    assert not info.value.transient
    assert hz_fake.count("GET", r"/v1/images$") == 100


def test_hetzner_listing_follows_every_page(hz_fake) -> None:
    hz = Hetzner(Client(token=hz_fake.token, api_endpoint=hz_fake.url, timeout=5))
    hz_fake.page_size = 2
    for _ in range(5):
        hz.create_snapshot(server_request(hz_fake))
    assert len(hz.list_snapshots({"plan": "p"})) == 5
    assert hz_fake.count("GET", r"/v1/images$") == 3


def test_do_endless_next_page_is_capped_with_a_clear_error(do_fake) -> None:
    api = DoApi(do_fake.token, do_fake.url, timeout=5, max_pages=20)  # default 500: 16 s
    do_fake.endless_pages = True
    with pytest.raises(ProviderError) as info:
        list(api.pages("snapshots", "snapshots"))
    assert "did not end after 20 pages" in info.value.message
    assert do_fake.count("GET", r"/v2/snapshots$") == 20


def test_do_per_run_tags_are_deleted_once_they_label_nothing(do_fake) -> None:
    do = DigitalOcean(DoApi(do_fake.token, do_fake.url, timeout=5), region="nyc3")
    labels = managed_labels(plan="p", target="db", run_id="20261204T020000Z-tt", kind="nightly")
    a, b = do_fake.add_volume(), do_fake.add_volume()
    (one,) = do.create_snapshot(SnapshotRequest(a, "s-0", labels))
    (two,) = do.create_snapshot(SnapshotRequest(b, "s-1", labels))
    run_tag = "safesnap:run-id:20261204T020000Z-tt"
    assert run_tag in do_fake.tags
    do.delete_snapshot(one)
    assert run_tag in do_fake.tags  # still labels the run's other snapshot
    do.delete_snapshot(two)
    assert run_tag not in do_fake.tags  # gone once it labels nothing
    assert "safesnap:plan:p" in do_fake.tags  # shared tags stay
