"""The systemd service and timer for a plan, rendered as text: pure functions, no I/O.

What the units say and why:
- Type=oneshot: a run is a job that ends; the timer starts it again tomorrow.
- Persistent=true: a night missed while the host was off runs at the next boot.
- RandomizedDelaySec: many hosts with the same plan do not hit one provider API at once.
- IOSchedulingClass=idle: the database being backed up keeps its disk bandwidth.
- ProtectSystem=strict + ReadWritePaths: the run may write only where the plan writes (the
  destination, report and metrics files, and the directories of its SQLite databases, where
  SQLite itself needs its -wal/-shm files even for a read transaction); PrivateTmp: scratch
  copies stay private and vanish with the run. Paths get a "-" prefix so a missing one (a
  metrics directory not made yet) does not stop the unit from starting; safesnap then reports
  the write it cannot do.
- No EnvironmentFile: it would export every secret in the env file to every program safesnap
  starts (dump client, command providers), which docs/reference/plan.md promises never happens.
  `--env-file` gives safesnap the same values without exporting them.
- TimeoutStopSec=120: room for the cleanup after SIGTERM (docs/how-to/nightly.md).

Unit files expand `%` specifiers everywhere and `$` in ExecStart, and split ExecStart and
ReadWritePaths on spaces: every path is escaped for that here, and a path with a newline or
another control character is refused (it could add a line of its own to the unit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from safesnap.errors import ConfigError

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# systemd.time(7) time spans: "15m", "1h 30min", "90s", "0"; a number and unit, repeated.
_TIMESPAN = re.compile(
    r"^\s*(\d+(\.\d+)?\s*(us|usec|ms|msec|s|sec|seconds?|m|min|minutes?|h|hr|hours?|d|days?|"
    r"w|weeks?|M|months?|y|years?)?\s*)+$"
)


@dataclass(frozen=True)
class UnitSpec:
    plan: str
    executable: Path
    config: Path
    env_file: Path | None
    on_calendar: str = "*-*-* 03:15:00"
    randomized_delay: str = "15m"
    writable: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def stem(self) -> str:
        return unit_stem(self.plan)

    def run_args(self) -> list[str]:
        args = [str(self.executable), "run", "--config", str(self.config)]
        if self.env_file is not None:
            args += ["--env-file", str(self.env_file)]
        return [*args, "--kind", "nightly"]


def unit_stem(plan: str) -> str:
    """`safesnap-<plan>`, with anything a unit or cron.d file name cannot hold made `_`."""
    return "safesnap-" + (_NAME_UNSAFE.sub("_", plan) or "default")


def check_value(what: str, value: str) -> str:
    """Refuse control characters: a newline would start a new line in the unit file."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{what} contains a control character (newline, tab...): {value!r}")
    return value


def check_timespan(value: str) -> str:
    if not _TIMESPAN.match(check_value("--randomized-delay", value)):
        raise ConfigError(
            f"--randomized-delay {value!r} is not a systemd time span",
            hint='use a number and a unit, e.g. "15m", "1h", "90s", or "0" for none',
        )
    return value


def _specifiers(text: str) -> str:
    return text.replace("%", "%%")


def quote_word(text: str, *, dollar: bool) -> str:
    """One word of a space-separated unit setting: % and (in ExecStart) $ escaped, quoted
    when it holds a space, a quote or a backslash."""
    check_value("a path in the unit", text)
    out = _specifiers(text)
    if dollar:
        out = out.replace("$", "$$")
    if re.search(r"[\s\"'\\;]", out):
        out = '"' + out.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return out


def render_service(spec: UnitSpec) -> str:
    exec_start = " ".join(quote_word(arg, dollar=True) for arg in spec.run_args())
    lines = [
        _header(spec),
        "[Unit]",
        f"Description=safesnap backup of plan {_specifiers(spec.plan)}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={_specifiers(check_value('plan path', str(spec.config.parent)))}",
    ]
    lines += [
        f"ExecStart={exec_start}",
        "TimeoutStopSec=120",
        "IOSchedulingClass=idle",
        "UMask=0077",
        "PrivateTmp=true",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
    ]
    if spec.writable:
        paths = " ".join(quote_word(f"-{p}", dollar=False) for p in spec.writable)
        lines.append(f"ReadWritePaths={paths}")
    lines += [
        "NoNewPrivileges=true",
        "ProtectKernelTunables=true",
        "ProtectKernelModules=true",
        "ProtectControlGroups=true",
        "RestrictSUIDSGID=true",
        "LockPersonality=true",
    ]
    return "\n".join(lines) + "\n"


def render_timer(spec: UnitSpec) -> str:
    lines = [
        _header(spec),
        "[Unit]",
        f"Description=Run safesnap plan {_specifiers(spec.plan)} on schedule",
        "",
        "[Timer]",
        f"OnCalendar={_specifiers(check_value('--on-calendar', spec.on_calendar))}",
        f"RandomizedDelaySec={check_timespan(spec.randomized_delay)}",
        "Persistent=true",
        f"Unit={spec.stem}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return "\n".join(lines) + "\n"


def _header(spec: UnitSpec) -> str:
    config = check_value("plan path", str(spec.config))
    return (
        f"# Written by `safesnap schedule install` for {config}.\n"
        "# Run it again after changing the plan's paths; put local changes in a drop-in\n"
        "# (`systemctl edit`), which a new install leaves alone.\n"
    )
