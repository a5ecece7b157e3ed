"""Talking to systemd: `systemd-analyze verify` before anything is installed, `systemctl` to
enable, disable and inspect. Each call is bounded and its failure is a ScheduleError that
says what was already done and which command to run by hand."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from safesnap.errors import ScheduleError

TIMEOUT = 60  # seconds; systemctl talks to PID 1 over D-Bus, which can hang on a sick host


def analyzer() -> str | None:
    return shutil.which("systemd-analyze")


def verify(units: dict[str, str]) -> bool:
    """`systemd-analyze verify` on the units (name -> text) in a scratch directory; False when
    systemd-analyze is not installed. A unit it rejects is a ScheduleError with its words."""
    tool = analyzer()
    if tool is None:
        return False
    with tempfile.TemporaryDirectory(prefix="safesnap-units.") as scratch:
        paths = []
        for name, text in units.items():
            path = Path(scratch) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        proc = subprocess.run(
            [tool, "verify", *paths], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    if proc.returncode != 0:
        said = " ".join(proc.stderr.replace(scratch + "/", "").split())
        raise ScheduleError(
            f"systemd-analyze verify rejected the units: {said}",
            hint="fix the option it names (--on-calendar, --randomized-delay, a path); "
            "nothing was installed",
        )
    return True


def systemctl(*args: str, done: str, then: tuple[str, ...] = ()) -> str:
    """Run `systemctl ARGS`; its stdout. `done` says what is in place already if it fails,
    `then` the commands that were to follow (the hint lists them too)."""
    command = ["systemctl", *args]
    todo = [" ".join(command), *then]
    tool = shutil.which("systemctl")
    if tool is None:
        raise ScheduleError(f"{done}; systemctl is not installed", hint=_by_hand(todo))
    try:
        proc = subprocess.run(
            [tool, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise ScheduleError(
            f"{done}; `{' '.join(command)}` did not answer in {TIMEOUT} s", hint=_by_hand(todo)
        ) from None
    if proc.returncode != 0:
        said = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
        raise ScheduleError(f"{done}; `{' '.join(command)}` failed: {said}", hint=_by_hand(todo))
    return proc.stdout


def _by_hand(commands: list[str]) -> str:
    return f"on a host running systemd, as root: {' && '.join(commands)} (or use --cron)"
