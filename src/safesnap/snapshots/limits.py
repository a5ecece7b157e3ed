"""Per-volume snapshot limits, checked before the database is quiesced.

DigitalOcean allows 25 snapshots per volume and one volume snapshot per 10 minutes; EBS wants
15 s between snapshots of one volume (specs/README.md). Hitting either at the API means a
failed request *while the database is held still*; checking first turns it into a clear,
early error that names the volume, the last snapshot and when to try again. Only safesnap's
own (labelled) snapshots are visible here, so a volume with hand-made snapshots can still hit
the cap at the API; the provider then reports it as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from safesnap.errors import ProviderError
from safesnap_providers.base import (
    Capabilities,
    HasProviderClock,
    Snapshot,
    SnapshotProvider,
    SnapshotRequest,
)

log = logging.getLogger("safesnap.snapshots")
DEFAULT_MAX_INTERVAL_WAIT = 60.0
# The HTTP Date header has whole seconds: wait one more so the provider's own check passes.
DATE_RESOLUTION = 1.0


def check_volume_limits(
    provider: SnapshotProvider,
    caps: Capabilities,
    requests: Sequence[SnapshotRequest],
    labels: dict[str, str],
    now: datetime,
    *,
    max_wait: float = DEFAULT_MAX_INTERVAL_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Raise a permanent ProviderError if a request would break the provider's cap or
    minimum interval for one of its volumes (as far as safesnap's own snapshots show).

    Time since the last snapshot is measured on the provider's clock (its last HTTP `Date`,
    against the snapshot's own start time, both the provider's), so a host clock that is off
    neither refuses a legal snapshot nor lets an illegal one through; `now` (the local clock)
    is used only when the provider tells no time. A remaining wait up to `max_wait` seconds is
    slept here, before anything is quiesced; a longer one fails at once, clearly. Returns the
    seconds waited."""
    volumes = [r.source_id for r in requests if r.source_kind == "volume"]
    if not volumes or not (caps.min_interval_seconds or caps.max_snapshots_per_volume):
        return 0.0
    mine = provider.list_snapshots({"plan": labels["plan"], "target": labels["target"]})
    clock = provider.provider_now() if isinstance(provider, HasProviderClock) else None
    wait = 0.0
    for volume in volumes:
        of_volume = [s for s in mine if s.source_id == volume and s.copied_from is None]
        wait = max(wait, _check_interval(provider.name, caps, volume, of_volume, clock or now))
        _check_cap(provider.name, caps, volume, of_volume)
    if wait <= 0:
        return 0.0
    if wait > max_wait:
        raise _too_soon(provider.name, caps, volumes, wait, max_wait)
    waited = wait + (DATE_RESOLUTION if clock is not None else 0.0)
    log.warning(
        "%s allows one snapshot of a volume every %.0f s: waiting %.0f s before quiescing",
        provider.name,
        caps.min_interval_seconds,
        waited,
    )
    sleep(waited)
    return waited


def _check_interval(
    provider: str, caps: Capabilities, volume: str, snaps: list[Snapshot], now: datetime
) -> float:
    """Seconds still to wait before `volume` may be snapshotted again (<= 0: none)."""
    if not caps.min_interval_seconds or not snaps:
        return 0.0
    last = max(s.created_at for s in snaps)
    log.debug("%s: last snapshot of %s at %s", provider, volume, last.isoformat())
    return caps.min_interval_seconds - (now - last).total_seconds()


def _too_soon(
    provider: str, caps: Capabilities, volumes: list[str], wait: float, max_wait: float
) -> ProviderError:
    return ProviderError(
        f"{provider} allows one snapshot of a volume every {caps.min_interval_seconds:.0f} s; "
        f"the last one of {', '.join(volumes)} was {caps.min_interval_seconds - wait:.0f} s "
        f"ago (by {provider}'s clock), so the next is possible in {wait:.0f} s",
        hint=f"Try again in {wait:.0f} s (waits up to max_interval_wait = {max_wait:.0f} s "
        "are waited out; raise it in the target's snapshot table to wait longer).",
        provider=provider,
        resource_id=volumes[0] if len(volumes) == 1 else None,
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
