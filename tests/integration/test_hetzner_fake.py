"""Hetzner Cloud adapter behaviour against the spec-validated fake (beyond the contract suite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from hcloud import Client
from tests.fakes.hetzner_fake import HetznerFake, selector_matches

from safesnap.errors import ConfigError, ProviderError, ProviderTimeoutError
from safesnap_providers.base import Snapshot, SnapshotRequest, managed_labels
from safesnap_providers.hetzner.adapter import Hetzner, from_settings
from safesnap_providers.hetzner.config import HetznerSettings, HetznerSnapshot


@pytest.fixture
def fake() -> Iterator[HetznerFake]:
    server = HetznerFake().start()
    try:
        yield server
        server.assert_clean()
    finally:
        server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(fake: HetznerFake, sleeps: list[float] | None = None, **kw: object) -> Hetzner:
    record = sleeps if sleeps is not None else []
    return Hetzner(
        Client(token=fake.token, api_endpoint=fake.url, timeout=5),
        poll_interval=0.01,
        max_poll_interval=0.05,
        sleep=lambda s: (record.append(s), time.sleep(s))[1],
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def hz(fake: HetznerFake, sleeps: list[float]) -> Hetzner:
    return make(fake, sleeps)


EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
LABELS = managed_labels(plan="p", target="db", run_id="r1", kind="pre-upgrade", expires_at=EXPIRES)


def server_request(fake: HetznerFake, name: str = "snap") -> SnapshotRequest:
    return SnapshotRequest(str(fake.add_server()), name, LABELS, source_kind="server")


def test_rate_limit_is_transient_and_hcloud_does_not_retry_it(fake, hz) -> None:
    fake.rate_limit()
    before = fake.count()
    with pytest.raises(ProviderError) as info:
        hz.create_snapshot(server_request(fake))
    err = info.value
    assert (err.transient, err.status) == (True, 429)
    assert err.retry_after == 1.0  # refilled 1 request/s; RateLimit-Reset is "full again"
    assert err.request_id and err.request_id.startswith("corr-")  # X-Correlation-Id kept
    assert fake.count() == before + 1  # hcloud's own 429 loop is off: retry.py is the one layer
    assert fake.images == {}
    assert hz.client_retries == frozenset()


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "server_error"),
        (502, "bad_gateway"),
        (503, "unavailable"),
        (409, "conflict"),
        (423, "locked"),
        (504, "timeout"),
    ],
)
def test_server_side_and_contention_errors_are_transient(fake, hz, status, code) -> None:
    fake.server_error(status, code)
    before = fake.count()
    with pytest.raises(ProviderError) as info:
        hz.list_snapshots({})
    assert info.value.transient and info.value.status == status
    assert fake.count() == before + 1


def test_unauthorized_is_permanent_without_the_token(fake) -> None:
    secret = "hcloud-SECRET-abc123"
    bad = Hetzner(Client(token=secret, api_endpoint=fake.url, timeout=5))
    with pytest.raises(ProviderError) as info:
        bad.list_snapshots({})
    err = info.value
    assert not err.transient and err.status == 401 and err.hint
    assert secret not in str(err.to_dict()) and secret not in repr(bad)


def test_not_found_and_invalid_input_are_permanent(fake, hz) -> None:
    missing = SnapshotRequest("424242", "x", LABELS, source_kind="server")
    with pytest.raises(ProviderError) as info:
        hz.create_snapshot(missing)
    assert (info.value.transient, info.value.status) == (False, 404)
    fake.inject(fake.error(422, "invalid_input", "invalid input in field 'labels'"))
    with pytest.raises(ProviderError) as info:
        hz.create_snapshot(server_request(fake))
    assert not info.value.transient and info.value.status == 422


def test_volume_requests_are_refused_without_calling_the_api(fake, hz) -> None:
    with pytest.raises(ProviderError) as info:
        hz.create_snapshot(SnapshotRequest("123", "v", LABELS, source_kind="volume"))
    assert not info.value.transient
    assert fake.count() == 0
    assert not hz.capabilities().volume_snapshots


def test_slow_action_is_polled_with_capped_backoff(fake, hz, sleeps) -> None:
    fake.action_polls = 6
    [pending] = hz.create_snapshot(server_request(fake))
    assert pending.state == "pending" and pending.labels == LABELS  # labelled at creation
    done = hz.wait(pending, timeout=10)
    assert done.state == "completed"
    assert fake.count("GET", r"/actions/") == 6
    assert sleeps == sorted(sleeps) and max(sleeps) == pytest.approx(0.05)


def test_wait_gives_up_after_timeout(fake, hz) -> None:
    fake.action_seconds = 60
    [pending] = hz.create_snapshot(server_request(fake))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        hz.wait(pending, timeout=0.3)
    assert time.monotonic() - started < 2
    assert fake.count("GET", r"/actions/") <= 0.3 / 0.01 + 1


def test_failed_action_raises_and_image_is_unavailable(fake, hz) -> None:
    fake.fail_actions = True
    [pending] = hz.create_snapshot(server_request(fake))
    with pytest.raises(ProviderError) as info:
        hz.wait(pending, timeout=5)
    assert not info.value.transient
    assert fake.images[int(pending.id)]["status"] == "unavailable"


def test_wait_without_the_action_id_follows_the_image_status(fake, hz) -> None:
    fake.action_polls = 2
    [pending] = hz.create_snapshot(server_request(fake))
    other = make(fake)  # a second process: it never saw the action id
    fake.actions[fake.images[int(pending.id)]["_action"]].advance()
    fake.actions[fake.images[int(pending.id)]["_action"]].advance()
    assert other.wait(pending, timeout=5).state == "completed"


def test_pagination_is_followed(fake, hz) -> None:
    fake.page_size = 1
    ids = {hz.create_snapshot(server_request(fake, f"s{i}"))[0].id for i in range(3)}
    assert {s.id for s in hz.list_snapshots(LABELS)} == ids
    assert fake.count("GET", r"^/v1/images$") == 3


def test_protected_snapshot_is_kept_until_expired(fake) -> None:
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    hz = make(fake, protect=True, now=lambda: clock[0])
    snap = hz.wait(hz.create_snapshot(server_request(fake))[0], timeout=5)
    assert snap.protected and fake.images[int(snap.id)]["protection"]["delete"]
    with pytest.raises(ProviderError) as info:
        hz.delete_snapshot(snap)
    assert not info.value.transient and "protection" in info.value.message
    assert int(snap.id) in fake.images  # nothing lost
    clock[0] = EXPIRES + timedelta(seconds=1)
    hz.delete_snapshot(snap)
    assert int(snap.id) not in fake.images
    hz.delete_snapshot(snap)  # idempotent


def test_unprotect_lifts_protection(fake) -> None:
    hz = make(fake, protect=True)
    snap = hz.wait(hz.create_snapshot(server_request(fake))[0], timeout=5)
    hz.unprotect(snap)
    hz.delete_snapshot(snap)
    assert fake.images == {}


def test_unlabelled_image_is_never_deleted(fake, hz) -> None:
    server = fake.servers[fake.add_server()]
    image = fake._new_image(server, {"labels": {}})
    forged = Snapshot(
        id=str(image["id"]),
        source_id="1",
        region="global",
        state="completed",
        created_at=datetime.now(UTC),
        labels=LABELS,
    )
    with pytest.raises(ProviderError):
        hz.delete_snapshot(forged)
    assert image["id"] in fake.images


def test_fake_rejects_a_malformed_request(fake) -> None:
    sid = fake.add_server()
    reply = requests.post(
        f"{fake.url}/servers/{sid}/actions/create_image",
        json={"type": "snapshot", "labels": {"bad": "not valid!"}},
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=5,
    )
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_input"
    assert fake.images == {}
    assert fake.violations
    fake.violations.clear()


def test_fake_flags_its_own_invalid_response(fake, hz) -> None:
    snap = hz.wait(hz.create_snapshot(server_request(fake))[0], timeout=5)
    fake.images[int(snap.id)]["status"] = "exploded"
    hz.list_snapshots({})
    assert any(v.startswith("RESPONSE 200") for v in fake.violations)
    fake.violations.clear()


def test_from_settings_reads_the_token_by_name(fake, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HZ_TOKEN_FOR_TEST", fake.token)
    config = HetznerSettings(token_env="HZ_TOKEN_FOR_TEST", endpoint_url=fake.url, poll_interval=1)
    spec = HetznerSnapshot(provider="hetzner", server_id=1, protect=True)
    provider = from_settings(config, spec, env_file=tmp_path / "none.env")
    assert provider.protect and provider.list_snapshots({}) == []
    assert fake.token not in repr(provider)
    monkeypatch.delenv("HZ_TOKEN_FOR_TEST")
    with pytest.raises(ConfigError):
        from_settings(config, spec, env_file=tmp_path / "none.env")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("a=1", True),
        ("a==1,b=2", True),
        ("a!=1", False),
        ("c", False),
        ("!c", True),
        ("a in (1,3)", True),
        ("a notin (1,3)", False),
        ("a=2", False),
    ],
)
def test_fake_label_selector(selector: str, expected: bool) -> None:
    assert selector_matches(selector, {"a": "1", "b": "2"}) is expected


def test_hcloud_retry_loop_is_switched_off_or_declared(fake) -> None:
    import threading

    from safesnap_providers.hetzner.errors import ALL_METHODS, take_over_retries

    hz = make(fake)
    assert hz.client._client._retry_max_retries == 0  # our retry layer is the only one
    # If hcloud's internals ever move, every method is declared client-retried instead.
    assert take_over_retries(object(), threading.local()) == ALL_METHODS  # type: ignore[arg-type]


def test_read_timeout_is_transient_and_not_retried_by_hcloud(fake) -> None:
    fake.latency = 0.5
    hz = Hetzner(Client(token=fake.token, api_endpoint=fake.url, timeout=0.1))
    with pytest.raises(ProviderError) as info:
        hz.list_snapshots({})
    assert info.value.transient
    assert fake.count() == 1


def test_lost_answer_to_create_image_is_found_by_label_not_duplicated(fake, hz) -> None:
    """create_image acted but its answer was lost: the image already carries the run's labels,
    so the retry layer finds it and does not create a second one."""
    from safesnap_providers.retry import RetryPolicy
    from safesnap_providers.wrappers import Retrying

    fake.action_polls = 2
    lost = fake.error(500, "server_error", "lost")
    fake.inject(lost, method="POST", path="/create_image$", after=True)
    policy = RetryPolicy(max_attempts=3, initial_wait=0, jitter=0, sleep=lambda s: None)
    [snap] = Retrying(hz, policy).create_snapshot(server_request(fake))
    assert fake.count("POST", r"/create_image$") == 1
    assert list(fake.images) == [int(snap.id)]
    assert hz.wait(snap, timeout=5).state == "completed"
