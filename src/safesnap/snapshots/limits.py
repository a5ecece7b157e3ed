"""Per-volume snapshot limits, checked before the database is quiesced.

DigitalOcean allows 25 snapshots per volume and one volume snapshot per 10 minutes; EBS wants
15 s between snapshots of one volume (specs/README.md). Hitting either at the API means a
failed request *while the database is held still*; checking first turns it into a clear,
early error that names the volume, the last snapshot and when to try again. Only safesnap's
own (labelled) snapshots are visible here, so a volume with hand-made snapshots can still hit
the cap at the API; the provider then reports it as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from safesnap.errors import ProviderError
from safesnap_providers.base import Capabilities, Snapshot, SnapshotProvider, SnapshotRequest


def check_volume_limits(
    provider: SnapshotProvider,
    caps: Capabilities,
    requests: Sequence[SnapshotRequest],
    labels: dict[str, str],
    now: datetime,
) -> None:
    """Raise a permanent ProviderError if a request would break the provider's cap or
    minimum interval for one of its volumes (as far as safesnap's own snapshots show)."""
    volumes = [r.source_id for r in requests if r.source_kind == "volume"]
    if not volumes or not (caps.min_interval_seconds or caps.max_snapshots_per_volume):
        return
    mine = provider.list_snapshots({"plan": labels["plan"], "target": labels["target"]})
    for volume in volumes:
        of_volume = [s for s in mine if s.source_id == volume and s.copied_from is None]
        _check_interval(provider.name, caps, volume, of_volume, now)
        _check_cap(provider.name, caps, volume, of_volume)


def _check_interval(
    provider: str, caps: Capabilities, volume: str, snaps: list[Snapshot], now: datetime
) -> None:
    if not caps.min_interval_seconds or not snaps:
        return
    last = max(s.created_at for s in snaps)
    wait = caps.min_interval_seconds - (now - last).total_seconds()
    if wait > 0:
        raise ProviderError(
            f"{provider} allows one snapshot of volume {volume} every "
            f"{caps.min_interval_seconds:.0f} s; the last one was taken at {last.isoformat()}",
            hint=f"Try again in {wait:.0f} s.",
            provider=provider,
            resource_id=volume,
            retry_after=wait,
        )


def _check_cap(provider: str, caps: Capabilities, volume: str, snaps: list[Snapshot]) -> None:
    cap = caps.max_snapshots_per_volume
    if cap is not None and len(snaps) >= cap:
        raise ProviderError(
            f"volume {volume} already has {len(snaps)} safesnap snapshots; {provider} allows {cap}",
            hint="Prune (`safesnap snapshots prune`) or lower the retention counts.",
            provider=provider,
            resource_id=volume,
        )
