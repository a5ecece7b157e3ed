"""The dry-run contract (safesnap_providers.wrappers.DryRun), against every real backend.

What DryRun promises: reads pass through; create/delete/copy/restore do nothing and say what
they would do (an INFO line "dry-run: would ..."); the snapshots it makes up are `completed`
with ids starting `dry-run-`, and `wait` returns them unchanged without an API call.

"Do nothing" is proved twice: at the adapter boundary (the pipeline's call counter inside the
stack sees no mutating call) and in the backend itself, read directly and not through the
provider (the memory provider's state file; the DigitalOcean and Hetzner fakes' resources and
request logs; moto's snapshots and volumes; the command provider's directories). The dry-run
provider is built by registry.build_provider(dry_run=True), as `safesnap run --dry-run` does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from safesnap_providers.base import Snapshot, SnapshotProvider, SnapshotRequest, managed_labels
from tests.contract.harness import ProviderHarness
from tests.contract.wrapped import Wrapper

MUTATING = ("create_snapshot", "delete_snapshot", "copy_to_region", "restore_volume")


@dataclass
class DryRunCase:
    backend: ProviderHarness  # `backend.provider` is the bare adapter
    dry: SnapshotProvider  # the same adapter as the pipeline wraps it under --dry-run
    world: Callable[[], object]

    def mutating_calls(self) -> dict[str, int]:
        """Mutating calls that reached the adapter (the stack's wrappers.Counting)."""
        by_method = getattr(self.dry, "by_method", None)
        assert by_method is not None, "the dry-run stack counts the calls it makes"
        return {m: by_method[m] for m in MUTATING if by_method[m]}


@pytest.fixture
def case(backend: ProviderHarness, wrapper: Wrapper) -> DryRunCase:
    world = backend.extras.get("world")
    assert callable(world), "every backend shows its state for the dry-run contract"
    return DryRunCase(backend, wrapper.wrap(backend.provider, dry_run=True), world)


def _labels() -> dict[str, str]:
    return managed_labels(plan="dry", target="db", run_id=uuid.uuid4().hex[:12], kind="manual")


def _request(h: ProviderHarness, labels: dict[str, str]) -> SnapshotRequest:
    source, kind = h.make_source()
    return SnapshotRequest(
        source_id=source,
        name=f"dry-{uuid.uuid4().hex[:6]}",
        labels=labels,
        source_kind=kind,  # type: ignore[arg-type]
    )


def _real_snapshot(h: ProviderHarness, labels: dict[str, str]) -> Snapshot:
    """A completed snapshot made by the bare adapter, for the dry run to (not) act on."""
    [snap] = h.provider.create_snapshot(_request(h, labels))
    return h.provider.wait(snap, timeout=h.wait_timeout)


def _ids(snaps: list[Snapshot]) -> list[str]:
    # Ids, not whole snapshots: a backend may report progress between two reads (moto's
    # stand-in for EC2 shows `pending` on a snapshot's first describe).
    return sorted(s.id for s in snaps)


def _said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(
        r.levelno == logging.INFO and r.getMessage().startswith(f"dry-run: would {text}")
        for r in caplog.records
    )


def test_create_makes_nothing_and_returns_a_completed_stand_in(
    case: DryRunCase, caplog: pytest.LogCaptureFixture
) -> None:
    labels = _labels()
    request = _request(case.backend, labels)
    before = case.world()
    with caplog.at_level(logging.INFO, logger="safesnap.providers"):
        [snap] = case.dry.create_snapshot(request)
    assert snap.id.startswith("dry-run-")
    assert snap.state == "completed"
    assert (snap.source_id, snap.name, dict(snap.labels)) == (
        request.source_id,
        request.name,
        labels,
    )
    assert case.dry.wait(snap, timeout=0.01) == snap  # no waiting, no API call
    assert case.world() == before
    assert case.mutating_calls() == {}
    assert getattr(case.dry, "by_method")["wait"] == 0  # noqa: B009
    assert case.backend.provider.list_snapshots(labels) == []
    assert _said(caplog, "snapshot")


def test_delete_keeps_the_snapshot(case: DryRunCase, caplog: pytest.LogCaptureFixture) -> None:
    labels = _labels()
    real = _real_snapshot(case.backend, labels)
    before = case.world()
    with caplog.at_level(logging.INFO, logger="safesnap.providers"):
        case.dry.delete_snapshot(real)
    assert case.world() == before
    assert case.mutating_calls() == {}
    assert [s.id for s in case.backend.provider.list_snapshots(labels)] == [real.id]
    assert _said(caplog, "delete")


def test_copy_to_region_copies_nothing(case: DryRunCase, caplog: pytest.LogCaptureFixture) -> None:
    labels = _labels()
    real = _real_snapshot(case.backend, labels)
    region = case.backend.other_region or "elsewhere"
    copy_labels = {**labels, "kind": "nightly"}
    before = case.world()
    with caplog.at_level(logging.INFO, logger="safesnap.providers"):
        copy = case.dry.copy_to_region(real, region, copy_labels)
    assert copy.id.startswith("dry-run-")
    assert (copy.state, copy.region, copy.copied_from) == ("completed", region, real.id)
    assert dict(copy.labels) == copy_labels
    assert case.world() == before
    assert case.mutating_calls() == {}
    assert _said(caplog, "copy")


def test_restore_creates_no_volume(case: DryRunCase, caplog: pytest.LogCaptureFixture) -> None:
    real = _real_snapshot(case.backend, _labels())
    zone = case.backend.extras.get("zone")  # what the adapter would need to really restore
    before = case.world()
    with caplog.at_level(logging.INFO, logger="safesnap.providers"):
        new_id = case.dry.restore_volume(
            real, name=f"restored-{uuid.uuid4().hex[:6]}", zone=str(zone) if zone else None
        )
    assert new_id.startswith("dry-run-")
    assert case.world() == before
    assert case.mutating_calls() == {}
    assert _said(caplog, "create volume")


def test_reads_answer_truthfully(case: DryRunCase) -> None:
    """A dry run plans from the real state: listing, waiting on a real snapshot and the
    capabilities are the adapter's own answers."""
    labels = _labels()
    bare = case.backend.provider
    [pending] = bare.create_snapshot(_request(case.backend, labels))
    done = case.dry.wait(pending, timeout=case.backend.wait_timeout)
    assert (done.id, done.state) == (pending.id, "completed")
    assert (
        _ids(case.dry.list_snapshots(labels)) == _ids(bare.list_snapshots(labels)) == [pending.id]
    )
    elsewhere = case.backend.other_region
    everything = _ids(bare.list_snapshots({}, region=elsewhere))
    assert _ids(case.dry.list_snapshots({}, region=elsewhere)) == everything
    assert case.dry.capabilities() == bare.capabilities()
    assert case.mutating_calls() == {}
