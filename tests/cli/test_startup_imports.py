"""Startup imports only what the command needs: `safesnap --version` and the SQLite path never
load the MySQL driver or a cloud SDK (they cost most of the 0.25-0.4 s startup before commands
were loaded lazily; docs/benchmarks.md "Startup"). Checked on sys.modules in a fresh process
through the real entry point, so the result does not depend on timing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pymysql", "boto3", "botocore", "hcloud", "digitalocean")
HEAVY += ("pyrage",)  # age encryption: only replicas with [encryption] and restores load it

PROBE = """
import json, sys
from safesnap.cli.app import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
mods = sorted(m for m in sys.modules if m in {heavy!r} or m.split(".")[0] in {heavy!r})
print(json.dumps([code, mods]))
"""


def imported_by(*args: str, cwd: Path | None = None, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *args],
        capture_output=True, text=True, timeout=60, check=True, cwd=cwd,
    )  # fmt: skip
    code, modules = json.loads(proc.stdout.strip().splitlines()[-1])
    # A command that failed before doing its work would import nothing and prove nothing.
    assert code == 0, proc.stderr
    return list(modules)


@pytest.mark.parametrize(
    "args",
    [("--version",), ("backup", "sqlite", "--help"), ("--help",), ("config", "env-example")],
)
def test_startup_does_not_import_mysql_or_cloud_sdks(args: tuple[str, ...]) -> None:
    assert imported_by(*args) == []


def test_a_sqlite_backup_does_not_import_mysql_or_cloud_sdks(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert imported_by("backup", "sqlite", str(db), "--dest", str(tmp_path / "out")) == []
    assert len(list((tmp_path / "out").glob("app.*.manifest.json"))) == 1


def test_the_probe_sees_a_command_that_does_import_the_mysql_driver() -> None:
    # The negative control: the same probe run on `backup mysql --help` finds PyMySQL, so an
    # empty list above means "not imported", not "the probe saw nothing".
    assert "pymysql" in imported_by("backup", "mysql", "--help")


# The SQLite path imports no MySQL, cloud, S3, notification or encryption stack, and not the
# plan's pydantic models: building them cost ~110 ms of its startup (issue #13). (pydantic
# itself is imported by typer's parameter adapters, typer/_adapters.py, on any command.)
SQLITE_PATH_NEVER = (
    *HEAVY, "boto3", "s3transfer", "apprise", "pyrage", "pydantic_settings",
    "safesnap.engines.mysql", "safesnap.config.targets", "safesnap.config.plan",
    "safesnap_providers.aws", "safesnap_providers.digitalocean", "safesnap_providers.hetzner",
)  # fmt: skip


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_the_sqlite_path_imports_no_other_stack(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA journal_mode={mode}")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    args = ("backup", "sqlite", str(db), "--dest", str(tmp_path / "out"))
    assert imported_by(*args, heavy=SQLITE_PATH_NEVER) == []
    assert imported_by("--version", heavy=SQLITE_PATH_NEVER) == []
    # Negative control: the same probe sees the plan's models where they are used.
    assert "safesnap.config.targets" in imported_by(
        "config", "env-example", heavy=SQLITE_PATH_NEVER
    )


def test_rich_is_imported_only_for_a_person(tmp_path: Path) -> None:
    # rich is ~27 ms of a ~100 ms start: `--version` and a `--json` SQLite backup (cron, scripts)
    # never print through it; the human summary of the same backup does.
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    args = ("backup", "sqlite", str(db), "--dest", str(tmp_path / "out"))
    assert imported_by("--version", heavy=("rich",)) == []
    assert imported_by(*args, "--json", heavy=("rich",)) == []
    assert "rich" in imported_by(*args, heavy=("rich",))  # negative control
