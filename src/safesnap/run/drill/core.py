"""A drill: prove each target's newest backup restores, then leave nothing behind.

Per target (each on its own: one failing target never stops the next), steps recorded like a
run's, in a RunReport of kind `drill`:
1. `fetch`: the newest artifact, from the destination or (`replica`) downloaded from the
   replica bucket into the scratch directory (checksums checked, decrypted);
2. `checksum`: stored and content sha256 and sizes against the manifest (engines/verify.py);
3. `restore`: into the scratch place, checked against the manifest (drill/checks.py);
4. `snapshot-restore` (opt-in, it costs money): a volume from the target's newest cloud
   snapshot, waited for, deleted (drill/volumes.py).
The scratch directory goes with the target (artifacts/scratch.py), also on failure and SIGTERM.
Artifacts are only read: a drill never rewrites a manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safesnap.artifacts.catalog import scan
from safesnap.artifacts.scratch import scratch_dir, sweep_scratch
from safesnap.config.plan import MysqlTarget, ObjectStoreReplica, Plan
from safesnap.engines.verify import check_checksums
from safesnap.errors import ArtifactError, ConfigError, InternalError, SafesnapError
from safesnap.output import log
from safesnap.run.drill.checks import restore_and_check
from safesnap.run.report import RunReport, StepResult, Stopwatch, TargetResult, failed_step
from safesnap.run.request import AnyTarget, makes_artifact

Progress = Callable[[int, int | None], None]
DRILL = "drill"  # scratch directories are .safesnap-drill.<target>.<random>


@dataclass(frozen=True)
class DrillRequest:
    """What the operator asked of this drill, on top of the plan."""

    replica: str | None = None  # fetch from this [[replicas]] bucket instead of the destination
    snapshots: bool = False  # also restore a volume from each target's newest cloud snapshot
    scratch_root: Path | None = None  # where scratch directories go; default: the destination
    zone: str | None = None  # availability zone / location for snapshot volumes
    identity: Path | None = None  # age identity for encrypted replica objects
    env_file: Path | None = None
    progress: Progress | None = None


def drillable(targets: list[AnyTarget], request: DrillRequest) -> list[AnyTarget]:
    """The targets a drill has something to do for; ConfigError when there is none."""
    chosen = [
        t for t in targets if makes_artifact(t) or (request.snapshots and t.snapshot is not None)
    ]
    if not chosen:
        raise ConfigError(
            "nothing to drill: no selected target writes artifacts",
            hint="MySQL targets with quiesce = 'lock' are drilled with --snapshots only.",
        )
    return chosen


def drill_plan(
    plan: Plan, targets: list[AnyTarget], request: DrillRequest, report: RunReport
) -> RunReport:
    """Drill every target into `report`. Raises only for what stops the whole drill: an unknown
    replica, a signal (after the current target's scratch is removed)."""
    replica = find_replica(plan, request.replica)
    root = request.scratch_root or plan.destination.path
    watch = Stopwatch()
    swept = sweep_scratch(root, DRILL)
    if swept:
        report.extra["swept_scratch"] = swept
    if replica is not None:
        report.extra["replica"] = replica.name
    try:
        for target in targets:
            result = TargetResult(name=target.name, engine=target.engine)
            report.targets.append(result)
            drill_target(plan, target, request, replica, root, result)
    finally:
        report.seconds = watch.elapsed()
    return report


def find_replica(plan: Plan, name: str | None) -> ObjectStoreReplica | None:
    if name is None:
        return None
    for replica in plan.replicas:
        if replica.name == name:
            return replica
    known = ", ".join(r.name for r in plan.replicas) or "none"
    raise ConfigError(f"no replica named {name!r} in the plan (replicas: {known})")


def drill_target(
    plan: Plan,
    target: AnyTarget,
    request: DrillRequest,
    replica: ObjectStoreReplica | None,
    root: Path,
    result: TargetResult,
) -> None:
    """One target's drill into `result`; any exception but a signal fails this target only."""
    watch = Stopwatch()
    log.info("drill %s: start", target.name)
    try:
        if makes_artifact(target):
            _artifact_drill(plan, target, request, replica, root, result)
        if request.snapshots and target.snapshot is not None:
            from safesnap.run.drill.volumes import volume_drill

            _step(result, "snapshot-restore", lambda: volume_drill(plan, target, request))
    except Exception as exc:  # outside any step (the scratch directory cannot be made)
        _fail(result, "target", exc, watch.elapsed())
    finally:
        result.seconds = watch.elapsed()
    log.info("drill %s: %s in %.1f s", target.name, "ok" if result.ok else "FAILED", result.seconds)


def _artifact_drill(
    plan: Plan,
    target: AnyTarget,
    request: DrillRequest,
    replica: ObjectStoreReplica | None,
    root: Path,
    result: TargetResult,
) -> None:
    with scratch_dir(root, DRILL, target.name) as scratch:
        _in_scratch(plan, target, request, replica, scratch, result)
    result.facts["scratch_removed"] = not scratch.exists()


def _in_scratch(
    plan: Plan,
    target: AnyTarget,
    request: DrillRequest,
    replica: ObjectStoreReplica | None,
    scratch: Path,
    result: TargetResult,
) -> None:
    """fetch -> checksum -> restore; a failed step skips the ones after it."""
    artifact = _step(result, "fetch", lambda: _fetch(plan, target, request, replica, scratch))
    if artifact is None:
        return
    result.artifact = str(artifact)
    manifest = _step(
        result, "checksum", lambda: check_checksums(artifact, request.progress), _manifest_summary
    )
    if manifest is None:
        return
    result.sha256 = manifest.get("sha256")
    options = target_options(target)
    restored = _step(
        result, "restore", lambda: restore_and_check(artifact, manifest, scratch, options)
    )
    if restored is not None:
        result.facts["restored_bytes"] = restored["restored_bytes"]
        if "row_counts" in restored:
            result.facts["row_counts"] = restored["row_counts"]


def _fetch(
    plan: Plan,
    target: AnyTarget,
    request: DrillRequest,
    replica: ObjectStoreReplica | None,
    scratch: Path,
) -> Path:
    if replica is not None:
        return _fetch_replica(replica, target, request, scratch)
    found = scan(plan.destination.path, target=target.name)
    if not found.entries:
        raise ArtifactError(
            f"no artifact of target {target.name} in {plan.destination.path}",
            target=target.name,
            hint="Run `safesnap run` first; `safesnap list` shows what the destination holds.",
        )
    return found.entries[0].path


def _fetch_replica(
    replica: ObjectStoreReplica, target: AnyTarget, request: DrillRequest, scratch: Path
) -> Path:
    """Download, check both checksums and decrypt into the scratch directory (replicas/fetch.py):
    a damaged or undecryptable object fails here, before anything is restored."""
    from safesnap.replicas.fetch import fetch_latest

    return fetch_latest(
        replica,
        target.name,
        scratch / "fetched",
        identity=request.identity,
        env_file=request.env_file,
        progress=request.progress,
    )


def target_options(target: AnyTarget) -> dict[str, Any]:
    """The engine options that reach the target's own server (MySQL): the drill reloads into a
    scratch database there, as `safesnap verify` does. Secrets stay names (password_env)."""
    if not isinstance(target, MysqlTarget):
        return {}
    given = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "socket": target.socket,
        "password_env": target.password_env,
        "connect_timeout": target.connect_timeout,
        "command_prefix": list(target.dump.command_prefix) or None,
    }
    return {k: v for k, v in given.items() if v is not None}


def _step(
    result: TargetResult,
    name: str,
    action: Callable[[], Any],
    summary: Callable[[Any], dict[str, Any]] | None = None,
) -> Any:
    """Run one step, recording it; an exception fails it and returns None (signals pass)."""
    watch = Stopwatch()
    try:
        value = action()
    except Exception as exc:  # a library error must not cost the other targets their drill
        _fail(result, name, exc, watch.elapsed())
        return None
    details = (summary or _scalars)(value)
    result.steps.append(StepResult(name, seconds=watch.elapsed(), details=details))
    return value


def _scalars(value: Any) -> dict[str, Any]:
    """The step keeps small facts; lists and tables (row counts) go on the target."""
    if isinstance(value, Path):
        return {"artifact": str(value)}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if not isinstance(v, list | dict)}


def _manifest_summary(manifest: Any) -> dict[str, Any]:
    keys = ("created_at", "bytes", "source_bytes", "sha256", "compression")
    return {k: manifest.get(k) for k in keys}


def _fail(result: TargetResult, step: str, exc: Exception, seconds: float) -> None:
    if isinstance(exc, SafesnapError):
        error = exc
    else:
        log.debug("drill %s: %s raised", result.name, step, exc_info=exc)
        error = InternalError.from_exception(exc, target=result.name)
    error.target = error.target or result.name
    log.error("drill %s: %s failed: %s", result.name, step, error.message)
    result.steps.append(failed_step(step, error, seconds))
