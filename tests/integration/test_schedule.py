"""`safesnap schedule` through the real entry point: the units it writes pass
`systemd-analyze verify` (run here on the written files), carry the plan's paths and the
hardening, survive awkward paths, and are shown and removed again; the cron.d variant."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


def safesnap(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def write_plan(folder: Path, name: str = "torrust") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / "tracker.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    (folder / ".env").write_text("SAFESNAP_MYSQL_PASSWORD=x\n")
    plan = folder / "plan.toml"
    plan.write_text(
        f'plan = "{name}"\n[destination]\npath = "{folder / "dest"}"\n'
        f'[run]\nreport_file = "{folder / "reports" / "last.json"}"\n'
        f'metrics_file = "{folder / "prom" / "safesnap.prom"}"\n'
        '[[targets]]\nname = "tracker"\nengine = "sqlite"\npath = "tracker.db"\n'
    )
    return plan


def verify(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@needs_analyze
def test_install_writes_units_that_systemd_analyze_verifies(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "etc")
    units = tmp_path / "units"
    proc = safesnap(
        "schedule", "install", "--config", str(plan), "--unit-dir", str(units),
        "--on-calendar", "*-*-* 02:30:00", "--randomized-delay", "20m", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verified"] is True
    assert out["enabled"] is False  # --unit-dir: systemd is left alone, commands printed
    service, timer = units / "safesnap-torrust.service", units / "safesnap-torrust.timer"
    assert out["commands"] == [f"systemctl link {service}", f"systemctl enable --now {timer}"]
    checked = verify(service, timer)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""
    text = service.read_text()
    etc = tmp_path / "etc"
    for line in (
        "Type=oneshot",
        "IOSchedulingClass=idle",
        "ProtectSystem=strict",
        "PrivateTmp=true",
        f"WorkingDirectory={etc}",
        f"ExecStart={SAFESNAP} run --config {plan} --env-file {etc / '.env'} --kind nightly",
        f"ReadWritePaths=-{etc / 'dest'} -{etc / 'reports'} -{etc / 'prom'} -{etc}",
    ):
        assert line in text.splitlines(), line
    timer_lines = timer.read_text().splitlines()
    # The env file is read by safesnap (--env-file), never exported to the programs it starts.
    assert not any(line.startswith("EnvironmentFile=") for line in text.splitlines())
    assert "OnCalendar=*-*-* 02:30:00" in timer_lines
    assert "RandomizedDelaySec=20m" in timer_lines
    assert "Persistent=true" in timer_lines
    assert oct(service.stat().st_mode & 0o777) == "0o644"


@needs_analyze
def test_awkward_paths_and_plan_names_still_verify(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "my plans 100% $HOME", name="tracker/prod 1")
    units = tmp_path / "units"
    proc = safesnap(
        "schedule", "install", "--config", str(plan), "--unit-dir", str(units), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    service = units / "safesnap-tracker_prod_1.service"
    checked = verify(service, units / "safesnap-tracker_prod_1.timer")
    assert checked.returncode == 0, checked.stderr
    assert '"--config" ' not in service.read_text()
    assert f'"{tmp_path}/my plans 100%% $$HOME/plan.toml"' in service.read_text()


@needs_analyze
@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--on-calendar", "every night", "Failed to parse calendar specification"),
        ("--randomized-delay", "soon", "not a systemd time span"),
        ("--on-calendar", "daily\nExecStartPre=/bin/rm", "control character"),
    ],
)
def test_a_bad_schedule_is_refused_and_nothing_is_written(
    tmp_path: Path, option: str, value: str, said: str
) -> None:
    plan = write_plan(tmp_path / "etc")
    units = tmp_path / "units"
    proc = safesnap(
        "schedule", "install", "--config", str(plan), "--unit-dir", str(units), option, value,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (2, 14), proc.stderr
    assert said in proc.stderr
    assert not units.exists() or list(units.iterdir()) == []


def test_show_and_remove_find_the_installed_units(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "etc")
    units = tmp_path / "units"
    args = ("--config", str(plan), "--unit-dir", str(units), "--json")
    assert safesnap("schedule", "install", *args, cwd=tmp_path).returncode == 0
    again = json.loads(safesnap("schedule", "install", *args, cwd=tmp_path).stdout)
    assert [f["state"] for f in again["files"]] == ["unchanged", "unchanged"]
    shown = json.loads(safesnap("schedule", "show", *args, cwd=tmp_path).stdout)
    assert [f["state"] for f in shown["files"]] == ["current", "current"]
    other = safesnap("schedule", "show", *args, "--on-calendar", "daily", cwd=tmp_path)
    assert [f["state"] for f in json.loads(other.stdout)["files"]] == ["current", "differs"]
    removed = json.loads(safesnap("schedule", "remove", *args, cwd=tmp_path).stdout)
    assert [f["state"] for f in removed["files"]] == ["removed", "removed"]
    assert removed["commands"][0] == "systemctl disable --now safesnap-torrust.timer"
    assert list(units.iterdir()) == []
    gone = json.loads(safesnap("schedule", "show", *args, cwd=tmp_path).stdout)
    assert [f["state"] for f in gone["files"]] == ["missing", "missing"]


def test_cron_writes_one_cron_d_line(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "etc")
    cron_d = str(tmp_path / "cron.d")
    args = ("--config", str(plan), "--cron", "--unit-dir", cron_d, "--on-calendar", "03:15")
    proc = safesnap("schedule", "install", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = (tmp_path / "cron.d" / "safesnap-torrust").read_text().splitlines()[-1]
    assert line.startswith(f"15 3 * * * root cd {tmp_path / 'etc'} && {SAFESNAP} run --config ")
    assert line.endswith("--kind nightly")


@pytest.mark.parametrize(
    ("calendar", "schedule"),
    [("*-*-* 03:15:00", "15 3 * * *"), ("4:05", "5 4 * * *"), ("daily", "0 0 * * *"),
     ("*/30 * * * 1-5", "*/30 * * * 1-5")],
)  # fmt: skip
def test_cron_schedules(calendar: str, schedule: str) -> None:
    from safesnap.schedule.cron import cron_schedule

    assert cron_schedule(calendar) == schedule


def test_a_calendar_cron_cannot_express_is_refused(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "etc")
    cron_d = str(tmp_path / "cron.d")
    args = ("--config", str(plan), "--cron", "--unit-dir", cron_d, "--on-calendar", "Mon 03:00")
    proc = safesnap("schedule", "install", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "--cron cannot turn --on-calendar" in proc.stderr
    assert list((tmp_path / "cron.d").iterdir()) == []
