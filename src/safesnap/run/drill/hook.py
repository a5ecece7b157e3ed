"""`[run] drill = "weekly"`: the nightly run drills when its cadence says so.

Runs at the end of a run, still under its run lock, over the run's artifact targets (their
newest artifact is usually the one the run just wrote and verified; a target whose backup
failed tonight is drilled on its last good artifact). Each target gets a `drill` step in the
run report, so a failed drill fails the run (exit 11) the way a failed verify does; the full
drill report is under the run report's `drill` key and goes to `drill_report_file`.
"""

from __future__ import annotations

from datetime import datetime

from safesnap.cadence import drill_due, parse_cadence
from safesnap.config.plan import Plan
from safesnap.run.drill.core import DrillRequest, drill_plan
from safesnap.run.drill.outputs import last_drill, write_drill_outputs
from safesnap.run.report import RunReport, StepResult, TargetResult
from safesnap.run.request import AnyTarget, RunRequest, makes_artifact


def drill_if_due(
    plan: Plan,
    targets: list[AnyTarget],
    request: RunRequest,
    report: RunReport,
    now: datetime | None = None,
) -> None:
    cadence = parse_cadence(plan.run.drill)
    last = last_drill(plan.destination.path)
    chosen = [t for t in targets if makes_artifact(t)]
    if not chosen or not drill_due(cadence, last, now or datetime.now().astimezone()):
        return
    drill = RunReport(run_id=report.run_id, plan=plan.plan, kind="drill", dry_run=False)
    drill_plan(plan, chosen, DrillRequest(env_file=request.env_file), drill)
    problems = write_drill_outputs(plan, drill)
    for drilled in drill.targets:
        _record(report, drilled)
    summary = drill.to_dict()
    if problems:
        summary["report_errors"] = [problem.to_dict() for problem in problems]
    report.extra["drill"] = summary


def _record(report: RunReport, drilled: TargetResult) -> None:
    """A `drill` step on the run's target: ok, or the first failed drill step's error."""
    failed = next((step for step in drilled.steps if not step.ok), None)
    step = StepResult("drill", ok=failed is None, seconds=drilled.seconds)
    if failed is not None:
        step.error = failed.error
        step.details["failed_step"] = failed.name
    if "restored_bytes" in drilled.facts:
        step.details["restored_bytes"] = drilled.facts["restored_bytes"]
    for result in report.targets:
        if result.name == drilled.name:
            result.steps.append(step)
