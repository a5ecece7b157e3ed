"""`verify` run by a MariaDB user with only the documented dump privileges (docs/how-to/mysql.md):
the dump succeeds, verify fails with privilege_missing, the artifact stays (unverified, listed)
and no scratch database is left behind. The GRANT the error's hint gives makes verify pass."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mariadb import admin

from safesnap.engines.mysql.scratch import VERIFY_GRANT

pytestmark = pytest.mark.mariadb

DUMP_PRIVILEGES = "SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES"  # docs/how-to/mysql.md
SCRATCH = re.compile(r"safesnap_verify_[0-9a-f]{12}")


@pytest.fixture
def dump_user(scratch_db: str) -> Iterator[tuple[str, str]]:
    """A user with exactly the documented dump privileges on `scratch_db`; dropped afterwards."""
    user, password = f"sst_d_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    conn = admin(scratch_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE announces (id INT PRIMARY KEY, peer VARCHAR(40)) ENGINE=InnoDB")
        cur.executemany("INSERT INTO announces VALUES (%s, %s)", [(i, f"p{i}") for i in range(30)])
        cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT {DUMP_PRIVILEGES} ON `{scratch_db}`.* TO '{user}'@'127.0.0.1'")
    try:
        yield user, password
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        conn.close()


def grant(sql: str) -> None:
    conn = admin()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def run(tmp_path: Path, db: str, user: str, password: str, *args: str) -> Any:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[[targets]]\nname = "tracker-db"\nengine = "mysql"\nuser = "{user}"\n'
        f'password_env = "SST_VERIFY_PW"\ndatabases = ["{db}"]\nquiesce = "dump"\n'
    )
    env = {**os.environ, "SST_VERIFY_PW": password}
    return subprocess.run(
        [sys.executable, "-m", "safesnap", *args, "--config", str(plan), "--json"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=False,
    )  # fmt: skip


def listed(tmp_path: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "safesnap", "list", "--dest", str(tmp_path / "dest"), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)["artifacts"]
    return rows


def scratch_exists(name: str) -> bool:
    conn = admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (name.replace("_", "\\_"),))
            return cur.fetchone() is not None
    finally:
        conn.close()


def test_verify_without_create_privilege_fails_clearly_and_keeps_the_artifact(
    scratch_db: str, dump_user: tuple[str, str], tmp_path: Path
) -> None:
    proc = run(tmp_path, scratch_db, *dump_user, "run")

    assert proc.returncode == 11, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    backup, verify = target["steps"]  # no prune after an unverified backup
    assert backup["name"] == "backup" and backup["ok"] is True
    assert verify["name"] == "verify" and verify["ok"] is False
    error = verify["error"]
    assert error["code"] == "privilege_missing"
    assert "cannot create its scratch database" in error["message"]
    assert "a privilege is missing" in error["message"]
    assert f"Access denied for user '{dump_user[0]}'" in error["message"]
    assert "GRANT" in error["hint"] and "safesnap\\_verify\\_%" in error["hint"]
    assert dump_user[1] not in proc.stdout + proc.stderr  # the password never shows
    artifact = Path(target["artifact"])
    manifest = json.loads(Path(f"{artifact}.manifest.json").read_text())
    assert artifact.is_file() and manifest["verified"] is False
    assert "verify_error" not in manifest  # unchecked is not "damaged"
    (row,) = listed(tmp_path)
    assert row["artifact"] == str(artifact) and row["verified"] is False
    (name,) = set(SCRATCH.findall(error["message"]))
    assert not scratch_exists(name)


def test_load_refused_midway_is_a_privilege_error_and_the_scratch_db_is_dropped(
    scratch_db: str, dump_user: tuple[str, str], tmp_path: Path
) -> None:
    # CREATE and DROP but not LOCK TABLES / SELECT: the client's load is what is refused.
    grant(
        f"GRANT CREATE, DROP, INSERT ON `safesnap\\_verify\\_%`.* TO '{dump_user[0]}'@'127.0.0.1'"
    )

    proc = run(tmp_path, scratch_db, *dump_user, "run")

    assert proc.returncode == 11, proc.stdout + proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    error = target["steps"][1]["error"]
    assert error["code"] == "privilege_missing"
    assert "cannot load the dump into its scratch database" in error["message"]
    (name,) = set(SCRATCH.findall(error["message"]))
    assert not scratch_exists(name)  # dropped on the failure path
    assert Path(target["artifact"]).is_file()


def test_the_grant_in_the_hint_makes_verify_pass(
    scratch_db: str, dump_user: tuple[str, str], tmp_path: Path
) -> None:
    grant(VERIFY_GRANT.replace("<the user above>", f"'{dump_user[0]}'@'127.0.0.1'"))

    proc = run(tmp_path, scratch_db, *dump_user, "run")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    verify = target["steps"][1]
    assert verify["name"] == "verify" and verify["ok"] is True
    (row,) = listed(tmp_path)
    assert row["verified"] is True
