"""One run of a plan: for each target, quiesce -> snapshot -> release -> copy -> verify ->
prune -> replicate.

Targets are independent: one failing target is reported and the others still run, because a
broken MySQL server must not cost the operator tonight's SQLite backup. Within a target a
failed step skips the steps that depend on it (no prune after a failed backup: a run that did
not produce a new backup must never delete old ones).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safesnap.engines import BackupContext, BackupOutcome, get_engine
from safesnap.errors import ConfigError, ProviderError, SafesnapError
from safesnap.output import log
from safesnap.report import RunReport, StepResult, Stopwatch, TargetResult, failed_step
from safesnap.runlock import run_lock
from safesnap.settings import FilesTarget, MysqlTarget, Plan, SqliteTarget
from safesnap_providers.base import SnapshotProvider

AnyTarget = SqliteTarget | MysqlTarget | FilesTarget


@dataclass(frozen=True)
class RunRequest:
    """What the operator asked for on the command line, on top of the plan."""

    kind: str = "nightly"  # nightly | pre-upgrade | manual
    dry_run: bool = False
    only_targets: tuple[str, ...] = ()
    snapshot_only: bool = False  # `safesnap snapshot`: no artifacts, no artifact prune
    extra_labels: dict[str, str] = field(default_factory=dict)
    keep_days: int | None = None
    env_file: Path | None = None
    progress: Callable[[int, int | None], None] | None = None


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: 20261126T104100Z-3fa9c1 (fits every provider's label syntax)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def select_targets(plan: Plan, names: tuple[str, ...]) -> list[AnyTarget]:
    if not names:
        return list(plan.targets)
    known = {t.name: t for t in plan.targets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"no target named {', '.join(unknown)} in the plan",
            hint=f"targets in this plan: {', '.join(known)}",
        )
    return [known[n] for n in names]


def run_plan(plan: Plan, request: RunRequest) -> RunReport:
    """Run every selected target under the destination's run lock; never raises for a target
    failure (it is in the report), only for problems that stop the whole run (lock, config)."""
    targets = select_targets(plan, request.only_targets)
    run_id = new_run_id()
    report = RunReport(run_id=run_id, plan=plan.plan, kind=request.kind, dry_run=request.dry_run)
    watch = Stopwatch()
    dest = plan.destination.path
    if request.dry_run:
        report.targets = [run_target(plan, t, request, run_id) for t in targets]
    else:
        from safesnap.catalog import sweep_temporaries

        with run_lock(dest, wait=plan.run.lock_wait, run_id=run_id):
            swept = sweep_temporaries(dest)
            if swept.removed:
                report.extra.update(swept.report())
            report.targets = [run_target(plan, t, request, run_id) for t in targets]
    report.seconds = watch.elapsed()
    return report


def run_target(plan: Plan, target: AnyTarget, request: RunRequest, run_id: str) -> TargetResult:
    result = TargetResult(name=target.name, engine=target.engine)
    watch = Stopwatch()
    log.info("target %s: start (%s)", target.name, target.engine)
    if target.snapshot is not None:
        took = _run_step(
            result, "snapshot", lambda: _snapshot(plan, target, request, run_id, result)
        )
        if took is not None and not (request.snapshot_only or request.dry_run):
            _snapshot_prune_step(plan, target, request, result)
    if not request.snapshot_only and makes_artifact(target):
        _artifact_steps(plan, target, request, run_id, result)
    result.seconds = watch.elapsed()
    log.info(
        "target %s: %s in %.1f s", target.name, "ok" if result.ok else "FAILED", result.seconds
    )
    return result


def makes_artifact(target: AnyTarget) -> bool:
    """SQLite targets always get a database copy; MySQL only in dump mode (in lock mode the
    volume snapshot is the backup)."""
    return not (isinstance(target, MysqlTarget) and target.quiesce == "lock")


def _artifact_steps(
    plan: Plan, target: AnyTarget, request: RunRequest, run_id: str, result: TargetResult
) -> None:
    dest = plan.destination.path / target.name
    if request.dry_run:
        result.steps.append(
            StepResult("backup", skipped=f"dry run: would back up {target.name} into {dest}")
        )
        return
    outcome = _run_step(result, "backup", lambda: _backup(plan, target, request, run_id, dest))
    if outcome is None:
        return
    result.artifact = str(outcome.artifact.path)
    result.sha256 = outcome.artifact.sha256
    result.steps[-1].details.update(_backup_facts(outcome))
    if plan.run.verify:
        verified = _run_step(result, "verify", lambda: _verify(outcome))
        if verified is None:
            return
    _run_step(result, "prune", lambda: _prune(plan, target, dest))
    if plan.replicas:
        _run_step(result, "replicate", lambda: _replicate(plan, outcome, target, request))


def _run_step(result: TargetResult, name: str, action: Callable[[], Any]) -> Any:
    """Run one step, recording it; a SafesnapError fails the step (and returns None)."""
    watch = Stopwatch()
    try:
        value = action()
    except SafesnapError as exc:
        exc.target = exc.target or result.name
        log.error("target %s: %s failed: %s", result.name, name, exc.message)
        result.steps.append(failed_step(name, exc, watch.elapsed()))
        return None
    details = value if isinstance(value, dict) else {}
    result.steps.append(StepResult(name, seconds=watch.elapsed(), details=_summary(name, details)))
    return value if value is not None else True


def _summary(name: str, details: dict[str, Any]) -> dict[str, Any]:
    # The step entry keeps small facts only; big ones (the full snapshot list) live on the target.
    keep_lists = name.endswith("prune")
    return {k: v for k, v in details.items() if keep_lists or not isinstance(v, list | dict)}


def _backup(
    plan: Plan, target: AnyTarget, request: RunRequest, run_id: str, dest: Path
) -> BackupOutcome:
    ctx = BackupContext(
        dest=dest,
        compression=plan.destination.compression,
        level=plan.destination.compression_level,
        threads=plan.destination.compression_threads,
        kind=request.kind,
        plan=plan.plan,
        run_id=run_id,
        progress=request.progress,
    )
    return get_engine(target.engine).backup(target, ctx)


def _backup_facts(outcome: BackupOutcome) -> dict[str, Any]:
    facts = {"bytes": outcome.artifact.bytes, "source_bytes": outcome.artifact.source_bytes}
    facts.update(_summary("backup", outcome.details))
    return facts


def _verify(outcome: BackupOutcome) -> dict[str, Any]:
    from safesnap.verification import verify_artifact

    return verify_artifact(outcome.artifact.path, options={})


def _prune(plan: Plan, target: AnyTarget, dest: Path) -> dict[str, Any]:
    from safesnap.catalog import prune_destination

    decision = prune_destination(dest, plan.retention, target=target.name)
    return {"kept": len(decision["kept"]), "deleted": decision["deleted"]}


def _replicate(
    plan: Plan, outcome: BackupOutcome, target: AnyTarget, request: RunRequest
) -> dict[str, Any]:
    from safesnap.replicate import replicate_artifact

    copies = [
        replicate_artifact(outcome.artifact, replica, target=target.name, env_file=request.env_file)
        for replica in plan.replicas
    ]
    return {"replicas": copies}


def _snapshot(
    plan: Plan, target: AnyTarget, request: RunRequest, run_id: str, result: TargetResult
) -> dict[str, Any]:
    from safesnap.snapshot_step import take_snapshots

    facts = take_snapshots(plan, target, request, run_id)
    result.facts.update(facts)
    return facts


def _snapshot_prune_step(
    plan: Plan, target: AnyTarget, request: RunRequest, result: TargetResult
) -> None:
    from safesnap_providers.registry import build_provider

    provider = build_provider(target.snapshot, plan, env_file=request.env_file)
    if not provider.capabilities().lists_snapshots:
        # A provider that cannot list (a command provider without `list`) cannot prune either.
        result.steps.append(
            StepResult("snapshot-prune", skipped=f"provider {provider.name} cannot list snapshots")
        )
        return
    _run_step(result, "snapshot-prune", lambda: _prune_snapshots(plan, target, request, provider))


def _prune_snapshots(
    plan: Plan, target: AnyTarget, request: RunRequest, provider: SnapshotProvider
) -> dict[str, Any]:
    """Retention for the target's cloud snapshots (only labelled ones; see snapshot_ops)."""
    from safesnap.snapshot_ops import prune_target

    outcome = prune_target(plan, target, env_file=request.env_file, provider=provider).to_dict()
    if outcome["errors"]:
        raise ProviderError(
            f"{len(outcome['errors'])} snapshot(s) could not be deleted: {outcome['errors'][:3]}",
            transient=True,
        )
    return outcome
