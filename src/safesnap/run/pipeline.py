"""One run of a plan: for each target, quiesce -> snapshot -> release -> copy -> verify ->
prune -> replicate.

Targets are independent: one failing target is reported and the others still run, because a
broken MySQL server must not cost the operator tonight's SQLite backup. That holds for any
exception, not only ours: a library error (a botocore ValueError, a PyMySQL error) fails
its step as internal_error. Only a signal (interrupts.Signalled, KeyboardInterrupt) stops the run.
Within a target a failed step skips the steps that depend on it (no prune after a failed
backup: a run that did not produce a new backup must never delete old ones).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safesnap.config.plan import Plan, use_env_file
from safesnap.engines import BackupContext, BackupOutcome, get_engine
from safesnap.errors import (
    ConfigError,
    InternalError,
    InterruptedRunError,
    ProviderError,
    SafesnapError,
)
from safesnap.output import log
from safesnap.run.lock import run_lock
from safesnap.run.report import RunReport, StepResult, Stopwatch, TargetResult, failed_step
from safesnap.run.request import AnyTarget, RunRequest
from safesnap.run.request import makes_artifact as makes_artifact
from safesnap_providers.base import SnapshotProvider
from safesnap_providers.timestamps import stamp as compact_stamp


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: 20261126T104100Z-3fa9c1 (fits every provider's label syntax)."""
    stamp = compact_stamp(now or datetime.now(UTC))
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


def start_report(plan: Plan, *, kind: str, dry_run: bool) -> RunReport:
    """An empty report with a fresh run id; `run_plan` fills it in."""
    return RunReport(run_id=new_run_id(), plan=plan.plan, kind=kind, dry_run=dry_run)


def run_plan(plan: Plan, request: RunRequest, report: RunReport | None = None) -> RunReport:
    """Run every selected target under the destination's run lock, filling `report`.

    Never raises for a target's failure, whatever its exception: it is in the report. Raises
    only for what stops the whole run: the lock, the config, a signal (InterruptedRunError,
    KeyboardInterrupt). After a signal, the `report` the caller passed in holds the targets
    that ran, the interrupted one and the ones never started, so it can still be written.
    """
    targets = select_targets(plan, request.only_targets)
    if request.env_file is not None:
        # Secrets are read deep inside engines and providers; a library caller passing only
        # RunRequest.env_file must get the same answers as the CLI's --env-file.
        use_env_file(request.env_file)
    if report is None:
        report = start_report(plan, kind=request.kind, dry_run=request.dry_run)
    watch = Stopwatch()
    dest = plan.destination.path
    try:
        if request.dry_run:
            _run_targets(plan, targets, request, report)
        else:
            from safesnap.artifacts.catalog import sweep_temporaries

            with run_lock(dest, wait=plan.run.lock_wait, run_id=report.run_id):
                swept = sweep_temporaries(dest)
                if swept.removed:
                    report.extra.update(swept.report())
                _run_targets(plan, targets, request, report)
                _drill_if_due(plan, targets, request, report)
    finally:
        report.seconds = watch.elapsed()
    return report


def _drill_if_due(
    plan: Plan, targets: list[AnyTarget], request: RunRequest, report: RunReport
) -> None:
    """`[run] drill`: on its cadence, the run ends with a drill (run/drill/hook.py)."""
    if request.snapshot_only or plan.run.drill == "off":
        return
    from safesnap.run.drill.hook import drill_if_due

    drill_if_due(plan, targets, request, report)


def _run_targets(
    plan: Plan, targets: list[AnyTarget], request: RunRequest, report: RunReport
) -> None:
    for index, target in enumerate(targets):
        result = TargetResult(name=target.name, engine=target.engine)
        report.targets.append(result)
        try:
            run_target(plan, target, request, report.run_id, result)
        except BaseException as exc:  # only a signal gets here (run_target isolates the rest)
            _record_stop(report, result, targets[index + 1 :], exc)
            raise


def _record_stop(
    report: RunReport, current: TargetResult, never_started: list[AnyTarget], exc: BaseException
) -> None:
    """Say in the report that the run was stopped, where, and what did not run."""
    error = _stop_error(exc, current.name)
    current.steps.append(StepResult("stopped", ok=False, error=error.to_dict()))
    for target in never_started:
        result = TargetResult(name=target.name, engine=target.engine)
        result.steps.append(
            StepResult("not-run", ok=False, skipped=f"the run was stopped: {error.message}")
        )
        report.targets.append(result)
    report.extra["stopped"] = error.to_dict()


def _stop_error(exc: BaseException, target: str) -> SafesnapError:
    from safesnap.run.interrupts import Signalled

    if isinstance(exc, Signalled):
        return exc.to_error(target=target)
    if isinstance(exc, SafesnapError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return InterruptedRunError(target=target)
    return InternalError.from_exception(exc, target=target)


def run_target(
    plan: Plan,
    target: AnyTarget,
    request: RunRequest,
    run_id: str,
    result: TargetResult,
) -> TargetResult:
    """Run one target's steps into `result`; any exception but a signal fails the target only.
    Signals arrive as BaseExceptions (interrupts.Signalled, KeyboardInterrupt) and pass."""
    watch = Stopwatch()
    log.info("target %s: start (%s)", target.name, target.engine)
    try:
        _target_steps(plan, target, request, run_id, result)
    except Exception as exc:  # outside any step (e.g. building a provider): fail the target
        _record_failure(result, "target", exc, watch.elapsed())
    finally:
        result.seconds = watch.elapsed()
    log.info(
        "target %s: %s in %.1f s", target.name, "ok" if result.ok else "FAILED", result.seconds
    )
    return result


def _target_steps(
    plan: Plan, target: AnyTarget, request: RunRequest, run_id: str, result: TargetResult
) -> None:
    if target.snapshot is not None:
        # One provider per target and run, built inside the first step that needs it (building
        # can fail: a missing token is that step's error), reused by the next.
        provider = _provider_once(plan, target, request)
        took = _run_step(
            result, "snapshot", lambda: _snapshot(plan, target, request, run_id, result, provider())
        )
        if took is not None and not (request.snapshot_only or request.dry_run):
            _run_step(
                result, "snapshot-prune", lambda: _snapshot_prune(plan, target, request, provider())
            )
    if not request.snapshot_only and makes_artifact(target):
        _artifact_steps(plan, target, request, run_id, result)


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


@dataclass(frozen=True)
class Skipped:
    """A step's action returns this when it decided not to run (recorded as skipped)."""

    reason: str


def _run_step(result: TargetResult, name: str, action: Callable[[], Any]) -> Any:
    """Run one step, recording it. Any exception fails the step and returns None, except a
    signal (InterruptedRunError, KeyboardInterrupt), which stops the run."""
    watch = Stopwatch()
    try:
        value = action()
    except Exception as exc:  # a library error or a bug must not cost the other targets
        _record_failure(result, name, exc, watch.elapsed())
        return None
    if isinstance(value, Skipped):
        result.steps.append(StepResult(name, seconds=watch.elapsed(), skipped=value.reason))
        return None
    details = value if isinstance(value, dict) else {}
    result.steps.append(StepResult(name, seconds=watch.elapsed(), details=_summary(name, details)))
    return value if value is not None else True


def _record_failure(result: TargetResult, step: str, exc: Exception, seconds: float) -> None:
    """Record `exc` as the step's error: ours as they are, anything else as internal_error
    (type and message; the traceback only at DEBUG, i.e. with --verbose)."""
    if isinstance(exc, SafesnapError):
        error = exc
    else:
        log.debug("target %s: %s raised", result.name, step, exc_info=exc)
        error = InternalError.from_exception(exc, target=result.name)
    error.target = error.target or result.name
    log.error("target %s: %s failed: %s", result.name, step, error.message)
    result.steps.append(failed_step(step, error, seconds))


def _summary(name: str, details: dict[str, Any]) -> dict[str, Any]:
    # The step entry keeps small facts only; big ones (the full snapshot list) live on the target.
    # The replicate step's per-replica entries (key, pruned objects) are what its report says.
    keep_lists = name.endswith("prune") or name == "replicate"
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
        others=tuple(t for t in plan.targets if t is not target),
        destination=plan.destination.path,
    )
    return get_engine(target.engine).backup(target, ctx)


def _backup_facts(outcome: BackupOutcome) -> dict[str, Any]:
    facts = {"bytes": outcome.artifact.bytes, "source_bytes": outcome.artifact.source_bytes}
    facts.update(_summary("backup", outcome.details))
    return facts


def _verify(outcome: BackupOutcome) -> dict[str, Any]:
    from safesnap.engines.verify import verify_artifact

    return verify_artifact(outcome.artifact.path, options={})


def _prune(plan: Plan, target: AnyTarget, dest: Path) -> dict[str, Any]:
    from safesnap.artifacts.prune import prune_destination

    decision = prune_destination(dest, plan.retention, target=target.name)
    return {"kept": len(decision["kept"]), "deleted": decision["deleted"]}


def _replicate(
    plan: Plan, outcome: BackupOutcome, target: AnyTarget, request: RunRequest
) -> dict[str, Any]:
    from safesnap.run.replicate import replicate_to_all

    return replicate_to_all(plan, outcome.artifact, target=target.name, env_file=request.env_file)


def _provider_once(
    plan: Plan, target: AnyTarget, request: RunRequest
) -> Callable[[], SnapshotProvider]:
    """The target's provider, built on first use (building can fail: that step's error)."""
    from safesnap_providers.registry import build_provider

    spec = target.snapshot
    assert spec is not None
    return functools.cache(
        lambda: build_provider(spec, plan, env_file=request.env_file, dry_run=request.dry_run)
    )


def _snapshot(
    plan: Plan,
    target: AnyTarget,
    request: RunRequest,
    run_id: str,
    result: TargetResult,
    provider: SnapshotProvider,
) -> dict[str, Any]:
    from safesnap.run.snapshot_step import take_snapshots

    facts = take_snapshots(provider, target, request, run_id, plan)
    result.facts.update(facts)
    return facts


def _snapshot_prune(
    plan: Plan, target: AnyTarget, request: RunRequest, provider: SnapshotProvider
) -> dict[str, Any] | Skipped:
    if not provider.capabilities().lists_snapshots:
        # A provider that cannot list (a command provider without `list`) cannot prune either.
        return Skipped(f"provider {provider.name} cannot list snapshots")
    return _prune_snapshots(plan, target, request, provider)


def _prune_snapshots(
    plan: Plan, target: AnyTarget, request: RunRequest, provider: SnapshotProvider
) -> dict[str, Any]:
    """Retention for the target's cloud snapshots (only labelled ones; see snapshot_ops)."""
    from safesnap.snapshots.ops import prune_target

    outcome = prune_target(plan, target, env_file=request.env_file, provider=provider).to_dict()
    if outcome["errors"]:
        raise ProviderError(
            f"{len(outcome['errors'])} snapshot(s) could not be deleted: {outcome['errors'][:3]}",
            transient=True,
        )
    return outcome
