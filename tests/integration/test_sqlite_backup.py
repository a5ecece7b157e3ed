"""The SQLite engine end to end: live writer process, artifact, verify, restore."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.sqlite_writer import max_id, table_digest

from safesnap.artifacts import store as artifacts
from safesnap.artifacts.catalog import sweep_temporaries
from safesnap.config.plan import SqliteTarget
from safesnap.engines import BackupContext
from safesnap.engines.sqlite.engine import ENGINE
from safesnap.errors import IntegrityError, RefusedError, SourceError


def _target(db: Path, **kw: Any) -> SqliteTarget:
    return SqliteTarget(name="tracker", path=db, **kw)


def _count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def _dest_names(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_backup_under_writer_then_restore_round_trip(
    tmp_path: Path, sqlite_db: Any, sqlite_writer: Any, mode: str
) -> None:
    db = sqlite_db(mb=4, mode=mode)
    writer = sqlite_writer(db, interval=0.003, busy_timeout=5)
    time.sleep(0.3)
    before = _count(db)
    dest = tmp_path / "dest"
    outcome = ENGINE.backup(_target(db), BackupContext(dest=dest))
    time.sleep(0.2)
    stats = writer.stop()
    after = _count(db)

    info = outcome.artifact
    assert stats.errors == 0, stats.error_samples
    assert before > 0 and after > before  # the writer really wrote around the copy
    assert _dest_names(dest) == sorted([info.path.name, info.manifest_path.name])
    manifest = artifacts.read_manifest(info.path)
    assert manifest["journal_mode"] == mode
    assert manifest["integrity_result"] == "ok"
    assert manifest["method"] == ("stream" if mode == "wal" else "raw")  # ADR 0008
    assert before <= manifest["row_counts"]["events"] <= after
    if mode == "wal":
        assert manifest["writer_lockout_seconds"] == 0.0
    else:
        assert manifest["writer_lockout_seconds"] > 0

    restored = tmp_path / "restored" / "tracker.db"
    result = ENGINE.restore(info.path, manifest, str(restored), force=False, options={})
    assert result["integrity_result"] == "ok"
    copy_point = max_id(restored)  # insert-only writer: the copy holds ids 1..K exactly
    assert table_digest(restored, "events") == table_digest(db, "events", copy_point)
    assert table_digest(restored, "bulk") == table_digest(db, "bulk")
    assert _count(restored) == manifest["row_counts"]["events"] == copy_point


def test_verify_checks_content_and_row_counts(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=1)
    info = ENGINE.backup(_target(db, integrity_check="full"), BackupContext(dest=tmp_path / "d"))
    manifest = artifacts.read_manifest(info.artifact.path)
    facts = ENGINE.verify(info.artifact.path, manifest, {})
    assert facts["integrity_result"] == "ok"
    assert facts["row_counts"] == manifest["row_counts"]
    wrong = {**manifest, "row_counts": {**manifest["row_counts"], "events": 1}}
    with pytest.raises(IntegrityError, match="row counts"):
        ENGINE.verify(info.artifact.path, wrong, {})


def test_corrupt_source_leaves_nothing(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=1, mode="delete")
    with db.open("r+b") as fh:  # garbage over b-tree pages, header intact
        fh.seek(4096 * 20)
        fh.write(b"\xde\xad\xbe\xef" * 4096)
    dest = tmp_path / "dest"
    with pytest.raises((IntegrityError, SourceError)):
        ENGINE.backup(_target(db, integrity_check="full"), BackupContext(dest=dest))
    assert _dest_names(dest) == []


def test_restore_refuses_existing_then_replaces_with_force(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=0.5)
    info = ENGINE.backup(_target(db), BackupContext(dest=tmp_path / "d")).artifact
    manifest = artifacts.read_manifest(info.path)
    other = sqlite_db(mb=0.2, name="other.db")  # an existing database with a live WAL
    keep_open = sqlite3.connect(other, isolation_level=None)
    keep_open.execute("PRAGMA wal_autocheckpoint=0")
    keep_open.execute("INSERT INTO events(at, v) VALUES (1, x'00')")
    stale_wal = Path(f"{other}-wal").read_bytes()
    keep_open.close()
    target = tmp_path / "live.db"
    target.write_bytes(other.read_bytes())
    target.chmod(0o640)
    Path(f"{target}-wal").write_bytes(stale_wal)  # would be replayed if left behind
    original = target.read_bytes()

    with pytest.raises(RefusedError):
        ENGINE.restore(info.path, manifest, str(target), force=False, options={})
    assert target.read_bytes() == original

    ENGINE.restore(info.path, manifest, str(target), force=True, options={})
    assert target.stat().st_mode & 0o777 == 0o640  # the replaced file's mode, not 0600
    assert table_digest(target, "bulk") == table_digest(db, "bulk")
    assert table_digest(target, "events") == table_digest(db, "events")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".safesnap")]


def test_restore_of_damaged_artifact_changes_nothing(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=0.5)
    info = ENGINE.backup(_target(db), BackupContext(dest=tmp_path / "d")).artifact
    manifest = artifacts.read_manifest(info.path)
    data = bytearray(info.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    info.path.write_bytes(bytes(data))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "tracker.db"
    target.write_bytes(b"previous content")
    with pytest.raises(IntegrityError):
        ENGINE.restore(info.path, manifest, str(target), force=True, options={})
    assert target.read_bytes() == b"previous content"
    assert _dest_names(out_dir) == ["tracker.db"]


def test_quiesce_through_the_engine(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=0.2)
    with ENGINE.quiesce(_target(db, max_lock_hold_seconds=5)) as facts:
        blocked = sqlite3.connect(db, isolation_level=None, timeout=0)
        with pytest.raises(sqlite3.OperationalError):
            blocked.execute("BEGIN IMMEDIATE")
    assert facts["released_by"] == "exit"
    assert json.dumps(facts)  # report-ready: plain JSON types only


def test_old_temp_copies_are_swept_and_a_backup_leaves_none(tmp_path: Path, sqlite_db: Any) -> None:
    """Temp copies named by safesnap <= 0.x (`.safesnap-tmp-<target>-<hex>.sqlite`, no lock
    while copying) go after 10 minutes with a free lock; the engine's own temp copy (new
    scheme) is gone when backup returns."""
    db = sqlite_db(mb=0.2)
    dest = tmp_path / "dest"
    dest.mkdir()
    old = time.time() - 3600
    abandoned = dest / ".safesnap-tmp-tracker-dead.sqlite"
    in_use = dest / ".safesnap-tmp-tracker-live.sqlite"
    fresh = dest / ".safesnap-tmp-tracker-new.sqlite"
    for path in (abandoned, in_use, fresh):
        path.write_bytes(b"x" * 1000)
    Path(f"{abandoned}-wal").write_bytes(b"w")
    os.utime(abandoned, (old, old))
    os.utime(in_use, (old, old))
    fd = os.open(in_use, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run is still using it
    try:
        swept = sweep_temporaries(dest)
        outcome = ENGINE.backup(_target(db), BackupContext(dest=dest))
    finally:
        os.close(fd)
    assert sorted(swept.removed) == [abandoned, Path(f"{abandoned}-wal")]
    assert swept.bytes == 1001
    artifact = outcome.artifact.path
    assert _dest_names(dest) == sorted(
        [in_use.name, fresh.name, artifact.name, outcome.artifact.manifest_path.name]
    )
