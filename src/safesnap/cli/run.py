"""`safesnap run`: run a whole plan (the nightly job) and `safesnap snapshot`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from safesnap.cli.options import ConfigOpt, DryRunOpt, EnvFileOpt, JsonOpt
from safesnap.config.demo import prepare_demo
from safesnap.config.plan import Plan, load_plan
from safesnap.errors import (
    ConfigError,
    InternalError,
    InterruptedRunError,
    RunFailedError,
    SafesnapError,
)
from safesnap.notify.run_hooks import run_finished, run_started
from safesnap.output import print_json, progress, say
from safesnap.run.pipeline import run_plan, start_report
from safesnap.run.report import RunReport, write_report_files
from safesnap.run.request import RunRequest

DEFAULT_PLAN = Path("safesnap.toml")


def resolve_plan(config: Path | None, env_file: Path | None, *, demo: bool = False) -> Plan:
    if demo:
        config = prepare_demo()
    elif config is None:
        if not DEFAULT_PLAN.is_file():
            raise ConfigError(
                "no plan given and no ./safesnap.toml here",
                hint="Pass --config PLAN.toml, or try `safesnap run --demo` for the embedded demo.",
            )
        config = DEFAULT_PLAN
    return load_plan(config, env_file=env_file)


def run(
    config: Path | None = ConfigOpt,
    target: list[str] = typer.Option([], "--target", "-t", help="Only this target (repeatable)."),
    kind: str = typer.Option("nightly", "--kind", help="nightly | pre-upgrade | manual"),
    dry_run: bool = DryRunOpt,
    json_out: bool = JsonOpt,
    demo: bool = typer.Option(
        False, "--demo", help="Run the embedded demo plan (./safesnap-demo)."
    ),
    env_file: Path | None = EnvFileOpt,
) -> None:
    """Run a plan: quiesce, snapshot, copy, verify, prune, replicate; for every target."""
    plan = resolve_plan(config, env_file, demo=demo)
    _check_kind(kind)
    report = start_report(plan, kind=kind, dry_run=dry_run)
    with progress("backup", enabled=not json_out) as update:
        request = RunRequest(
            kind=kind,
            dry_run=dry_run,
            only_targets=tuple(target),
            env_file=env_file,
            progress=update,
        )
        run_reported(plan, request, report, notify=True)
    finish(plan, report, json_out)


def run_reported(
    plan: Plan, request: RunRequest, report: RunReport, *, notify: bool = False
) -> None:
    """run_plan into `report`. A target's failure never raises (it is in the report); when a
    signal stops the run, report_file and metrics still get what ran (stdout is left to the
    CLI's one error object) and the signal's error goes on to set the exit code.
    `notify`: ping the plan's healthcheck and send its notifications (start and end)."""
    try:
        if notify:  # inside: a signal during a slow start ping is a stopped run like any other
            run_started(plan, report)
        run_plan(plan, request, report)
    except BaseException as exc:
        if notify:
            run_finished(plan, report, stopped=None if report.targets else _stop_error(exc))
        if report.targets:  # a lock or config error stopped it before any target: keep the last
            _write_files(plan, report)
        raise
    if notify:
        run_finished(plan, report)


def _stop_error(exc: BaseException) -> SafesnapError:
    """What stopped a run before any target (the lock, a signal) as the error it will exit
    with; the notification says it instead of a target's step."""
    from safesnap.run.interrupts import Signalled

    if isinstance(exc, Signalled):
        return exc.to_error()
    if isinstance(exc, SafesnapError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return InterruptedRunError()
    return InternalError.from_exception(exc)


def _write_files(plan: Plan, report: RunReport) -> list[SafesnapError]:
    if report.dry_run:
        return []
    return write_report_files(
        report, report_file=plan.run.report_file, metrics_file=plan.run.metrics_file
    )


def finish(plan: Plan, report: RunReport, json_out: bool) -> None:
    """Write report files, print, and fail the process when any target failed (exit 11) or
    a report file could not be written. Each output is attempted whatever the others did."""
    emit(report, _write_files(plan, report), json_out, _print_human, RunFailedError)


def emit(
    report: RunReport,
    problems: list[SafesnapError],
    json_out: bool,
    print_human: Callable[[RunReport], None],
    failed_error: type[SafesnapError],
    what: str = "run",
) -> None:
    """Print a run's or a drill's report (JSON or human), then exit with `failed_error` when a
    target failed, else with the first report-file problem. Shared by run and drill."""
    data = report.to_dict()
    if problems:
        data["report_errors"] = [problem.to_dict() for problem in problems]
    if json_out:
        print_json(data)
    else:
        print_human(report)
    failed = [t.name for t in report.targets if not t.ok]
    error: SafesnapError | None = problems[0] if problems else None
    if failed:
        error = failed_error(f"{what} {report.run_id}: target(s) failed: {', '.join(failed)}")
    if error is None:
        return
    if json_out:
        raise typer.Exit(error.exit_code)  # the report on stdout already says what failed
    raise error


def _check_kind(kind: str) -> None:
    if kind not in ("nightly", "pre-upgrade", "manual"):
        raise ConfigError(f"--kind must be nightly, pre-upgrade or manual, not {kind!r}")


def _print_human(report: RunReport) -> None:
    """The run summary is the result: stdout (logs went to stderr while it ran)."""
    mode = " (dry run)" if report.dry_run else ""
    say(f"run {report.run_id}{mode}: plan {report.plan}, {report.seconds:.1f} s")
    for target in report.targets:
        mark = "[green]ok[/]" if target.ok else "[red]FAILED[/]"
        say(f"  {target.name} ({target.engine}): {mark} in {target.seconds:.1f} s", markup=True)
        for step in target.steps:
            status = "skipped: " + step.skipped if step.skipped else ("ok" if step.ok else "failed")
            message = f" - {step.error['message']}" if step.error else ""
            say(f"    {step.name}: {status}{message}")
        if target.artifact:
            say(f"    artifact: {target.artifact}")


def snapshot(
    config: Path | None = ConfigOpt,
    target: list[str] = typer.Option([], "--target", "-t", help="Only this target (repeatable)."),
    kind: str = typer.Option("manual", "--kind", help="nightly | pre-upgrade | manual"),
    label: list[str] = typer.Option([], "--label", help="Extra label KEY=VALUE (repeatable)."),
    keep_days: int | None = typer.Option(None, "--keep-days", min=1, help="Expire after N days."),
    dry_run: bool = DryRunOpt,
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,
) -> None:
    """Quiesce, snapshot, release, wait, copy to DR regions: cloud snapshots only."""
    plan = resolve_plan(config, env_file)
    _check_kind(kind)
    request = RunRequest(
        kind=kind,
        dry_run=dry_run,
        only_targets=tuple(target),
        snapshot_only=True,
        extra_labels=_parse_labels(label),
        keep_days=keep_days,
        env_file=env_file,
    )
    without = [
        t.name for t in plan.targets if t.snapshot is None and (not target or t.name in target)
    ]
    if without and target:
        raise ConfigError(f"target(s) {', '.join(without)} have no snapshot = {{...}} in the plan")
    plan_with_snapshots = plan.model_copy(
        update={"targets": [t for t in plan.targets if t.snapshot is not None]}
    )
    if not plan_with_snapshots.targets:
        raise ConfigError("no target in the plan has a snapshot = { provider = ... } table")
    report = start_report(plan_with_snapshots, kind=kind, dry_run=dry_run)
    run_reported(plan_with_snapshots, request, report)
    finish(plan_with_snapshots, report, json_out)


def _parse_labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label takes KEY=VALUE, got {pair!r}")
        labels[f"user-{key}"] = value
    return labels
