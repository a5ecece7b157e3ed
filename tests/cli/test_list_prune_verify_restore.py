"""`safesnap list|prune|verify|restore` through the real entry point, on real files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.artifacts import MakeArtifact, flip_byte, visible

from safesnap.artifacts.store import ArtifactInfo, read_manifest
from safesnap.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
SAFESNAP = [sys.executable, "-m", "safesnap"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """Run the CLI in-process; return (exit code, parsed JSON stdout or raw text, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


def rows(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def test_verify_ok_marks_manifest(
    capsys: pytest.CaptureFixture[str], sqlite_artifact: ArtifactInfo
) -> None:
    code, out, _ = cli(capsys, "verify", str(sqlite_artifact.path), "--json")
    assert code == 0
    assert set(out) >= {"ok", "artifact", "sha256", "checksum_ok", "integrity", "seconds"}
    assert out["ok"] is True
    assert out["checksum_ok"] is True
    assert out["sha256"] == sqlite_artifact.sha256
    assert out["integrity"]["integrity_result"] == "ok"
    assert out["marked_verified"] is True
    manifest = read_manifest(sqlite_artifact.path)
    assert manifest["verified"] is True
    assert manifest["verified_at"] >= manifest["created_at"]
    assert manifest["sha256"] == sqlite_artifact.sha256  # everything else kept


def test_verify_flipped_byte_fails_and_unmarks_manifest(
    capsys: pytest.CaptureFixture[str], sqlite_artifact: ArtifactInfo
) -> None:
    assert cli(capsys, "verify", str(sqlite_artifact.path), "--json")[0] == 0
    before = read_manifest(sqlite_artifact.path)
    assert before["verified"] is True
    flip_byte(sqlite_artifact.path, sqlite_artifact.bytes // 2)
    code, out, _ = cli(capsys, "verify", str(sqlite_artifact.path), "--json")
    assert code == 5
    assert out["ok"] is False
    assert out["error"]["code"] == "integrity_failed"
    assert sqlite_artifact.path.name in out["error"]["message"]
    after = read_manifest(sqlite_artifact.path)
    # No longer "the newest verified backup" for retention; everything else as it was.
    assert after["verified"] is False
    assert after["verify_error"] == out["error"]["message"]
    changed = {"verified", "verify_error", "verify_failed_at"}
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }
    code, _, err = cli(capsys, "verify", str(sqlite_artifact.path))
    assert code == 5
    assert "error:" in err
    assert sqlite_artifact.path.name in err


def test_verify_bad_input_is_artifact_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = cli(capsys, "verify", str(tmp_path / "missing.zst"), "--json")
    assert (code, out["error"]["code"]) == (6, "artifact_invalid")
    loose = tmp_path / "db.20260101T000000Z.manual.sqlite.zst"
    loose.write_bytes(b"x")
    code, out, _ = cli(capsys, "verify", str(loose), "--json")
    assert (code, out["error"]["code"]) == (6, "artifact_invalid")
    assert "no manifest" in out["error"]["message"]


def test_restore_refuses_overwrite_then_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sqlite_artifact: ArtifactInfo
) -> None:
    live = tmp_path / "live.db"
    expected = rows(live)
    target = tmp_path / "restored" / "tracker.db"
    code, out, _ = cli(capsys, "restore", str(sqlite_artifact.path), "--to", str(target), "--json")
    assert code == 0
    assert out["ok"] is True
    assert out["checksum_ok"] is True
    assert rows(target) == expected
    target.write_bytes(b"not a database any more")
    code, out, _ = cli(capsys, "restore", str(sqlite_artifact.path), "--to", str(target), "--json")
    assert (code, out["error"]["code"]) == (7, "refused")
    assert target.read_bytes() == b"not a database any more"
    code, out, _ = cli(
        capsys, "restore", str(sqlite_artifact.path), "--to", str(target), "--force", "--json"
    )
    assert code == 0
    assert rows(target) == expected


def test_restore_damaged_artifact_touches_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sqlite_artifact: ArtifactInfo
) -> None:
    flip_byte(sqlite_artifact.path, -10)
    target = tmp_path / "out"
    target.mkdir()
    code, out, _ = cli(
        capsys, "restore", str(sqlite_artifact.path), "--to", str(target / "x.db"), "--json"
    )
    assert (code, out["error"]["code"]) == (5, "integrity_failed")
    assert list(target.iterdir()) == []


def _history(make: MakeArtifact, dest: Path, target: str, days: list[int]) -> list[ArtifactInfo]:
    now = datetime.now(UTC)
    return [make(dest=dest, target=target, created_at=now - timedelta(days=d)) for d in days]


def test_list_json_newest_first_and_target_filter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    a = _history(make_artifact, tmp_path / "a", "a", [3, 1])
    b = _history(make_artifact, tmp_path / "b", "b", [2])
    code, out, _ = cli(capsys, "list", "--dest", str(tmp_path), "--json")
    assert code == 0
    assert [r["artifact"] for r in out["artifacts"]] == [
        str(a[1].path),
        str(b[0].path),
        str(a[0].path),
    ]
    row = out["artifacts"][0]
    keys = {"artifact", "target", "engine", "kind", "created_at", "bytes", "source_bytes"}
    assert keys | {"sha256", "verified"} <= set(row)
    assert (row["target"], row["verified"], row["sha256"]) == ("a", False, a[1].sha256)
    code, out, _ = cli(capsys, "list", "--dest", str(tmp_path), "--target", "b", "--json")
    assert [r["target"] for r in out["artifacts"]] == ["b"]
    code, out, err = cli(capsys, "list", "--dest", str(tmp_path))
    assert code == 0
    assert f"a.{a[1].path.name[2:]}" in out
    assert str(a[1].path) in out  # not a terminal: one line per backup with the full path
    assert str(a[1].path) not in err  # rows are results: stdout only


def test_list_missing_dest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "list", "--dest", str(tmp_path / "nope"), "--json")
    assert (code, out["error"]["code"]) == (6, "artifact_invalid")


def test_prune_keep_last_dry_run_then_real(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    hist = _history(make_artifact, tmp_path, "db", [0, 1, 2, 3])
    before = visible(tmp_path)
    args = ["prune", "--dest", str(tmp_path), "--keep-last", "2", "--json"]
    code, out, _ = cli(capsys, *args, "--dry-run")
    assert code == 0
    assert out["dry_run"] is True
    assert out["deleted"] == [str(h.path) for h in hist[2:]]
    assert visible(tmp_path) == before
    code, out, _ = cli(capsys, *args)
    assert (code, out["ok"], out["dry_run"]) == (0, True, False)
    assert out["kept"] == [str(h.path) for h in hist[:2]]
    assert out["reasons"][str(hist[1].path)] == ["last 2"]
    for h in hist[2:]:
        assert not h.path.exists()
        assert not h.manifest_path.exists()


def test_prune_defaults_come_from_the_plan_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    # 3/7/4/6/0: ten backups one day apart keep the 7 dailies; the rest are weekly/monthly picks.
    hist = _history(make_artifact, tmp_path, "db", list(range(10)))
    code, out, _ = cli(capsys, "prune", "--dest", str(tmp_path), "--dry-run", "--json")
    assert code == 0
    kept = set(out["kept"])
    assert {str(h.path) for h in hist[:7]} <= kept
    assert all(any(r.startswith("daily") for r in out["reasons"][str(h.path)]) for h in hist[:7])


def test_real_entry_point(tmp_path: Path, sqlite_artifact: ArtifactInfo) -> None:
    """The installed console script path: exit codes and one JSON object on stdout."""
    ok = subprocess.run(
        [*SAFESNAP, "verify", str(sqlite_artifact.path), "--json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    flip_byte(sqlite_artifact.path, 30)
    bad = subprocess.run(
        [*SAFESNAP, "verify", str(sqlite_artifact.path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode == 5
    assert bad.stdout == ""
    assert "error" in bad.stderr


@pytest.fixture
def mysql_source(mariadb_server: None) -> Iterator[str]:
    import pymysql

    name = f"sstest_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB")
        cur.executemany(
            f"INSERT INTO `{name}`.t VALUES (%s, %s)", [(i, f"r{i}") for i in range(30)]
        )
        yield name
    finally:
        for db in (name, name + "_restored"):
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()


@pytest.mark.mariadb
def test_mysql_verify_and_restore(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mysql_source: str
) -> None:
    import pymysql

    code, out, err = cli(
        capsys, "backup", "mysql", "-d", mysql_source, "--dest", str(tmp_path), "--json"
    )
    assert code == 0, err
    artifact = out["artifact"]
    conn_args = ["--host", "127.0.0.1", "--port", "3306", "--user", "root"]
    code, out, err = cli(capsys, "verify", artifact, *conn_args, "--json")
    assert code == 0, err
    assert out["integrity"]["rows"] == 30
    restored = mysql_source + "_restored"
    code, out, err = cli(capsys, "restore", artifact, "--to", restored, *conn_args, "--json")
    assert code == 0, err
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=restored)
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*), MAX(v) FROM t")
        assert cur.fetchone() == (30, "r9")
    finally:
        conn.close()
    code, out, _ = cli(capsys, "restore", artifact, "--to", restored, *conn_args, "--json")
    assert (code, out["error"]["code"]) == (7, "refused")


def test_prune_uses_the_plan_and_waits_for_no_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    from safesnap.run.lock import run_lock

    dest = tmp_path / "backups"
    hist = _history(make_artifact, dest, "db", [0, 1, 2, 3])
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{dest}"\n[retention]\nkeep_last = 1\nkeep_daily = 0\n'
        "keep_weekly = 0\nkeep_monthly = 0\n"
        f'[[targets]]\nname = "db"\npath = "{tmp_path / "live.db"}"\n'
    )
    with run_lock(dest):  # a run is writing: prune must not touch anything
        code, out, _ = cli(capsys, "prune", "--config", str(plan), "--json")
    assert (code, out["error"]["code"]) == (8, "run_locked")
    assert all(h.path.exists() for h in hist)
    code, out, _ = cli(capsys, "prune", "--config", str(plan), "--json")
    assert code == 0
    assert out["kept"] == [str(hist[0].path)]
    assert [Path(p).exists() for p in out["deleted"]] == [False, False, False]
