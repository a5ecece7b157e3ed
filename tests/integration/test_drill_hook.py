"""The `[run] drill` hook on its own (in process, real SQLite artifacts): a drill that fails
puts a failed `drill` step on the run's target, so the run fails like a failed verify."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from tests.fixtures.artifacts import flip_byte

from safesnap.config.plan import load_plan
from safesnap.run.drill.hook import drill_if_due
from safesnap.run.drill.outputs import last_drill
from safesnap.run.pipeline import run_plan
from safesnap.run.report import RunReport, TargetResult
from safesnap.run.request import RunRequest


def plan_file(tmp_path: Path, cadence: str) -> Path:
    db = tmp_path / "tracker.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(50)])
    conn.commit()
    conn.close()
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n[run]\ndrill = "{cadence}"\n'
        f'[[targets]]\nname = "db"\npath = "{db}"\n'
    )
    return plan


def test_a_failed_drill_fails_the_runs_target(tmp_path: Path) -> None:
    plan = load_plan(plan_file(tmp_path, "off"))
    assert run_plan(plan, RunRequest()).ok
    (artifact,) = (tmp_path / "dest" / "db").glob("*.zst")
    flip_byte(artifact, artifact.stat().st_size // 2)
    plan = plan.model_copy(update={"run": plan.run.model_copy(update={"drill": "daily"})})
    report = RunReport(run_id="r1", plan=plan.plan, kind="nightly", dry_run=False)
    report.targets.append(TargetResult(name="db", engine="sqlite"))

    drill_if_due(plan, list(plan.targets), RunRequest(), report)

    (target,) = report.targets
    (step,) = target.steps
    assert step.name == "drill" and step.ok is False
    assert step.error is not None and step.error["code"] == "integrity_failed"
    assert step.details["failed_step"] == "checksum"
    assert report.ok is False
    assert report.extra["drill"]["ok"] is False
    assert last_drill(tmp_path / "dest") is not None  # a failed drill counts for the cadence


def test_off_or_not_due_does_nothing(tmp_path: Path) -> None:
    plan = load_plan(plan_file(tmp_path, "sun"))
    report = RunReport(run_id="r1", plan=plan.plan, kind="nightly", dry_run=False)
    monday = datetime(2026, 12, 7, 3, 0).astimezone()

    drill_if_due(plan, list(plan.targets), RunRequest(), report, now=monday)

    assert "drill" not in report.extra
    assert last_drill(tmp_path / "dest") is None
