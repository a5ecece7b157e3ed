"""SIGTERM while `safesnap snapshot` holds the MySQL global lock: the lock is released, the
snapshot command's child process is stopped (not orphaned), exit 143 with one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
from tests.fixtures.faults import alive
from tests.fixtures.mariadb import UNBLOCKED, admin, timed_insert

pytestmark = pytest.mark.mariadb


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(c) for c in text.split()]


def writes_blocked(db: str) -> bool:
    conn = admin(db)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS probe (id INT AUTO_INCREMENT PRIMARY KEY)")
            cur.execute("SET SESSION lock_wait_timeout = 1")
            try:
                cur.execute("INSERT INTO probe VALUES (NULL)")
            except pymysql.err.OperationalError as exc:
                return int(exc.args[0]) == 1205  # lock wait timeout: FTWRL is held
            return False
    finally:
        conn.close()


def test_sigterm_during_the_snapshot_request_releases_the_lock(
    scratch_db: str, tmp_path: Path
) -> None:
    timed_insert(scratch_db)  # creates the probe table before anything is locked
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""
plan = "sigterm"
[destination]
path = "{tmp_path / "dest"}"
[[targets]]
name = "tracker-db"
engine = "mysql"
databases = ["{scratch_db}"]
quiesce = "lock"
max_lock_hold_seconds = 60
[targets.snapshot]
provider = "command"
create = "sleep 30"
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "safesnap", "snapshot", "--config", str(plan)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not children(proc.pid):  # bounded: the create command runs under the lock
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the snapshot command never started"
            time.sleep(0.02)
        (sleeper,) = children(proc.pid)
        assert writes_blocked(scratch_db)  # the lock is really held at this point
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 143, (out, err)
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == (
        "error: interrupted by SIGTERM; temporary files removed"
    )
    assert not alive(sleeper)  # stopped with its parent, not left running for 30 s
    assert timed_insert(scratch_db) < UNBLOCKED  # writers are not blocked
