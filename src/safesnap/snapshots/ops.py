"""Cloud snapshots of a plan's targets: list, find orphans, prune by retention, restore.

Used by `safesnap snapshots ...` and by the pipeline after a run (prune, orphans included). Only
snapshots labelled managed-by=safesnap with the plan's and target's labels are ever seen here,
so nothing created by hand can be listed, pruned or restored by accident.

Retention works on *runs*, not single snapshots: an AWS instance set (one snapshot per volume)
and its DR-region copies share a run id and are kept or deleted together, so retention never
leaves half a set behind. Rules, on top of `safesnap.retention.decide`:
- `nightly` runs follow the plan's keep_* policy; the newest completed run is always kept;
- `pre-upgrade` and `manual` runs are one-offs, outside the nightly series: kept until their
  `expires-at` label passes (forever without one);
- a run whose `expires-at` passed is deleted unless it is the newest completed run;
- orphans (never completed, or in state error, older than `orphan_after`) are deleted: they are
  what a crashed run left behind;
- a run with a provider-side delete protection (Hetzner `protect`) is kept until its
  `expires-at` passes (forever without one).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from safesnap.config.plan import Plan
from safesnap.config.snapshots import SnapshotSpec
from safesnap.errors import ConfigError, ProviderError, ProviderInUseError
from safesnap.retention import Policy, RetentionItem, decide
from safesnap_providers.base import Snapshot, SnapshotProvider
from safesnap_providers.registry import build_provider
from safesnap_providers.timestamps import STAMP_FORMAT, as_utc, parse_stamp

log = logging.getLogger("safesnap.snapshots")

ORPHAN_AFTER = timedelta(hours=24)  # longer than any run waits (EBS copies: hours)
CAP_WARN_MARGIN = 3  # warn when a volume is this close to its provider's snapshot cap


@dataclass
class TargetSnapshots:
    target: str
    provider: str
    regions: list[str]
    snapshots: list[Snapshot]


@dataclass
class PruneOutcome:
    target: str
    dry_run: bool
    kept: list[str] = field(default_factory=list)  # snapshot ids
    deleted: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)  # run id -> why
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "dry_run": self.dry_run,
            "kept": self.kept,
            "deleted": self.deleted,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "errors": self.errors,
        }


def targets_with_snapshots(plan: Plan, only: str | None = None) -> list[Any]:
    """The plan's targets that have a snapshot table (all, or the one named `only`)."""
    names = [t.name for t in plan.targets]
    if only is not None and only not in names:
        raise ConfigError(f"no target named {only!r}; targets: {', '.join(names)}")
    chosen = [t for t in plan.targets if (only is None or t.name == only)]
    with_snapshots = [t for t in chosen if t.snapshot is not None]
    if only is not None and not with_snapshots:
        raise ConfigError(
            f"target {only!r} has no snapshot table",
            hint="Add snapshot = { provider = ... } to the target.",
        )
    return with_snapshots


def target_labels(plan: Plan, target: Any) -> dict[str, str]:
    return {"plan": plan.plan, "target": target.name}


def regions_of(
    provider: SnapshotProvider, spec: SnapshotSpec, region: str | None = None
) -> list[str | None]:
    """The home region plus every DR region the spec copies to (or just `region`). A provider
    that does not name its home region is asked for its default one (None), never skipped:
    otherwise a plan with copy_to would list only the DR region and prune half its snapshots."""
    if region is not None:
        return [region]
    home = provider.region or None
    extra = spec.copy_regions()
    return list(dict.fromkeys([home, *extra]))


def list_target(
    plan: Plan,
    target: Any,
    *,
    region: str | None = None,
    env_file: Path | None = None,
    provider: SnapshotProvider | None = None,
) -> TargetSnapshots:
    spec = target.snapshot
    provider = provider or build_provider(spec, plan, env_file=env_file)
    regions = regions_of(provider, spec, region)
    labels = target_labels(plan, target)
    found: list[Snapshot] = []
    for where in regions:
        found.extend(provider.list_snapshots(labels, region=where))
    found.sort(key=lambda s: (s.created_at, s.id))
    names = [where or "default" for where in regions]
    return TargetSnapshots(target.name, str(spec.provider), names, found)


def is_orphan(snap: Snapshot, now: datetime, orphan_after: timedelta = ORPHAN_AFTER) -> bool:
    """Labelled but never completed: in error, or still pending long after any run ended."""
    if snap.state == "error":
        return True
    return snap.state != "completed" and now - as_utc(snap.created_at) > orphan_after


def snapshot_row(snap: Snapshot, now: datetime) -> dict[str, Any]:
    return {
        "id": snap.id,
        "region": snap.region,
        "state": snap.state,
        "created_at": as_utc(snap.created_at).isoformat(),
        "source_id": snap.source_id,
        "kind": snap.labels.get("kind"),
        "run_id": snap.labels.get("run-id"),
        "expires_at": snap.labels.get("expires-at"),
        "copied_from": snap.copied_from,
        "size_gb": snap.size_gb,
        "name": snap.name,
        "orphan": is_orphan(snap, now),
    }


def _expires(snaps: Iterable[Snapshot]) -> datetime | None:
    for snap in snaps:
        value = snap.labels.get("expires-at")
        if value:
            try:
                return parse_stamp(value)
            except ValueError:
                return datetime.max.replace(tzinfo=UTC)  # unreadable: never treat as expired
    return None


def run_of(snap: Snapshot) -> str:
    return snap.labels.get("run-id") or snap.id


def group_runs(snaps: Sequence[Snapshot]) -> dict[str, list[Snapshot]]:
    runs: dict[str, list[Snapshot]] = defaultdict(list)
    for snap in snaps:
        runs[run_of(snap)].append(snap)
    return dict(runs)


def plan_prune(
    snaps: Sequence[Snapshot],
    policy: Policy,
    now: datetime,
    orphan_after: timedelta = ORPHAN_AFTER,
) -> tuple[set[str], dict[str, list[str]]]:
    """Pure: the run ids to delete, and why every run is kept or deleted."""
    runs = group_runs([s for s in snaps if s.managed])
    reasons: dict[str, list[str]] = {}
    complete = {rid: ss for rid, ss in runs.items() if all(s.state == "completed" for s in ss)}
    # Ties broken by run id, as retention.decide breaks them, so both agree on "newest".
    newest = max(
        complete, key=lambda r: (min(as_utc(s.created_at) for s in complete[r]), r), default=None
    )
    delete: set[str] = set()
    nightly = [_item(rid, ss) for rid, ss in complete.items() if _kind(ss) == "nightly"]
    decision = decide(nightly, now, policy)
    reasons.update(decision.reasons)
    delete.update(i.id for i in decision.delete)
    for rid, ss in runs.items():
        expires = _expires(ss)
        if rid not in complete:
            if any(is_orphan(s, now, orphan_after) for s in ss):
                delete.add(rid)
                reasons[rid] = ["orphan: never completed"]
            else:
                reasons[rid] = ["in progress"]
        elif expires is not None and expires <= now:
            delete.add(rid)
            reasons.setdefault(rid, []).append(f"expired {expires.isoformat()}")
        elif _kind(ss) != "nightly":
            reasons[rid] = [
                f"{_kind(ss)}: kept until {expires.isoformat() if expires else 'deleted by hand'}"
            ]
    if newest is not None and newest in delete:
        delete.discard(newest)
        reasons.setdefault(newest, []).append("newest completed run")
    for rid in _provider_protected(runs, now) & delete:
        # Delete protection set by the provider (Hetzner `protect`) outranks the policy until
        # the run's expires-at; the adapter would refuse the delete anyway.
        delete.discard(rid)
        reasons.setdefault(rid, []).append("delete protection, not expired")
    return delete, reasons


def _provider_protected(runs: dict[str, list[Snapshot]], now: datetime) -> set[str]:
    out = set()
    for rid, ss in runs.items():
        expires = _expires(ss)
        if any(s.protected for s in ss) and (expires is None or expires > now):
            out.add(rid)
    return out


def _kind(snaps: Sequence[Snapshot]) -> str:
    return snaps[0].labels.get("kind", "nightly")


def _item(run_id: str, snaps: Sequence[Snapshot]) -> RetentionItem:
    return RetentionItem(
        id=run_id, created_at=min(as_utc(s.created_at) for s in snaps), verified=True, managed=True
    )


def cap_warnings(snaps: Sequence[Snapshot], cap: int | None, provider: str) -> list[str]:
    """DigitalOcean allows 25 snapshots per volume: say so before a run hits the wall."""
    if cap is None:
        return []
    per_source = Counter(s.source_id for s in snaps)
    return [
        f"{source} has {n} snapshots; {provider} allows {cap} per volume"
        for source, n in sorted(per_source.items())
        if n >= cap - CAP_WARN_MARGIN
    ]


def prune_target(
    plan: Plan,
    target: Any,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    env_file: Path | None = None,
    provider: SnapshotProvider | None = None,
) -> PruneOutcome:
    """Delete the target's snapshots that retention does not keep (all regions)."""
    now = now or datetime.now(UTC)
    provider = provider or build_provider(target.snapshot, plan, env_file=env_file)
    listed = list_target(plan, target, env_file=env_file, provider=provider)
    delete_runs, reasons = plan_prune(listed.snapshots, Policy.from_model(plan.retention), now)
    out = PruneOutcome(target.name, dry_run, reasons=reasons)
    for snap in listed.snapshots:
        if run_of(snap) not in delete_runs:
            out.kept.append(snap.id)
        elif dry_run:
            out.deleted.append(snap.id)
        else:
            _delete(provider, snap, out)
    kept = [s for s in listed.snapshots if s.id in set(out.kept)]
    caps = provider.capabilities()
    out.warnings += cap_warnings(kept, caps.max_snapshots_per_volume, listed.provider)
    return out


def _delete(provider: SnapshotProvider, snap: Snapshot, out: PruneOutcome) -> None:
    try:
        provider.delete_snapshot(snap)
        out.deleted.append(snap.id)
    except ProviderInUseError as exc:
        # Something else still uses it (an AMI registered from an EBS snapshot): nothing
        # safesnap can fix, and failing every night would bury real failures. Kept, and said.
        out.warnings.append(f"{snap.id}: kept, still in use: {exc.message}")
        out.kept.append(snap.id)
    except ProviderError as exc:
        # One stuck snapshot must not stop the rest of the prune; the run reports it.
        out.errors.append(f"{snap.id}: {exc.message}")
        out.kept.append(snap.id)


def find_snapshot(listed: TargetSnapshots, snapshot_id: str) -> Snapshot:
    for snap in listed.snapshots:
        if snap.id == snapshot_id:
            return snap
    raise ConfigError(
        f"snapshot {snapshot_id} is not a safesnap snapshot of target {listed.target} "
        f"(looked in {', '.join(listed.regions) or 'the default region'})",
        hint="`safesnap snapshots list --target NAME` shows the ones safesnap can restore.",
    )


def restore_snapshot(
    plan: Plan,
    target: Any,
    snapshot_id: str,
    *,
    zone: str | None = None,
    name: str | None = None,
    env_file: Path | None = None,
    provider: SnapshotProvider | None = None,
    size: str | None = None,
) -> dict[str, Any]:
    """Create a NEW volume (or server) from one of the target's snapshots; never overwrites.
    `size`: the new server's size (DigitalOcean slug, Hetzner server type); default: the
    plan's `restore_size` / `restore_server_type`, else the smallest that fits."""
    provider = provider or build_provider(target.snapshot, plan, env_file=env_file)
    if not provider.capabilities().restore_to_volume:
        raise ConfigError(f"provider {target.snapshot.provider} cannot restore snapshots here")
    snap = find_snapshot(
        list_target(plan, target, env_file=env_file, provider=provider), snapshot_id
    )
    if snap.state != "completed":
        raise ProviderError(
            f"snapshot {snap.id} is {snap.state}, not completed",
            resource_id=snap.id,
            hint="Wait for it to complete, then retry.",
        )
    new_name = (
        name or f"safesnap-restore-{target.name}-{datetime.now(UTC).strftime(STAMP_FORMAT).lower()}"
    )
    new_id = provider.restore_volume(snap, name=new_name, zone=zone, size=size)
    return {
        "snapshot_id": snap.id,
        "region": snap.region,
        "new_id": new_id,
        "name": new_name,
        "zone": zone,
    }
