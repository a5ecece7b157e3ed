"""`safesnap drill` on a MySQL dump target against the real MariaDB: the dump is reloaded into a
scratch database, row counts compared with the manifest, the scratch database dropped, also
when the counts differ and when SIGTERM arrives in the middle of the reload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mariadb import run_sql

pytestmark = pytest.mark.mariadb
SCRATCH = "safesnap\\_verify\\_%"


def scratch_databases() -> set[str]:
    return {str(r[0]) for r in run_sql(None, f"SHOW DATABASES LIKE '{SCRATCH}'")}


def safesnap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safesnap", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def backed_up(db: str, tmp_path: Path, rows: int) -> Path:
    run_sql(db, "CREATE TABLE peers (id INT PRIMARY KEY, pad CHAR(80)) ENGINE=InnoDB",
            f"INSERT INTO peers SELECT seq, REPEAT(SHA1(seq), 2) FROM seq_1_to_{rows}")  # fmt: skip
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n[run]\nverify = false\n'
        f'[[targets]]\nname = "tracker"\nengine = "mysql"\ndatabases = ["{db}"]\n'
    )
    proc = safesnap("run", "--config", str(plan))
    assert proc.returncode == 0, proc.stderr
    return plan


def restore_step(report: dict[str, Any]) -> dict[str, Any]:
    (target,) = report["targets"]
    step: dict[str, Any] = {s["name"]: s for s in target["steps"]}["restore"]
    return step


def test_drill_reloads_the_dump_and_drops_its_scratch(scratch_db: str, tmp_path: Path) -> None:
    plan = backed_up(scratch_db, tmp_path, 500)
    before = scratch_databases()

    proc = safesnap("drill", "--config", str(plan), "--json")

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (target,) = report["targets"]
    assert target["row_counts"] == {scratch_db: {"peers": 500}}
    assert restore_step(report)["rows"] == 500
    assert target["restored_bytes"] > 500 * 80
    assert scratch_databases() == before


def test_counts_that_differ_fail_the_drill_and_the_scratch_is_dropped(
    scratch_db: str, tmp_path: Path
) -> None:
    plan = backed_up(scratch_db, tmp_path, 100)
    (manifest,) = (tmp_path / "dest" / "tracker").glob("*.manifest.json")
    data = json.loads(manifest.read_text())
    data["mysql"]["row_counts"][scratch_db]["peers"] = 101
    manifest.write_text(json.dumps(data))
    before = scratch_databases()

    proc = safesnap("drill", "--config", str(plan), "--json")

    assert proc.returncode == 15, proc.stderr
    assert restore_step(json.loads(proc.stdout))["error"]["code"] == "integrity_failed"
    assert scratch_databases() == before


def test_sigterm_during_the_reload_drops_the_scratch_database(
    scratch_db: str, tmp_path: Path
) -> None:
    plan = backed_up(scratch_db, tmp_path, 200_000)
    before = scratch_databases()
    proc = subprocess.Popen(
        [sys.executable, "-m", "safesnap", "drill", "--config", str(plan), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not run_sql(None, "SELECT id FROM information_schema.processlist WHERE db LIKE "
                          f"'{SCRATCH}' AND info LIKE 'INSERT INTO `peers`%'"):  # fmt: skip
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the reload never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    assert proc.returncode == 143, out + err
    assert json.loads(out)["error"]["code"] == "interrupted"
    assert scratch_databases() == before
    assert not list((tmp_path / "dest").glob(".safesnap-drill.*"))
