"""`safesnap run`: run a whole plan (the nightly job) and `safesnap snapshot`."""

from __future__ import annotations

from pathlib import Path

import typer

from safesnap.commands.options import ConfigOpt, DryRunOpt, EnvFileOpt, JsonOpt
from safesnap.demo import prepare_demo
from safesnap.errors import ConfigError, RunFailedError
from safesnap.output import print_json, progress, say
from safesnap.pipeline import RunRequest, run_plan
from safesnap.report import RunReport, write_metrics
from safesnap.settings import Plan, load_plan

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
    with progress("backup", enabled=not json_out) as update:
        request = RunRequest(
            kind=kind,
            dry_run=dry_run,
            only_targets=tuple(target),
            env_file=env_file,
            progress=update,
        )
        report = run_plan(plan, request)
    finish(plan, report, json_out)


def finish(plan: Plan, report: RunReport, json_out: bool) -> None:
    """Write report files, print, and fail the process when any target failed."""
    from safesnap.atomic import atomic_write

    data = report.to_dict()
    if plan.run.report_file is not None and not report.dry_run:
        import json

        with atomic_write(plan.run.report_file, overwrite=True) as out:
            out.write(json.dumps(data, indent=2, default=str).encode())
    if plan.run.metrics_file is not None and not report.dry_run:
        write_metrics(plan.run.metrics_file, report)
    if json_out:
        print_json(data)
    else:
        _print_human(report)
    if not report.ok:
        failed = [t.name for t in report.targets if not t.ok]
        if json_out:
            raise typer.Exit(RunFailedError.exit_code)
        raise RunFailedError(f"run {report.run_id}: target(s) failed: {', '.join(failed)}")


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
    finish(plan_with_snapshots, run_plan(plan_with_snapshots, request), json_out)


def _parse_labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label takes KEY=VALUE, got {pair!r}")
        labels[f"user-{key}"] = value
    return labels
