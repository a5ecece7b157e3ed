"""Install, show and remove a plan's schedule: the units (or cron line) on disk, and systemd.

Files are written atomically (artifacts/atomic.py: temp file + rename) with mode 0644, after
`systemd-analyze verify` accepted them, so a failed install leaves the previous units (or
none) in place, never half of new ones.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safesnap.config.plan import Plan, SqliteTarget
from safesnap.errors import ConfigError, SafesnapError, ScheduleError
from safesnap.schedule import systemd
from safesnap.schedule.cron import cron_name, render_cron
from safesnap.schedule.units import UnitSpec, render_service, render_timer

UNIT_DIR = Path("/etc/systemd/system")
CRON_DIR = Path("/etc/cron.d")
UNIT_MODE = 0o644  # systemd and cron read them; they hold paths and names, never a secret


@dataclass
class Outcome:
    """What install/show/remove did: files and their state, systemd calls, commands to run."""

    files: list[dict[str, Any]] = field(default_factory=list)
    verified: bool | None = None  # None: not checked (cron), False: no systemd-analyze here
    enabled: bool = False
    commands: list[str] = field(default_factory=list)  # left for the operator to run
    state: dict[str, str] = field(default_factory=dict)  # systemctl show properties

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "files": self.files,
            "verified": self.verified,
            "enabled": self.enabled,
            "commands": self.commands,
            "state": self.state,
        }


def executable() -> Path:
    """The safesnap the timer should start: this one, by the path it was started with (a
    venv's bin/safesnap), else the one on PATH."""
    started = Path(sys.argv[0])
    if started.name == "safesnap" and started.is_file():
        return started.absolute()
    found = shutil.which("safesnap")
    if found is None:
        raise ConfigError("cannot tell where the safesnap command is installed (not on PATH)")
    return Path(found).absolute()


def _absolute(path: Path, base: Path) -> Path:
    # A run's relative paths are relative to its working directory: the plan's directory.
    return path if path.is_absolute() else base / path


def writable_paths(plan: Plan, base: Path) -> tuple[Path, ...]:
    """Where a run writes: destination, report/metrics directories, SQLite directories."""
    paths = [plan.destination.path]
    paths += [f.parent for f in (plan.run.report_file, plan.run.metrics_file) if f is not None]
    paths += [t.path.parent for t in plan.targets if isinstance(t, SqliteTarget)]
    unique = dict.fromkeys(_absolute(p, base) for p in paths)
    return tuple(unique)


def spec_for(
    plan: Plan,
    config: Path,
    env_file: Path | None,
    *,
    on_calendar: str,
    randomized_delay: str,
) -> UnitSpec:
    config = config.absolute()
    if env_file is None and (config.parent / ".env").is_file():
        env_file = config.parent / ".env"  # what `run` would read from the plan's directory
    return UnitSpec(
        plan=plan.plan,
        executable=executable(),
        config=config,
        env_file=env_file.absolute() if env_file is not None else None,
        on_calendar=on_calendar,
        randomized_delay=randomized_delay,
        writable=writable_paths(plan, config.parent),
    )


def unit_files(spec: UnitSpec) -> dict[str, str]:
    return {
        f"{spec.stem}.service": render_service(spec),
        f"{spec.stem}.timer": render_timer(spec),
    }


def _make_dir(directory: Path | None) -> None:
    """A --unit-dir that does not exist yet is made (the system directories are not)."""
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScheduleError(f"cannot create {directory}: {exc.strerror or exc}") from None


def _write(path: Path, text: str) -> str:
    """Write `text` to `path` atomically; its state: written, updated or unchanged."""
    from safesnap.artifacts.atomic import atomic_write

    try:
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old == text:
            return "unchanged"
        with atomic_write(path, overwrite=True) as out:
            out.write(text.encode())
        path.chmod(UNIT_MODE)
    except (OSError, SafesnapError) as exc:
        reason = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
        raise ScheduleError(
            f"cannot write {path}: {reason}",
            hint="run as root, or pass --unit-dir to write the files elsewhere",
        ) from None
    return "written" if old is None else "updated"


def install_systemd(spec: UnitSpec, unit_dir: Path | None, *, enable: bool) -> Outcome:
    units = unit_files(spec)
    outcome = Outcome(verified=systemd.verify(units))
    directory = unit_dir or UNIT_DIR
    _make_dir(unit_dir)
    for name, text in units.items():
        path = directory / name
        outcome.files.append({"path": str(path), "state": _write(path, text)})
    timer = f"{spec.stem}.timer"
    if unit_dir is not None:  # outside systemd's search path: `enable PATH` links it in
        outcome.commands = [
            f"systemctl link {directory / (spec.stem + '.service')}",
            f"systemctl enable --now {directory / timer}",
        ]
    elif not enable:
        outcome.commands = ["systemctl daemon-reload", f"systemctl enable --now {timer}"]
    else:
        done = f"the units are written to {directory} but the timer is not enabled"
        systemd.systemctl("daemon-reload", done=done, then=(f"systemctl enable --now {timer}",))
        systemd.systemctl("enable", "--now", timer, done=done)
        outcome.enabled = True
    return outcome


def install_cron(spec: UnitSpec, cron_dir: Path | None) -> Outcome:
    path = (cron_dir or CRON_DIR) / cron_name(spec)
    _make_dir(cron_dir)
    outcome = Outcome()
    outcome.files.append({"path": str(path), "state": _write(path, render_cron(spec))})
    return outcome


def show(spec: UnitSpec, unit_dir: Path | None, *, cron: bool) -> Outcome:
    """Each file: installed or not, and whether it matches what install would write now."""
    outcome = Outcome()
    if cron:
        expected = {cron_name(spec): render_cron(spec)}
        directory = unit_dir or CRON_DIR
    else:
        expected = unit_files(spec)
        directory = unit_dir or UNIT_DIR
    for name, text in expected.items():
        path = directory / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        state = "missing" if current is None else "current" if current == text else "differs"
        outcome.files.append({"path": str(path), "state": state, "content": current})
    if not cron and unit_dir is None and shutil.which("systemctl"):
        outcome.state = _timer_state(f"{spec.stem}.timer")
    return outcome


def _timer_state(timer: str) -> dict[str, str]:
    keys = "ActiveState,UnitFileState,NextElapseUSecRealtime,LastTriggerUSec"
    try:
        said = systemd.systemctl("show", timer, f"--property={keys}", done="cannot ask systemd")
    except ScheduleError as exc:
        return {"error": exc.message}
    return dict(line.split("=", 1) for line in said.splitlines() if "=" in line)


def remove(spec: UnitSpec, unit_dir: Path | None, *, cron: bool, disable: bool) -> Outcome:
    outcome = Outcome()
    if cron:
        paths = [(unit_dir or CRON_DIR) / cron_name(spec)]
    else:
        directory = unit_dir or UNIT_DIR
        paths = [directory / name for name in unit_files(spec)]
        timer = f"{spec.stem}.timer"
        if unit_dir is not None or not disable:
            outcome.commands = [f"systemctl disable --now {timer}", "systemctl daemon-reload"]
        elif any(p.exists() for p in paths):
            systemd.systemctl("disable", "--now", timer, done="nothing was removed")
    for path in paths:
        outcome.files.append({"path": str(path), "state": _unlink(path)})
    if not cron and unit_dir is None and disable and outcome.files[0]["state"] == "removed":
        systemd.systemctl("daemon-reload", done="the units are removed")
    return outcome


def _unlink(path: Path) -> str:
    try:
        path.unlink()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise ScheduleError(
            f"cannot remove {path}: {exc.strerror or exc}", hint="run as root"
        ) from None
    return "removed"
