"""The optional `RestoredVolumes` contract (safesnap_providers.base), for every backend whose
capabilities say `drill_volumes`, bare and as build_provider wraps it (conftest.py).

What `safesnap drill --snapshots` relies on: what restore_volume made can be waited for until
usable and then deleted; deleting twice succeeds; a resource safesnap did not make is refused.

Backend extras used when offered (the fakes offer both):
- "restored_exists": (id) -> bool, asks the backend directly whether the restored volume or
  server still exists;
- "make_foreign_restore": () -> str, a volume or server without the managed-by label.
"""

from __future__ import annotations

import uuid
from typing import Literal, cast

import pytest

from safesnap.errors import ProviderError
from safesnap_providers.base import (
    RestoredVolumes,
    Snapshot,
    SnapshotProvider,
    SnapshotRequest,
    managed_labels,
)
from tests.contract.harness import ProviderHarness

SourceKind = Literal["volume", "server", "instance"]


def _drillable(h: ProviderHarness) -> RestoredVolumes:
    caps = h.provider.capabilities()
    if not (caps.restore_to_volume and caps.drill_volumes):
        pytest.skip("provider declares no drill_volumes")
    return cast(RestoredVolumes, h.provider)


def _snapshot(h: ProviderHarness) -> Snapshot:
    source, kind = h.make_source()
    labels = managed_labels(plan="contract", target="db", run_id=uuid.uuid4().hex[:12], kind="x")
    request = SnapshotRequest(
        source, f"contract-{uuid.uuid4().hex[:6]}", labels, cast(SourceKind, kind)
    )
    return h.provider.wait(h.provider.create_snapshot(request)[0], timeout=h.wait_timeout)


def _restore(provider: SnapshotProvider, h: ProviderHarness, snap: Snapshot) -> str:
    zone = h.extras.get("zone")
    return provider.restore_volume(
        snap, name=f"drill-{uuid.uuid4().hex[:6]}", zone=str(zone) if zone else None
    )


def test_restored_volume_is_waited_for_then_deleted(harness: ProviderHarness) -> None:
    volumes = _drillable(harness)
    snap = _snapshot(harness)
    new_id = _restore(harness.provider, harness, snap)
    exists = harness.extras.get("restored_exists")

    volumes.wait_volume(new_id, region=snap.region, timeout=harness.wait_timeout)
    if callable(exists):
        assert exists(new_id)
    volumes.delete_volume(new_id, region=snap.region)

    if callable(exists):
        assert not exists(new_id)
    volumes.delete_volume(new_id, region=snap.region)  # already gone: still succeeds


def test_a_volume_safesnap_did_not_make_is_never_deleted(harness: ProviderHarness) -> None:
    volumes = _drillable(harness)
    make = harness.extras.get("make_foreign_restore")
    exists = harness.extras.get("restored_exists")
    if not (callable(make) and callable(exists)):
        pytest.skip("backend cannot make an unlabelled volume")
    foreign = str(make())

    with pytest.raises(ProviderError) as caught:
        volumes.delete_volume(foreign, region=harness.region)

    assert not caught.value.transient
    assert "refusing" in caught.value.message
    assert exists(foreign)


def test_a_transient_error_while_deleting_is_retried_when_wrapped(harness: ProviderHarness) -> None:
    """Bare: the 503 reaches the caller (transient) and the volume is still there. Wrapped (as
    the drill gets it): retried, so one 503 does not leave a billed volume behind."""
    volumes = _drillable(harness)
    exists = harness.extras.get("restored_exists")
    if harness.inject is None or not callable(exists):
        pytest.skip("backend cannot inject errors")
    snap = _snapshot(harness)
    new_id = _restore(harness.provider, harness, snap)
    volumes.wait_volume(new_id, region=snap.region, timeout=harness.wait_timeout)
    harness.inject(status=503)

    if harness.variant == "bare":
        with pytest.raises(ProviderError) as caught:
            volumes.delete_volume(new_id, region=snap.region)
        assert caught.value.transient
        assert exists(new_id)
        volumes.delete_volume(new_id, region=snap.region)
    else:
        volumes.delete_volume(new_id, region=snap.region)
        assert harness.sleeps, "the wrapper did not retry"

    assert not exists(new_id)


def test_a_transient_error_while_waiting_repeats_the_poll(harness: ProviderHarness) -> None:
    """polling.py: a 503 fails one poll, not the wait (bare too: the wait is the adapter's)."""
    volumes = _drillable(harness)
    if harness.inject is None:
        pytest.skip("backend cannot inject errors")
    snap = _snapshot(harness)
    new_id = _restore(harness.provider, harness, snap)
    harness.inject(status=503)

    volumes.wait_volume(new_id, region=snap.region, timeout=harness.wait_timeout)

    volumes.delete_volume(new_id, region=snap.region)
