"""`safesnap prune --dest DIR`: apply retention per target (manifested artifacts only).

Runs under the destination's run lock (runlock.py), so it never prunes while a run writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from safesnap.artifacts.prune import prune_destination
from safesnap.cli.options import DryRunOpt, EnvFileOpt, JsonOpt
from safesnap.config.plan import Retention, load_plan
from safesnap.errors import ArtifactError, ConfigError
from safesnap.output import print_json, say
from safesnap.retention import Policy
from safesnap.run.lock import run_lock

_KEEP = "Keep {} (default from the plan's [retention], else {})."


def _opt(flag: str, what: str, default: int) -> Any:
    return typer.Option(None, flag, min=0, help=_KEEP.format(what, default))


_DEFAULTS = Retention()


def prune(
    dest: Path | None = typer.Option(
        None, "--dest", help="Destination directory (searched recursively); default: the plan's."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Plan file: its [retention] and destination are the defaults."
    ),
    keep_last: int | None = _opt("--keep-last", "the newest N", _DEFAULTS.keep_last),
    keep_daily: int | None = _opt("--keep-daily", "one per day, N days", _DEFAULTS.keep_daily),
    keep_weekly: int | None = _opt("--keep-weekly", "one per week", _DEFAULTS.keep_weekly),
    keep_monthly: int | None = _opt("--keep-monthly", "one per month", _DEFAULTS.keep_monthly),
    keep_yearly: int | None = _opt("--keep-yearly", "one per year", _DEFAULTS.keep_yearly),
    target: str | None = typer.Option(None, "--target", help="Only this target."),
    dry_run: bool = DryRunOpt,
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,  # noqa: ARG001 (its callback sets where settings come from)
) -> None:
    """Delete old backups by retention policy; the newest verified backup always stays.
    Temp files of interrupted runs (no live writer) are removed first."""
    given = (keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    defaults, plan_dest = _plan_defaults(config)
    dest = dest or plan_dest
    if dest is None:
        raise ConfigError("prune needs --dest DIR (or --config PLAN with a destination)")
    policy = policy_from_options(*given, defaults=defaults)
    if dry_run:
        result = prune_destination(dest, policy, target=target, dry_run=True)
    else:
        if not dest.is_dir():
            raise ArtifactError(f"destination not found or not a directory: {dest}")
        # The same lock a `safesnap run` holds: never prune under a run that is writing.
        with run_lock(dest):
            result = prune_destination(dest, policy, target=target)
    if json_out:
        print_json(result)
        return
    _print_human(result, "would delete" if dry_run else "deleted")


def _print_human(result: dict[str, Any], verb: str) -> None:
    for path in result["kept"]:
        say(f"keep    {path}  ({', '.join(result['reasons'][path])})")
    for path in result["deleted"]:
        say(f"{verb:<7} {path}")
    for orphan in result["orphans"]:
        say(f"orphan  {orphan} (no manifest; left alone)")
    swept = ""
    if result["swept_temp_files"]:  # the sweep at the start (catalog.sweep_temporaries)
        swept = f", {result['swept_temp_files']} leftover temp file(s) removed "
        swept += f"({result['swept_temp_bytes']} bytes)"
    say(f"{len(result['kept'])} kept, {len(result['deleted'])} {verb}{swept}")


def _plan_defaults(config: Path | None) -> tuple[Retention, Path | None]:
    if config is None:
        return Retention(), None
    plan = load_plan(config)
    return plan.retention, plan.destination.path


def policy_from_options(*given: int | None, defaults: Retention | None = None) -> Policy:
    """Without any --keep-* option, the plan's [retention] (or settings.Retention defaults);
    with some, the given ones and zero for the rest (so `--keep-last 2` means exactly that)."""
    if all(value is None for value in given):
        return Policy.from_model(defaults or Retention())
    return Policy(*(value or 0 for value in given))
