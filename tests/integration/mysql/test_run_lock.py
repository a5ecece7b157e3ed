"""`safesnap run` with a MySQL `lock` target and a command snapshot: the report carries the lock
facts, and writers were blocked only while the snapshot command ran."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.fixtures.mariadb import UNBLOCKED, MysqlWriter, timed_insert

pytestmark = pytest.mark.mariadb


def test_run_reports_lock_facts(
    scratch_db: str, tmp_path: Path, mysql_writer: Callable[..., MysqlWriter]
) -> None:
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""
plan = "locktest"
[destination]
path = "{tmp_path / "dest"}"
[[targets]]
name = "tracker-db"
engine = "mysql"
databases = ["{scratch_db}"]
quiesce = "lock"
[targets.snapshot]
provider = "command"
create = "sh -c 'sleep 1 && touch {snaps}/{{name}}'"
list = "ls -1 {snaps}"
delete = "rm -f {snaps}/{{name}}"
"""
    )
    writer = mysql_writer(scratch_db)
    time.sleep(0.2)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "safesnap", "run", "--config", str(plan), "--json"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    ended = time.monotonic()
    stats = writer.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    text = json.dumps(report)
    for key in ("lock_wait_seconds", "lock_held_seconds", "binlog"):
        assert f'"{key}"' in text, key
    (target,) = report["targets"]
    held = target["lock_held_seconds"]
    assert target["lock_mode"] == "ftwrl" and target["binlog"] is None  # binlog off here
    assert 1.0 <= held < 1.5
    assert len(list(snaps.iterdir())) == 1
    stall = stats.max_latency_during(started, ended)
    assert 0.8 < stall < held + 0.1, (stall, held)
    assert timed_insert(scratch_db) < UNBLOCKED
