"""Artifacts written by safesnap 0.1.0 (before the layout change of issue #8) still verify and
restore through the real entry point. The files under tests/data/legacy-0.1.0 were made by
`safesnap backup sqlite`, `safesnap backup mysql` and `safesnap run` (a files target) at commit
44eade9 and are never regenerated: a change that breaks reading them breaks users' backups."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.fixtures.mariadb import admin

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy-0.1.0"
SQLITE = "tracker.20261204T151138Z.manual.sqlite.zst"
MYSQL = "legacy_fixture.20261204T151139Z.manual.sql.zst"
FILES = "config.20261204T151139Z.nightly.tar.zst"


def safesnap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safesnap", *args],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A writable copy: verify records its result in the manifest."""
    out = tmp_path / "legacy"
    shutil.copytree(LEGACY, out)
    return out


def test_sqlite_artifact_from_0_1_0_verifies_and_restores(legacy: Path, tmp_path: Path) -> None:
    assert safesnap("verify", str(legacy / SQLITE)).returncode == 0
    restored = tmp_path / "restored.db"
    proc = safesnap("restore", str(legacy / SQLITE), "--to", str(restored))
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(restored) as conn:
        rows = conn.execute("SELECT count(*), sum(completed) FROM torrents").fetchone()
    assert rows == (500, sum(i % 3 for i in range(500)))


def test_files_artifact_from_0_1_0_verifies_and_restores(legacy: Path, tmp_path: Path) -> None:
    assert safesnap("verify", str(legacy / FILES)).returncode == 0
    into = tmp_path / "restored"
    proc = safesnap("restore", str(legacy / FILES), "--to", str(into))
    assert proc.returncode == 0, proc.stderr
    etc = into / "tmp" / "legacy" / "src" / "etc"
    assert (etc / "tracker.toml").read_text() == '[core]\nlisten = "0.0.0.0:6969"\n'
    assert (etc / "sub" / "prov.yml").read_text() == "grafana: 1\n"


@pytest.mark.mariadb
def test_mysql_artifact_from_0_1_0_verifies_and_restores(
    legacy: Path, scratch_db: str, mariadb_server: None
) -> None:
    login = ("--host", "127.0.0.1", "--user", "root")
    proc = safesnap("verify", str(legacy / MYSQL), *login)
    assert proc.returncode == 0, proc.stderr
    proc = safesnap(
        "restore", str(legacy / MYSQL), "--to", scratch_db, "--force",
        "--database", "legacy_fixture", *login,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    conn = admin(scratch_db)
    with conn.cursor() as cur:
        cur.execute("SELECT id, info_hash, completed FROM torrents ORDER BY id")
        assert cur.fetchall() == ((1, "aa", 0), (2, "bb", 1), (3, "cc", 0))
    conn.close()
