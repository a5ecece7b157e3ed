"""`safesnap schedule install|show|remove`: run a plan every night from a systemd timer (or a
cron.d line where there is no systemd)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from safesnap.cli.options import ConfigOpt, EnvFileOpt, JsonOpt, group
from safesnap.cli.run import DEFAULT_PLAN, resolve_plan
from safesnap.output import print_json, say
from safesnap.schedule.install import Outcome, install_cron, install_systemd, remove, show, spec_for
from safesnap.schedule.units import UnitSpec

schedule_app = group("Run a plan on a schedule: systemd timer (or cron).")

OnCalendarOpt: Any = typer.Option(
    "*-*-* 03:15:00",
    "--on-calendar",
    help='When to run (systemd.time(7)), e.g. "*-*-* 03:15:00" or "daily". With --cron: '
    '"HH:MM", "*-*-* HH:MM:SS" or a 5-field cron expression.',
)
DelayOpt: Any = typer.Option(
    "15m", "--randomized-delay", help="Random delay added to each start (systemd time span)."
)
UnitDirOpt: Any = typer.Option(
    None,
    "--unit-dir",
    help="Write the files here instead of /etc/systemd/system (/etc/cron.d with --cron); "
    "systemd is then left alone and the commands to run are printed.",
)
CronOpt: Any = typer.Option(False, "--cron", help="A cron.d line instead (hosts without systemd).")


def _spec(config: Path | None, env_file: Path | None, on_calendar: str, delay: str) -> UnitSpec:
    plan = resolve_plan(config, env_file)
    return spec_for(
        plan,
        config or DEFAULT_PLAN,
        env_file,
        on_calendar=on_calendar,
        randomized_delay=delay,
    )


def _print(outcome: Outcome, json_out: bool, *, content: bool = False) -> None:
    if json_out:
        print_json(outcome.to_dict())
        return
    for item in outcome.files:
        say(f"{item['path']}: {item['state']}")
        if content and item.get("content"):
            say(item["content"].rstrip("\n"))
    if outcome.verified is False:
        say("systemd-analyze is not installed here: the units were not verified")
    if outcome.enabled:
        say("timer enabled and started (systemctl list-timers shows the next run)")
    for key, value in outcome.state.items():
        say(f"  {key}: {value}")
    if outcome.commands:
        say("to finish, run as root:")
        for command in outcome.commands:
            say(f"  {command}")


@schedule_app.command("install")
def install(
    config: Path | None = ConfigOpt,
    on_calendar: str = OnCalendarOpt,
    randomized_delay: str = DelayOpt,
    unit_dir: Path | None = UnitDirOpt,
    no_enable: bool = typer.Option(
        False, "--no-enable", help="Write the units; do not enable or start the timer."
    ),
    cron: bool = CronOpt,
    env_file: Path | None = EnvFileOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Write safesnap-<plan>.service and .timer (verified with systemd-analyze), then enable
    and start the timer; with --cron, write /etc/cron.d/safesnap-<plan> instead."""
    spec = _spec(config, env_file, on_calendar, randomized_delay)
    if cron:
        outcome = install_cron(spec, unit_dir)
    else:
        outcome = install_systemd(spec, unit_dir, enable=not no_enable)
    _print(outcome, json_out)


@schedule_app.command("show")
def show_cmd(
    config: Path | None = ConfigOpt,
    on_calendar: str = OnCalendarOpt,
    randomized_delay: str = DelayOpt,
    unit_dir: Path | None = UnitDirOpt,
    cron: bool = CronOpt,
    env_file: Path | None = EnvFileOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Show the installed files (missing, current, or differs from what install would write
    with these options) and, from systemd, the timer's state and next run."""
    spec = _spec(config, env_file, on_calendar, randomized_delay)
    _print(show(spec, unit_dir, cron=cron), json_out, content=True)


@schedule_app.command("remove")
def remove_cmd(
    config: Path | None = ConfigOpt,
    unit_dir: Path | None = UnitDirOpt,
    no_enable: bool = typer.Option(
        False, "--no-enable", help="Only delete the files; leave systemd alone."
    ),
    cron: bool = CronOpt,
    env_file: Path | None = EnvFileOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Stop and disable the timer, and delete the units (or the cron line)."""
    spec = _spec(config, env_file, "*-*-* 03:15:00", "15m")
    _print(remove(spec, unit_dir, cron=cron, disable=not no_enable), json_out)
