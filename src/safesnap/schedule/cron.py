"""The cron.d line for hosts without systemd (`schedule install --cron`): pure functions.

cron has no randomized delay, no catch-up after downtime and no sandbox; the systemd timer
is the better choice where there is systemd. cron.d file names may hold only letters,
digits, `_` and `-` (Debian's run-parts rule: a name with a dot is silently ignored).
"""

from __future__ import annotations

import re
import shlex

from safesnap.errors import ConfigError
from safesnap.schedule.units import UnitSpec, check_value

_DAILY = re.compile(r"^(?:\*-\*-\*\s+)?(\d{1,2}):(\d{2})(?::00)?$")
_CRON_FIELD = re.compile(r"^[0-9*,/-]+$")


def cron_name(spec: UnitSpec) -> str:
    return spec.stem.replace(".", "_")


def cron_schedule(on_calendar: str) -> str:
    """`*-*-* 03:15:00`, `03:15` or `daily` -> `15 3 * * *`; a 5-field cron expression as is."""
    value = check_value("--on-calendar", on_calendar).strip()
    if value == "daily":
        return "0 0 * * *"
    daily = _DAILY.match(value)
    if daily and int(daily[1]) < 24 and int(daily[2]) < 60:
        return f"{int(daily[2])} {int(daily[1])} * * *"
    fields = value.split()
    if len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields):
        return " ".join(fields)
    raise ConfigError(
        f"--cron cannot turn --on-calendar {on_calendar!r} into a cron schedule",
        hint='use "HH:MM", "*-*-* HH:MM:SS", "daily" or a 5-field cron expression',
    )


def render_cron(spec: UnitSpec) -> str:
    # `%` ends the command in crontab syntax (the rest becomes stdin): escape it.
    command = " ".join(shlex.quote(arg) for arg in spec.run_args()).replace("%", "\\%")
    workdir = shlex.quote(str(spec.config.parent)).replace("%", "\\%")
    return (
        f"# Written by `safesnap schedule install --cron` for {spec.config}.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"{cron_schedule(spec.on_calendar)} root cd {workdir} && {command}\n"
    )
