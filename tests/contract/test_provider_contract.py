"""The provider contract (safesnap_providers.base.SnapshotProvider), one suite for every backend.

Every backend runs twice (conftest.py): as the bare adapter, and as the provider the pipeline
builds from it (registry.build_provider: logging, retries, call counting). The wrapped run holds
the wrappers to the same promises; where retrying changes what the caller sees (a transient
error), the test says what the wrapped provider must do instead.

Each test states one promise from the Protocol's docstrings; capabilities decide which branch
a backend must satisfy (e.g. copy works, or copy raises a permanent ProviderError), never the
backend's name.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Literal, cast

import pytest

from safesnap.errors import ProviderError
from safesnap_providers.base import (
    MANAGED_BY_KEY,
    Snapshot,
    SnapshotRequest,
    managed_labels,
)
from safesnap_providers.retry import DEFAULT_POLICY
from safesnap_providers.wrappers import unwrap
from tests.contract.harness import ProviderHarness

SourceKind = Literal["volume", "server", "instance"]


def _labels(kind: str = "manual") -> dict[str, str]:
    return managed_labels(plan="contract", target="db", run_id=uuid.uuid4().hex[:12], kind=kind)


def _request(source: str, kind: str, name: str, labels: Mapping[str, str]) -> SnapshotRequest:
    return SnapshotRequest(
        source_id=source, name=name, labels=labels, source_kind=cast(SourceKind, kind)
    )


def _create(h: ProviderHarness, labels: Mapping[str, str] | None = None) -> list[Snapshot]:
    source, kind = h.make_source()
    request = _request(source, kind, f"contract-{uuid.uuid4().hex[:6]}", labels or _labels())
    snaps = h.provider.create_snapshot(request)
    assert snaps, "create_snapshot returned no snapshot"
    return snaps


def _ids(snaps: list[Snapshot]) -> set[str]:
    return {s.id for s in snaps}


def test_create_wait_list_delete_roundtrip(harness: ProviderHarness) -> None:
    labels = _labels("nightly")
    created = _create(harness, labels)
    assert all(s.state in ("pending", "completed") for s in created)
    done = [harness.provider.wait(s, timeout=harness.wait_timeout) for s in created]
    assert all(s.state == "completed" for s in done)
    assert _ids(done) == _ids(created)

    listed = harness.provider.list_snapshots(labels)
    assert _ids(listed) == _ids(created)
    for snap in listed:  # labels survive the round trip through the provider
        assert {k: snap.labels.get(k) for k in labels} == labels
        assert snap.managed

    for snap in done:
        harness.provider.delete_snapshot(snap)
    assert harness.provider.list_snapshots(labels) == []
    for snap in done:  # idempotent: deleting what is gone succeeds
        harness.provider.delete_snapshot(snap)


def test_list_only_returns_matching_labels(harness: ProviderHarness) -> None:
    mine, other = _labels(), _labels()
    a = _create(harness, mine)
    b = _create(harness, other)
    assert _ids(harness.provider.list_snapshots(mine)) == _ids(a)
    everything = _ids(harness.provider.list_snapshots({}))
    assert _ids(a) | _ids(b) <= everything


def test_unlabelled_snapshot_is_never_listed_or_deleted(harness: ProviderHarness) -> None:
    make_foreign = harness.extras.get("make_foreign_snapshot")
    if make_foreign is None:
        pytest.skip("backend cannot create a snapshot outside safesnap")
    foreign_id = make_foreign()  # type: ignore[operator]
    assert foreign_id not in _ids(harness.provider.list_snapshots({}))
    listed = harness.provider.list_snapshots({MANAGED_BY_KEY: "safesnap"})
    assert foreign_id not in _ids(listed)

    created = _create(harness)[0]
    # The caller's view says "unlabelled", and separately a forged label set: both refused,
    # because the provider checks its own record of the labels before deleting.
    for labels in ({}, _labels()):
        forged = Snapshot(
            id=foreign_id,
            source_id=created.source_id,
            region=harness.region,
            state="completed",
            created_at=created.created_at,
            labels=labels,
        )
        with pytest.raises(ProviderError) as info:
            harness.provider.delete_snapshot(forged)
        assert not info.value.transient
    exists = harness.extras.get("exists")
    if exists is not None:
        assert exists(foreign_id)  # type: ignore[operator]


def test_copy_to_region_follows_capabilities(harness: ProviderHarness) -> None:
    caps = harness.provider.capabilities()
    snap = harness.provider.wait(_create(harness)[0], timeout=harness.wait_timeout)
    copy_labels = {**snap.labels, "kind": "manual"}
    if not caps.cross_region_copy or harness.other_region is None:
        with pytest.raises(ProviderError) as info:
            harness.provider.copy_to_region(snap, harness.other_region or "elsewhere", copy_labels)
        assert not info.value.transient
        return
    copy = harness.provider.copy_to_region(snap, harness.other_region, copy_labels)
    assert copy.region == harness.other_region
    assert copy.id != snap.id
    done = harness.provider.wait(copy, timeout=harness.wait_timeout)
    assert done.state == "completed"
    there = harness.provider.list_snapshots(copy_labels, region=harness.other_region)
    assert copy.id in _ids(there)
    found = next(s for s in there if s.id == copy.id)
    assert {k: found.labels.get(k) for k in copy_labels} == copy_labels
    assert copy.id not in _ids(
        harness.provider.list_snapshots(copy_labels)
    )  # not in the source region


def test_restore_volume_follows_capabilities(harness: ProviderHarness) -> None:
    caps = harness.provider.capabilities()
    snap = harness.provider.wait(_create(harness)[0], timeout=harness.wait_timeout)
    if not caps.restore_to_volume:
        pytest.skip("provider declares no restore_to_volume")
    zone = harness.extras.get("zone")
    new_id = harness.provider.restore_volume(
        snap, name=f"restored-{uuid.uuid4().hex[:6]}", zone=str(zone) if zone else None
    )
    assert new_id
    assert new_id != snap.source_id
    assert snap.id in _ids(harness.provider.list_snapshots(snap.labels))  # the snapshot stays


def test_list_follows_pagination(harness: ProviderHarness) -> None:
    page_size = harness.extras.get("page_size")
    if page_size is None:
        pytest.skip("backend has no small page size to test with")
    labels = _labels()
    source, kind = harness.make_source()
    want = set()
    for i in range(2 * cast(int, page_size) + 1):
        request = _request(source, kind, f"page-{i}", labels)
        want |= _ids(harness.provider.create_snapshot(request))
    assert _ids(harness.provider.list_snapshots(labels)) == want


def test_instance_set_is_one_call_with_one_snapshot_per_volume(harness: ProviderHarness) -> None:
    caps = harness.provider.capabilities()
    make_instance = harness.extras.get("make_instance")
    if not caps.multi_volume_consistent or make_instance is None:
        pytest.skip("provider declares no multi-volume consistent sets")
    labels = _labels()
    instance = make_instance()  # type: ignore[operator]
    request = SnapshotRequest(source_id=instance, name="set", labels=labels, source_kind="instance")
    snaps = harness.provider.create_snapshot(request)
    assert len(snaps) >= 2
    assert len({s.source_id for s in snaps}) == len(snaps)
    assert _ids(harness.provider.list_snapshots(labels)) == _ids(snaps)


def test_missing_source_is_a_permanent_error(harness: ProviderHarness) -> None:
    missing = harness.extras.get("missing_source")
    if missing is None:
        pytest.skip("backend names no missing source")
    source_id, kind = cast(tuple[str, str], missing)
    request = _request(source_id, kind, "x", _labels())
    with pytest.raises(ProviderError) as info:
        harness.provider.create_snapshot(request)
    assert not info.value.transient


def _client_retried(h: ProviderHarness, method: str) -> bool:
    """The adapter's client library retries `method` itself, so the wrapper must not."""
    return method in frozenset(getattr(unwrap(h.provider), "client_retries", ()))


def _calls(h: ProviderHarness, method: str) -> int:
    """Calls of `method` that reached the adapter (wrapped variant: wrappers.Counting)."""
    by_method = getattr(h.provider, "by_method", None)
    assert by_method is not None, "the pipeline's provider counts the calls it makes"
    return int(by_method[method])


@pytest.mark.parametrize(("status", "retry_after"), [(429, 2.0), (503, None)])
def test_throttling_and_5xx_are_transient(
    harness: ProviderHarness, status: int, retry_after: float | None
) -> None:
    """The adapter classifies 429/5xx as transient (with the API's retry-after); the wrapped
    provider retries such an error once, after exactly that wait, so the caller sees the answer,
    unless the client library retries that call itself: then it surfaces, never retried twice."""
    if harness.inject is None:
        pytest.skip("backend cannot inject HTTP failures")
    harness.inject(status=status, retry_after=retry_after)
    if harness.variant == "wrapped" and not _client_retried(harness, "list_snapshots"):
        assert harness.provider.list_snapshots(_labels()) == []
        assert _calls(harness, "list_snapshots") == 2
        assert len(harness.sleeps) == 1
        if retry_after is not None:
            assert harness.sleeps == [pytest.approx(retry_after)]
        return
    with pytest.raises(ProviderError) as info:
        harness.provider.list_snapshots(_labels())
    assert info.value.transient
    if retry_after is not None:
        assert info.value.retry_after == pytest.approx(retry_after)
    if harness.variant == "wrapped":
        assert _calls(harness, "list_snapshots") == 1
        assert harness.sleeps == []
    harness.provider.list_snapshots(_labels())  # the next call works again


def test_unreachable_endpoint_is_transient(harness: ProviderHarness) -> None:
    unreachable = harness.extras.get("unreachable")
    if unreachable is None:
        pytest.skip("backend cannot point the adapter at a dead endpoint")
    provider = unreachable()  # type: ignore[operator]
    with pytest.raises(ProviderError) as info:
        provider.list_snapshots(_labels())
    assert info.value.transient
    if harness.variant == "wrapped":  # retried up to the policy's cap, unless the client does
        tries = 1 if _client_retried(harness, "list_snapshots") else DEFAULT_POLICY.max_attempts
        assert provider.by_method["list_snapshots"] == tries
        assert len(harness.sleeps) == tries - 1


def test_capabilities_are_static(harness: ProviderHarness) -> None:
    assert harness.provider.capabilities() == harness.provider.capabilities()
    caps = harness.provider.capabilities()
    assert caps.volume_snapshots or caps.server_snapshots
    assert caps == unwrap(harness.provider).capabilities()  # wrappers never change them
