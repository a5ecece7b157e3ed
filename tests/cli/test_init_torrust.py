"""`safesnap init` on Torrust-like trees (the deployer's layout), SQLite and MySQL variants:
init, `config check` as written, a `run`, and a restore of every artifact. The storage
artifact must not hold the live database. The MySQL variant uses the real MariaDB and runs
the dump client through a `docker` stand-in on PATH that does what `docker compose exec -T
SERVICE cmd` does on a host (runs cmd) and records its argv."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mariadb import admin, run_sql

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
DB_IN_CONTAINER = "/var/lib/torrust/tracker/database/sqlite3.db"
DRIVER_VAR = "TORRUST_TRACKER_CONFIG_OVERRIDE_CORE__DATABASE__DRIVER"

COMPOSE = """\
services:
  tracker:
    image: torrust/tracker:develop
    environment:
      - USER_ID=1000
      - {driver}=${{{driver}}}
      - TORRUST_TRACKER_CONFIG_TOML_PATH=${{TORRUST_TRACKER_CONFIG_TOML_PATH}}
    volumes:
      - ./storage/tracker/lib:/var/lib/torrust/tracker:Z
      - ./storage/tracker/log:/var/log/torrust/tracker:Z
      - ./storage/tracker/etc:/etc/torrust/tracker:Z
  prometheus:
    image: prom/prometheus:v3.5.0
    volumes:
      - ./storage/prometheus/etc:/etc/prometheus:Z
  grafana:
    image: grafana/grafana:12.3.1
    volumes:
      - ./storage/grafana/provisioning:/etc/grafana/provisioning:ro
{mysql}"""
MYSQL_SERVICE = """\
  mysql:
    image: mysql:8.4
    environment:
      - MYSQL_ROOT_PASSWORD=${MYSQL_ROOT_PASSWORD}
    ports:
      - "3306:3306"
"""
DOCKER = """#!{python}
import json, os, sys
with open({record!r}, "a") as fh:
    fh.write(json.dumps(sys.argv) + "\\n")
args = sys.argv[1:]
assert args[:2] == ["compose", "-f"] and args[3:5] == ["exec", "-T"], args
os.execvp(args[6], args[6:])
"""


def safesnap(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [SAFESNAP, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def build_tree(root: Path, *, driver: str, db_path: str, env_lines: list[str]) -> Path:
    """The deployer's layout: compose file, .env (0600), storage/ with config and data."""
    storage = root / "storage"
    for sub in ("tracker/etc", "tracker/lib/database", "tracker/log", "prometheus/etc"):
        (storage / sub).mkdir(parents=True)
    (storage / "grafana/provisioning/datasources").mkdir(parents=True)
    (storage / "caddy/etc").mkdir(parents=True)
    (root / "docker-compose.yml").write_text(
        COMPOSE.format(mysql=MYSQL_SERVICE if driver == "mysql" else "", driver=DRIVER_VAR)
    )
    env = root / ".env"
    env.write_text(
        "\n".join(
            [
                "TORRUST_TRACKER_CONFIG_TOML_PATH='/etc/torrust/tracker/tracker.toml'",
                f"{DRIVER_VAR}='{driver}'",
                *env_lines,
            ]
        )
        + "\n"
    )
    env.chmod(0o600)
    # tracker.toml says sqlite3 in both variants: the override in .env decides.
    (storage / "tracker/etc/tracker.toml").write_text(
        f'[core.database]\ndriver = "sqlite3"\npath = "{db_path}"\n'
    )
    (storage / "prometheus/etc/prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    (storage / "grafana/provisioning/datasources/prometheus.yml").write_text("apiVersion: 1\n")
    (storage / "caddy/etc/Caddyfile").write_text("tracker.example.com {\n}\n")
    (storage / "tracker/log/tracker.log").write_text("started\n" * 100)
    return root


def restore_files(artifact: str, to: Path, cwd: Path) -> set[str]:
    done = safesnap("restore", artifact, "--to", str(to), cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {str(p.relative_to(to)) for p in to.rglob("*") if p.is_file()}


def run_plan(plan: Path, env_file: Path, cwd: Path, env: dict[str, str] | None = None) -> Any:
    done = safesnap(
        "run", "--config", str(plan), "--env-file", str(env_file), "--json", cwd=cwd, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    return {t["name"]: t for t in report["targets"]}


@pytest.fixture
def sqlite_tree(tmp_path: Path) -> Iterator[Path]:
    root = build_tree(tmp_path / "torrust", driver="sqlite3", db_path=DB_IN_CONTAINER, env_lines=[])
    db = root / "storage/tracker/lib/database/sqlite3.db"
    conn = sqlite3.connect(db)  # held open: -wal and -shm exist, as under a running tracker
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT)")
    conn.executemany(
        "INSERT INTO torrents (info_hash) VALUES (?)", [(uuid.uuid4().hex,) for _ in range(500)]
    )
    conn.commit()
    yield root
    conn.close()


def test_sqlite_deployment_init_check_run_restore(tmp_path: Path, sqlite_tree: Path) -> None:
    plan, dest, env_file = tmp_path / "safesnap.toml", tmp_path / "backups", sqlite_tree / ".env"
    made = safesnap("init", "--torrust", str(sqlite_tree), "--dest", str(dest),
                    "--output", str(plan), "--json", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["database"] == "sqlite"
    text = plan.read_text()
    assert str(sqlite_tree / "storage/tracker/lib/database/sqlite3.db") in text
    assert "# " in text and 'engine = "sqlite"' in text

    again = safesnap("init", "--torrust", str(sqlite_tree), "--dest", str(dest),
                     "--output", str(plan), cwd=tmp_path)  # fmt: skip
    assert again.returncode == 7 and "--force" in again.stderr
    assert plan.read_text() == text
    forced = safesnap("init", "--torrust", str(sqlite_tree), "--dest", str(dest),
                      "--output", str(plan), "--force", cwd=tmp_path)  # fmt: skip
    assert forced.returncode == 0, forced.stderr

    check = safesnap("config", "check", "--config", str(plan), "--env-file", str(env_file),
                     cwd=tmp_path)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    targets = run_plan(plan, env_file, tmp_path)
    assert all(t["ok"] for t in targets.values()) and set(targets) == {
        "tracker-db", "config", "storage"
    }  # fmt: skip
    storage_step = targets["storage"]["steps"][0]
    assert storage_step["skipped_covered"] == 3  # the database, its -wal and -shm
    assert "sqlite3.db" in storage_step["covered_paths"]

    restored_db = tmp_path / "restored.db"
    done = safesnap("restore", targets["tracker-db"]["artifact"], "--to", str(restored_db),
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(restored_db) as conn:
        assert conn.execute("SELECT count(*) FROM torrents").fetchone() == (500,)

    prefix = str(sqlite_tree).lstrip("/")
    config = restore_files(targets["config"]["artifact"], tmp_path / "config", tmp_path)
    assert f"{prefix}/.env" in config and f"{prefix}/storage/tracker/etc/tracker.toml" in config
    storage = restore_files(targets["storage"]["artifact"], tmp_path / "storage", tmp_path)
    assert f"{prefix}/storage/tracker/log/tracker.log" in storage
    assert not [n for n in storage if "sqlite3.db" in n]  # nor its -wal / -shm


def test_generic_plan_is_commented_and_valid_as_written(tmp_path: Path) -> None:
    plan = tmp_path / "etc/safesnap/safesnap.toml"  # parents made (0700), as on a fresh host
    made = safesnap("init", "--dest", str(tmp_path / "b"), "--output", str(plan), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = plan.read_text()
    assert text.count("\n# ") > 10 and "safesnap init --torrust" in text
    assert oct(plan.stat().st_mode & 0o777) == "0o600"
    assert oct(plan.parent.stat().st_mode & 0o777) == "0o700"
    check = safesnap("config", "check", "--config", str(plan), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_not_a_torrust_deployment_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services:\n  web:\n    image: nginx\n")
    made = safesnap("init", "--torrust", str(tmp_path), "--output", "p.toml", cwd=tmp_path)
    assert made.returncode == 2 and "no tracker service" in made.stderr
    assert not (tmp_path / "p.toml").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".safesnap-tmp")]


@pytest.fixture
def tracker_user(scratch_db: str) -> Iterator[tuple[str, str]]:
    """The tracker's MySQL user (MYSQL_USER in the deployer's .env): its database, and the
    scratch databases the run's verify step loads into."""
    user, password = f"sst_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    conn = admin()
    with conn.cursor() as cur:
        for host in ("127.0.0.1", "localhost"):
            cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON `{scratch_db}`.* TO '{user}'@'{host}'")
            cur.execute(f"GRANT ALL ON `safesnap\\_verify\\_%`.* TO '{user}'@'{host}'")
            cur.execute(f"GRANT ALL ON `sstest\\_restored\\_%`.* TO '{user}'@'{host}'")
            cur.execute(f"GRANT SELECT ON mysql.proc TO '{user}'@'{host}'")
        cur.execute(f"CREATE TABLE `{scratch_db}`.torrents (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO `{scratch_db}`.torrents SELECT seq FROM test.seq_1_to_700")
    try:
        yield user, password
    finally:
        with conn.cursor() as cur:
            for host in ("127.0.0.1", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        conn.close()


@pytest.mark.mariadb
def test_mysql_deployment_init_check_run_restore(
    tmp_path: Path, scratch_db: str, tracker_user: tuple[str, str]
) -> None:
    user, password = tracker_user
    url = f"mysql://{user}:{password}@mysql:3306/{scratch_db}"
    root = build_tree(
        tmp_path / "torrust",
        driver="mysql",
        db_path=url,
        env_lines=[
            f"MYSQL_DATABASE='{scratch_db}'",
            f"MYSQL_USER='{user}'",
            f"MYSQL_PASSWORD='{password}'",
        ],
    )
    (root / "storage/tracker/etc/tracker.toml").write_text(
        f'[core.database]\ndriver = "sqlite3"\npath = "{url}"\n'
    )
    datadir = root / "storage/mysql"  # a datadir bind-mounted into storage/
    datadir.mkdir()
    (datadir / "ibdata1").write_bytes(b"\0" * 4096)
    bin_dir, record = tmp_path / "bin", tmp_path / "docker-calls.jsonl"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(DOCKER.format(python=sys.executable, record=str(record)))
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    plan, dest, env_file = tmp_path / "safesnap.toml", tmp_path / "backups", root / ".env"

    made = safesnap("init", "--torrust", str(root), "--dest", str(dest), "--output", str(plan),
                    cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    text = plan.read_text()
    assert password not in text
    assert 'password_env = "MYSQL_PASSWORD"' in text and f'user = "{user}"' in text
    assert '"exec", "-T", "mysql"' in text and str(root / "docker-compose.yml") in text

    check = safesnap("config", "check", "--config", str(plan), "--env-file", str(env_file),
                     cwd=tmp_path)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    targets = run_plan(plan, env_file, tmp_path, env)
    assert all(t["ok"] for t in targets.values()), targets
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls and calls[0][1:7] == ["compose", "-f", str(root / "docker-compose.yml"),
                                       "exec", "-T", "mysql"]  # fmt: skip
    assert not [c for c in calls if any(password in a for a in c)]  # never in argv
    storage_step = targets["storage"]["steps"][0]
    assert storage_step["skipped_covered"] == 1  # storage/mysql, dumped by tracker-db

    restored = f"sstest_restored_{uuid.uuid4().hex[:8]}"
    try:
        done = safesnap("restore", targets["tracker-db"]["artifact"], "--to", restored,
                        "--env-file", str(env_file), cwd=tmp_path, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert run_sql(restored, "SELECT count(*) FROM torrents") == [(700,)]
    finally:
        run_sql(None, f"DROP DATABASE IF EXISTS `{restored}`")
    prefix = str(root).lstrip("/")
    storage = restore_files(targets["storage"]["artifact"], tmp_path / "storage", tmp_path)
    assert f"{prefix}/storage/caddy/etc/Caddyfile" in storage
    assert not [n for n in storage if "/storage/mysql/" in n]
    config = restore_files(targets["config"]["artifact"], tmp_path / "config", tmp_path)
    assert f"{prefix}/.env" in config
