"""`safesnap drill`: restore each target's newest backup into a scratch place and check it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from safesnap.cli.options import ConfigOpt, EnvFileOpt, JsonOpt
from safesnap.cli.run import emit, resolve_plan
from safesnap.config.plan import Plan
from safesnap.errors import DrillFailedError
from safesnap.output import progress, say
from safesnap.run.drill.core import DrillRequest, drill_plan, drillable
from safesnap.run.drill.outputs import write_drill_outputs
from safesnap.run.lock import run_lock
from safesnap.run.pipeline import select_targets, start_report
from safesnap.run.report import RunReport


def drill(
    config: Path | None = ConfigOpt,
    target: list[str] = typer.Option([], "--target", "-t", help="Only this target (repeatable)."),
    replica: str | None = typer.Option(
        None, "--replica", help="Fetch the newest artifact from this [[replicas]] bucket."
    ),
    snapshots: bool = typer.Option(
        False,
        "--snapshots",
        help="Also create a volume from each target's newest cloud snapshot, wait until it is "
        "available, and delete it (costs money).",
    ),
    zone: str | None = typer.Option(
        None, "--zone", help="--snapshots: availability zone or location for the volume."
    ),
    identity: Path | None = typer.Option(
        None,
        "--identity",
        envvar="SAFESNAP_AGE_IDENTITY_FILE",
        help="--replica: age identity file for encrypted objects.",
    ),
    scratch_dir: Path | None = typer.Option(
        None, "--scratch-dir", help="Where restores go (removed after). Default: the destination."
    ),
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,
) -> None:
    """Practise a restore: newest artifact of each target, checksums, restore into scratch, check
    (SQLite integrity and row counts, MySQL reload and row counts, files hashes), clean up."""
    plan = resolve_plan(config, env_file)
    request = DrillRequest(
        replica=replica,
        snapshots=snapshots,
        scratch_root=scratch_dir,
        zone=zone,
        identity=identity,
        env_file=env_file,
    )
    targets = drillable(select_targets(plan, tuple(target)), request)
    report = start_report(plan, kind="drill", dry_run=False)
    with (
        progress("drill", enabled=not json_out) as update,
        run_lock(plan.destination.path, wait=plan.run.lock_wait, run_id=report.run_id),
    ):
        drill_plan(plan, targets, replace(request, progress=update), report)
    _notify_failure(plan, report)  # first, so the report file records the deliveries
    problems = write_drill_outputs(plan, report)
    emit(report, problems, json_out, _print_human, DrillFailedError, what="drill")


def _notify_failure(plan: Plan, report: RunReport) -> None:
    """A failed drill sends `drill_failure` to the `[[notify]]` entries that list it (the
    default). Here, not in run/: notify imports run. In a nightly run a failed drill fails the
    run, and the run's own `failure` notice says so."""
    if report.ok or not plan.notify:
        return
    from safesnap.notify import dispatch, notice_for_run

    deliveries = dispatch(plan, "drill_failure", notice_for_run(report))
    if deliveries:
        report.extra.setdefault("notifications", []).extend(d.to_dict() for d in deliveries)


def _print_human(report: RunReport) -> None:
    say(f"drill {report.run_id}: plan {report.plan}, {report.seconds:.1f} s")
    for target in report.targets:
        mark = "[green]ok[/]" if target.ok else "[red]FAILED[/]"
        say(f"  {target.name} ({target.engine}): {mark} in {target.seconds:.1f} s", markup=True)
        for step in target.steps:
            message = f" - {step.error['message']}" if step.error else ""
            say(f"    {step.name}: {'ok' if step.ok else 'failed'}{message}")
        if "restored_bytes" in target.facts:
            say(f"    restored: {target.facts['restored_bytes']} bytes")
        if "scratch_removed" in target.facts:
            say(f"    scratch removed: {'yes' if target.facts['scratch_removed'] else 'NO'}")
