"""The MySQL password from `--env-file`, the way cron runs safesnap: working directory elsewhere,
no ./.env, the password only in an env file in another directory. A real MariaDB user with a
password made here; the real clients run through PATH wrappers that record the argv and
environment each client process starts with (what /proc/<pid>/environ shows)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mariadb import admin

pytestmark = pytest.mark.mariadb
SAFESNAP = str(Path(sys.executable).parent / "safesnap")
PW_VAR = "SSTEST_TRACKER_DB_PW"

WRAPPER = """#!{python}
import json, os, stat, sys
opt = None
if len(sys.argv) > 1 and sys.argv[1].startswith("--defaults-extra-file="):
    path = sys.argv[1].split("=", 1)[1]
    with open(path) as fh:
        text = fh.read()
    opt = {{"mode": stat.S_IMODE(os.stat(path).st_mode), "password_line": "password=" in text}}
with open({record!r}, "a") as fh:
    fh.write(json.dumps({{"prog": {name!r}, "argv": sys.argv, "env": dict(os.environ),
                         "option_file": opt}}) + "\\n")
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


@pytest.fixture
def db_user(scratch_db: str) -> Iterator[tuple[str, str]]:
    """A user that can dump `scratch_db` and load safesnap's verify scratch databases."""
    user = f"sst_{uuid.uuid4().hex[:8]}"
    password = 'p#ss w"rd\\x-' + uuid.uuid4().hex[:8]  # option-file quoting and a comment sign
    hosts = ("127.0.0.1", "localhost")
    conn = admin()
    with conn.cursor() as cur:
        for host in hosts:
            cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON `{scratch_db}`.* TO '{user}'@'{host}'")
            cur.execute(f"GRANT ALL ON `safesnap\\_verify\\_%`.* TO '{user}'@'{host}'")
            # Dumping routines needs this on MariaDB < 11.3 (see tests/integration/mysql).
            cur.execute(f"GRANT SELECT ON mysql.proc TO '{user}'@'{host}'")
        cur.execute(f"CREATE TABLE `{scratch_db}`.peers (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO `{scratch_db}`.peers SELECT seq FROM test.seq_1_to_300")
    try:
        yield user, password
    finally:
        with conn.cursor() as cur:
            for host in hosts:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        conn.close()


@pytest.fixture
def cron(tmp_path: Path, db_user: tuple[str, str]) -> dict[str, Any]:
    """An empty working directory, the env file elsewhere (0600), wrappers first on PATH."""
    _, password = db_user
    cwd, etc, bin_dir = tmp_path / "cwd", tmp_path / "etc", tmp_path / "bin"
    for d in (cwd, etc, bin_dir):
        d.mkdir()
    env_file = etc / "safesnap.env"
    env_file.write_text(f"{PW_VAR}='{password}'\n")
    env_file.chmod(0o600)
    record = tmp_path / "clients.jsonl"
    for name in ("mariadb-dump", "mariadb"):
        real = shutil.which(name)
        assert real is not None, f"{name} is needed for this test"
        wrapper = bin_dir / name
        wrapper.write_text(WRAPPER.format(python=sys.executable, record=str(record),
                                          name=name, real=real))  # fmt: skip
        wrapper.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFESNAP_", "SSTEST_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return {"cwd": cwd, "env_file": env_file, "record": record, "env": env}


def safesnap(cron: dict[str, Any], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, *args], cwd=cron["cwd"], env={**cron["env"], **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def client_calls(cron: dict[str, Any]) -> list[dict[str, Any]]:
    lines = cron["record"].read_text().splitlines()
    return [json.loads(line) for line in lines]


def assert_password_only_in_option_file(calls: list[dict[str, Any]], password: str) -> None:
    for call in calls:
        assert PW_VAR not in call["env"] and "MYSQL_PWD" not in call["env"], call["prog"]
        assert password not in json.dumps(call["env"]), call["prog"]
        assert password not in " ".join(call["argv"]), call["prog"]
        if "--version" not in call["argv"]:
            assert call["option_file"] == {"mode": 0o600, "password_line": True}, call


def test_backup_mysql_reads_the_password_from_env_file_elsewhere(
    cron: dict[str, Any], db_user: tuple[str, str], scratch_db: str, tmp_path: Path
) -> None:
    user, password = db_user
    args = ("backup", "mysql", "-d", scratch_db, "--user", user, "--password-env", PW_VAR,
            "--dest", str(tmp_path / "dest"), "--json")  # fmt: skip
    without = safesnap(cron, *args)  # what cron did before: only ./.env was read
    assert without.returncode == 2, without.stderr
    error = json.loads(without.stdout)["error"]
    assert error["code"] == "config_invalid" and PW_VAR in error["message"]
    assert not (tmp_path / "dest").exists()

    proc = safesnap(cron, *args, "--env-file", str(cron["env_file"]))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["row_counts"] == {scratch_db: {"peers": 300}}
    assert password not in proc.stdout + proc.stderr
    calls = client_calls(cron)
    assert [c["prog"] for c in calls if "--single-transaction" in c["argv"]] == ["mariadb-dump"]
    assert_password_only_in_option_file(calls, password)


def test_exported_password_does_not_reach_the_client_environment(
    cron: dict[str, Any], db_user: tuple[str, str], scratch_db: str, tmp_path: Path
) -> None:
    # systemd EnvironmentFile= exports the variable: the client must still not inherit it.
    user, password = db_user
    proc = safesnap(cron, "backup", "mysql", "-d", scratch_db, "--user", user, "--password-env",
                    PW_VAR, "--dest", str(tmp_path / "dest"), "--json",
                    **{PW_VAR: password, "MYSQL_PWD": password})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert_password_only_in_option_file(client_calls(cron), password)


def test_run_with_env_file_dumps_and_verifies_from_cron(
    cron: dict[str, Any], db_user: tuple[str, str], scratch_db: str, tmp_path: Path
) -> None:
    user, password = db_user
    plan = tmp_path / "etc" / "safesnap.toml"
    plan.write_text(
        f'plan = "cron"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[[targets]]\nname = "tracker"\nengine = "mysql"\nuser = "{user}"\n'
        f'password_env = "{PW_VAR}"\ndatabases = ["{scratch_db}"]\n'
    )
    proc = safesnap(cron, "run", "--config", str(plan), "--env-file", str(cron["env_file"]),
                    "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    [target] = report["targets"]
    assert [(s["name"], s["ok"]) for s in target["steps"]] == [
        ("backup", True), ("verify", True), ("prune", True)
    ]  # fmt: skip
    assert Path(target["artifact"]).is_file()
    assert password not in proc.stdout + proc.stderr
    calls = client_calls(cron)
    assert {c["prog"] for c in calls} == {"mariadb-dump", "mariadb"}  # dump, then verify's load
    assert_password_only_in_option_file(calls, password)
