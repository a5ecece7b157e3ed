"""Per-volume cap and minimum interval are checked before anything is locked, against the
in-memory reference provider holding real (labelled) snapshots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from safesnap.errors import ProviderError
from safesnap.snapshots.limits import check_volume_limits
from safesnap_providers.base import Snapshot, SnapshotRequest
from safesnap_providers.testing.memory import FULL_CAPABILITIES, MemoryProvider

NOW = datetime(2026, 11, 26, 3, 15, tzinfo=UTC)
LABELS = {"managed-by": "safesnap", "plan": "p", "target": "t", "run-id": "r", "kind": "nightly"}
DO_LIKE = replace(FULL_CAPABILITIES, min_interval_seconds=600, max_snapshots_per_volume=3)


def cloud_with(ages_minutes: list[int], caps=DO_LIKE) -> tuple[MemoryProvider, str]:  # type: ignore[no-untyped-def]
    cloud = MemoryProvider(capabilities=caps, pending_polls=0)
    vol = cloud.add_volume()
    for i, age in enumerate(ages_minutes):
        cloud.add_snapshot(
            Snapshot(id=f"s{i}", source_id=vol, region="mem-1", state="completed",
                     created_at=NOW - timedelta(minutes=age), labels={**LABELS, "run-id": f"r{i}"})
        )  # fmt: skip
    return cloud, vol


def request(vol: str) -> list[SnapshotRequest]:
    return [SnapshotRequest(source_id=vol, name="n", labels=LABELS)]


def test_too_soon_after_the_last_snapshot_names_the_wait() -> None:
    cloud, vol = cloud_with([4])
    with pytest.raises(ProviderError) as info:
        check_volume_limits(cloud, DO_LIKE, request(vol), LABELS, NOW)
    assert vol in info.value.message
    assert info.value.transient is False
    assert info.value.retry_after == pytest.approx(360)


def test_at_the_cap_is_refused_with_a_prune_hint() -> None:
    cloud, vol = cloud_with([60, 120, 180])
    with pytest.raises(ProviderError, match="allows 3") as info:
        check_volume_limits(cloud, DO_LIKE, request(vol), LABELS, NOW)
    assert "prune" in (info.value.hint or "")


def test_within_limits_passes_and_other_targets_do_not_count() -> None:
    cloud, vol = cloud_with([60, 120])
    check_volume_limits(cloud, DO_LIKE, request(vol), LABELS, NOW)
    other = {**LABELS, "target": "another"}
    cloud2, vol2 = cloud_with([1, 2, 3])
    check_volume_limits(cloud2, DO_LIKE, request(vol2), other, NOW)


def test_providers_without_limits_make_no_call() -> None:
    cloud, vol = cloud_with([1, 2, 3, 4], caps=FULL_CAPABILITIES)
    before = cloud.pages_read
    check_volume_limits(cloud, FULL_CAPABILITIES, request(vol), LABELS, NOW)
    assert cloud.pages_read == before
