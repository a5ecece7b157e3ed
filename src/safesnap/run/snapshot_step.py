"""The snapshot step of a run: quiesce, request, release, wait, copy to DR regions.

The lock (MySQL FTWRL, SQLite write lock) is held only across the snapshot *request*: every
built-in provider fixes the point in time when the request returns (EBS, DigitalOcean, Hetzner
document this), so waiting for completion happens after release. A provider that declares
`point_in_time_at_request = False` is waited for inside the lock, bounded by the quiesce
watchdog. What to do branches on declared capabilities, never on the provider's type.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from safesnap.config.plan import MysqlTarget, Plan
from safesnap.config.snapshots import SnapshotSpec
from safesnap.engines import get_engine
from safesnap.errors import ConfigError, ProviderError, ProviderTimeoutError, QuiesceError
from safesnap.output import log
from safesnap.run.request import AnyTarget, RunRequest
from safesnap.snapshots.limits import DEFAULT_MAX_INTERVAL_WAIT, check_volume_limits
from safesnap_providers.base import (
    CONSISTENCY_KEY,
    CRASH_CONSISTENT,
    AdoptsUnlabelled,
    Capabilities,
    Relabels,
    Snapshot,
    SnapshotProvider,
    SnapshotRequest,
    api_call_count,
    managed_labels,
)
from safesnap_providers.registry import provider_config


def snapshot_requests(
    spec: SnapshotSpec, target: str, labels: dict[str, str]
) -> list[SnapshotRequest]:
    """Turn a target's snapshot table into provider requests (one per volume, or one set)."""
    stamp = labels["run-id"].split("-")[0].lower()
    base = f"safesnap-{target}-{stamp}"
    sources = spec.sources()
    volumes = [source for source, kind in sources if kind == "volume"]
    requests = [
        SnapshotRequest(source_id=v, name=f"{base}-{i}", labels=labels, source_kind="volume")
        for i, v in enumerate(volumes)
    ]
    requests += [
        SnapshotRequest(source_id=source, name=base, labels=labels, source_kind=kind)
        for source, kind in sources
        if kind != "volume"
    ]
    if not requests:
        # A spec naming no volume, server or instance (the command provider, some plug-ins)
        # snapshots whatever its provider covers for this target: one request, sourced by name.
        requests.append(SnapshotRequest(source_id=target, name=base, labels=labels))
    return requests


def check_capabilities(caps: Capabilities, requests: list[SnapshotRequest], provider: str) -> None:
    for request in requests:
        if request.source_kind == "volume" and not caps.volume_snapshots:
            raise ConfigError(
                f"provider {provider} cannot snapshot volumes",
                hint="Copy the database as an artifact (the default) and add [[replicas]].",
            )
        if request.source_kind == "server" and not caps.server_snapshots:
            raise ConfigError(f"provider {provider} cannot snapshot servers")


def quiesce_for(target: AnyTarget) -> AbstractContextManager[dict[str, Any]]:
    """SQLite and MySQL-in-lock-mode hold still; a MySQL dump target's volume snapshot is only
    crash-consistent (InnoDB recovers from that) and its dump is the consistent copy."""
    if isinstance(target, MysqlTarget) and target.quiesce != "lock":
        return nullcontext(
            {"quiesce": "none (dump mode: the dump artifact is the consistent copy)"}
        )
    return get_engine(target.engine).quiesce(target)


def take_snapshots(
    provider: SnapshotProvider, target: AnyTarget, request: RunRequest, run_id: str, plan: Plan
) -> dict[str, Any]:
    """Quiesce, request, release, wait, copy: one target's cloud snapshots, through the
    `provider` the run built for it (wrapped: retries, logging, dry-run)."""
    spec = target.snapshot
    assert spec is not None
    caps = provider.capabilities()
    labels = _labels(plan, target, request, run_id, spec)
    requests = snapshot_requests(spec, target.name, labels)
    check_capabilities(caps, requests, spec.provider)
    wait_timeout, copy_timeout = _timeouts(plan, spec)
    adopted: list[Snapshot] = []
    interval_wait = 0.0
    if not request.dry_run:
        adopted = adopt_unlabelled(provider, requests)
        interval_wait = check_volume_limits(
            provider,
            caps,
            requests,
            labels,
            datetime.now(UTC),
            max_wait=float(getattr(spec, "max_interval_wait", DEFAULT_MAX_INTERVAL_WAIT)),
        )
    hold: AbstractContextManager[dict[str, Any]] = (
        nullcontext({"quiesce": "none (dry run)"}) if request.dry_run else quiesce_for(target)
    )
    created: list[Snapshot] = []
    try:
        with hold as held:
            started = time.monotonic()
            # build_provider wraps the adapter in wrappers.Retrying, whose create looks for the
            # run's labelled snapshot before retrying, so a create is never repeated blindly.
            created = [snap for r in requests for snap in provider.create_snapshot(r)]
            if not caps.point_in_time_at_request:
                created = [provider.wait(s, timeout=wait_timeout) for s in created]
            elif getattr(spec, "hold_until_done", False) and "lock_wait_seconds" in held:
                left = _hold_limit(target) - (time.monotonic() - started) - HOLD_MARGIN
                created, held["held_until_done"] = _wait_in_hold(provider, created, left)
    except QuiesceError as exc:
        if not created:
            raise
        raise _not_consistent(provider, created, exc) from None
    facts: dict[str, Any] = dict(held)
    waited = time.monotonic()
    done = [provider.wait(s, timeout=wait_timeout) for s in created]
    copy_to = spec.copy_regions()
    copies = _copy_to_regions(provider, caps, done, copy_to, labels, copy_timeout)
    facts["wait_seconds"] = round(time.monotonic() - waited, 3)
    facts["snapshots"] = [_snapshot_dict(s) for s in done + copies]
    if interval_wait:
        facts["min_interval_waited_seconds"] = round(interval_wait, 1)
    if adopted:
        facts["adopted_unlabelled"] = [_snapshot_dict(s) for s in adopted]
    facts["api_calls"] = api_call_count(provider)
    facts["provider"] = spec.provider
    return facts


def adopt_unlabelled(provider: SnapshotProvider, requests: list[SnapshotRequest]) -> list[Snapshot]:
    """Label what earlier runs left unlabelled (DigitalOcean droplet images whose wait failed),
    so it is listed, reported and pruned instead of billed forever. Looking is best effort:
    a failure here is logged and must not stop today's snapshot."""
    if not isinstance(provider, AdoptsUnlabelled):
        return []
    found: list[Snapshot] = []
    for r in requests:
        try:
            found += provider.adopt_unlabelled(r)
        except ProviderError as exc:
            log.warning("could not look for unlabelled snapshots of %s: %s", r.source_id, exc)
    for snap in found:
        log.warning(
            "found snapshot %s (%s) of %s left unlabelled by an earlier run; labelled it "
            "run-id %s so retention manages it",
            snap.id,
            snap.name,
            snap.source_id,
            snap.labels.get("run-id"),
        )
    return found


HOLD_MARGIN = 1.0  # seconds kept between the end of a hold-until-done wait and the watchdog


def _hold_limit(target: AnyTarget) -> float:
    return float(getattr(target, "max_lock_hold_seconds", 30.0))


def _wait_in_hold(
    provider: SnapshotProvider, created: list[Snapshot], left: float
) -> tuple[list[Snapshot], bool]:
    """`hold_until_done`: wait for the snapshots while the database is still held, as long
    as the hold may last. Not done by then: release anyway (the watchdog would), and go on
    waiting outside; the snapshot then rests on the provider fixing the point in time at
    request, as without the option, and the report says `held_until_done: false`."""
    try:
        return [provider.wait(s, timeout=max(0.0, left)) for s in created], True
    except ProviderTimeoutError:
        log.warning(
            "snapshot not finished within max_lock_hold_seconds; released the hold, waiting on"
        )
        return created, False


def _not_consistent(
    provider: SnapshotProvider, created: list[Snapshot], exc: QuiesceError
) -> QuiesceError:
    """The watchdog released the hold before the create request returned: the snapshots exist
    but may postdate the release. Label them (where the provider can) and say so."""
    ids = ", ".join(s.id for s in created)
    labelled = isinstance(provider, Relabels)
    if isinstance(provider, Relabels):
        for snap in created:
            try:
                provider.add_labels(snap, {CONSISTENCY_KEY: CRASH_CONSISTENT})
            except ProviderError as err:
                labelled = False
                log.error("could not label snapshot %s as not consistent: %s", snap.id, err)
    how = f"labelled {CONSISTENCY_KEY}={CRASH_CONSISTENT}" if labelled else "NOT labelled"
    return QuiesceError(
        f"{exc.message}; snapshot(s) {ids} are NOT application-consistent ({how})",
        hint=exc.hint,
        target=exc.target,
    )


def _labels(
    plan: Plan, target: AnyTarget, request: RunRequest, run_id: str, spec: SnapshotSpec
) -> dict[str, str]:
    keep_days = request.keep_days or spec.keep_days
    expires = datetime.now(UTC) + timedelta(days=keep_days) if keep_days else None
    labels = managed_labels(
        plan=plan.plan, target=target.name, run_id=run_id, kind=request.kind, expires_at=expires
    )
    labels.update(request.extra_labels)
    return labels


def _copy_to_regions(
    provider: SnapshotProvider,
    caps: Capabilities,
    snapshots: list[Snapshot],
    regions: list[str],
    labels: dict[str, str],
    timeout: float,
) -> list[Snapshot]:
    if not regions:
        return []
    if not caps.cross_region_copy:
        log.warning(
            "provider %s cannot copy snapshots across regions; artifacts are replicated instead",
            provider.name,
        )
        return []
    started = [provider.copy_to_region(s, region, labels) for s in snapshots for region in regions]
    return [provider.wait(copy, timeout=timeout) for copy in started]


def _timeouts(plan: Plan, spec: SnapshotSpec) -> tuple[float, float]:
    """(wait, copy) seconds from the provider's [providers.x] table, else the spec's own
    `timeout` (command), else an hour; copies default to six hours (EBS copies take hours)."""
    config = provider_config(plan, spec.provider)
    wait = float(getattr(config, "wait_timeout", None) or spec.wait_timeout() or 3600)
    copy = float(getattr(config, "copy_wait_timeout", None) or 6 * 3600)
    return wait, copy


def _snapshot_dict(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "region": snapshot.region,
        "state": snapshot.state,
        "source_id": snapshot.source_id,
        "copied_from": snapshot.copied_from,
    }
