"""`safesnap drill --snapshots`: prove the newest cloud snapshot of a target restores.

A volume is created from the target's newest completed snapshot in its home region (labelled
managed-by=safesnap, as every restore makes it), the drill waits until the provider reports it
available, then deletes it. The volume costs money while it exists, so it is deleted on every
way out: success, a failed or timed-out wait, SIGTERM (a signal unwinds through here, see
run/interrupts.py). A volume that cannot be deleted fails the step, naming the volume.

Only providers whose capabilities say `drill_volumes` can do this (AWS EBS, DigitalOcean
volumes and droplets, Hetzner servers, memory);
for the others the step fails with what to do instead.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from safesnap.config.plan import Plan
from safesnap.errors import ConfigError, ProviderError
from safesnap.run import interrupts
from safesnap.run.request import AnyTarget
from safesnap_providers.base import RestoredVolumes, Snapshot, SnapshotProvider
from safesnap_providers.timestamps import stamp

if TYPE_CHECKING:
    from safesnap.run.drill.core import DrillRequest

log = logging.getLogger("safesnap")


def volume_drill(plan: Plan, target: AnyTarget, request: DrillRequest) -> dict[str, Any]:
    from safesnap_providers.registry import build_provider

    spec = target.snapshot
    assert spec is not None  # the caller checked
    provider = build_provider(spec, plan, env_file=request.env_file)
    caps = provider.capabilities()
    if not (caps.restore_to_volume and caps.drill_volumes):
        raise ConfigError(
            f"target {target.name}: provider {spec.provider} cannot restore a snapshot to a "
            "volume and delete it again in a drill",
            hint="Practise with `safesnap snapshots restore` and remove the result by hand.",
        )
    snap = newest_snapshot(plan, target, provider)
    name = f"safesnap-drill-{target.name}-{stamp(datetime.now(UTC)).lower()}"
    started = time.monotonic()
    volumes = cast(RestoredVolumes, provider)  # drill_volumes: the adapter implements it
    volume_id: str | None = None
    try:
        # SIGTERM during the create call would lose the new volume's id: held until it returns.
        with interrupts.deferred():
            volume_id = provider.restore_volume(snap, name=name, zone=request.zone)
        volumes.wait_volume(volume_id, region=snap.region, timeout=_timeout(plan, spec))
    except BaseException:
        if volume_id is not None:
            _delete_quietly(volumes, volume_id, snap.region)
        raise
    available = time.monotonic() - started
    _delete(volumes, volume_id, snap.region)
    return {
        "snapshot_id": snap.id,
        "snapshot_created_at": snap.created_at.isoformat(),
        "region": snap.region,
        "volume_id": volume_id,
        "available_seconds": round(available, 3),
        "volume_deleted": True,
    }


def newest_snapshot(plan: Plan, target: AnyTarget, provider: SnapshotProvider) -> Snapshot:
    """The newest completed snapshot of the target in the provider's home region."""
    from safesnap.snapshots.ops import list_target

    listed = list_target(plan, target, region=provider.region, provider=provider)
    done = [s for s in listed.snapshots if s.state == "completed"]
    if not done:
        raise ProviderError(
            f"target {target.name}: no completed snapshot to restore "
            f"(looked in {', '.join(listed.regions)})",
            target=target.name,
            hint="Run `safesnap snapshot` or `safesnap run` first.",
        )
    return max(done, key=lambda s: (s.created_at, s.id))


def _timeout(plan: Plan, spec: Any) -> float:
    from safesnap_providers.registry import provider_config

    config = provider_config(plan, spec.provider)
    return float(getattr(config, "wait_timeout", None) or spec.wait_timeout() or 3600)


def _delete(volumes: RestoredVolumes, volume_id: str, region: str) -> None:
    try:
        volumes.delete_volume(volume_id, region=region)
    except ProviderError as exc:
        exc.message = f"{exc.message}; delete volume {volume_id} ({region}) by hand"
        raise


def _delete_quietly(volumes: RestoredVolumes, volume_id: str, region: str) -> None:
    """On a failure path: the wait's error is the one to report; this one is logged."""
    try:
        volumes.delete_volume(volume_id, region=region)
    except Exception as exc:  # never hide the original error
        log.error("could not delete drill volume %s (%s): %s; delete it by hand", volume_id,
                  region, exc)  # fmt: skip
