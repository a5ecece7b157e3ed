"""safesnap.engines.sqlite.copy against real database files and other processes holding locks."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.sqlite_writer import make_db, table_digest

from safesnap.engines.sqlite.copy import finish_copy, hold_for_snapshot, raw_copy
from safesnap.errors import QuiesceError, SourceBusyError, SourceError


def _count(db: Path, table: str = "events") -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def _insert_events(conn: sqlite3.Connection, n: int) -> None:
    for i in range(n):
        conn.execute("INSERT INTO events(at, v) VALUES (?, ?)", (float(i), b"x" * 100))


def test_wal_copy_includes_frames_not_yet_checkpointed(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    make_db(db, 1, "wal")
    live = sqlite3.connect(db, isolation_level=None)  # kept open: its WAL is not checkpointed
    live.execute("PRAGMA wal_autocheckpoint=0")
    _insert_events(live, 500)
    assert Path(f"{db}-wal").stat().st_size > 0
    copy = tmp_path / "copy.db"
    result = raw_copy(db, copy, busy_timeout=1)
    finish_copy(copy)
    live.close()
    assert result.journal_mode == "wal"
    assert result.writer_lockout_seconds == 0.0
    assert not Path(f"{copy}-wal").exists()
    assert table_digest(copy, "events") == table_digest(db, "events")
    assert _count(copy) == 500


def test_wal_copy_ignores_a_torn_tail(tmp_path: Path) -> None:
    """A frame half-written by a concurrent append fails the WAL checksum; replay stops there."""
    db = tmp_path / "src.db"
    make_db(db, 0.2, "wal")
    live = sqlite3.connect(db, isolation_level=None)
    live.execute("PRAGMA wal_autocheckpoint=0")
    _insert_events(live, 20)
    copy = tmp_path / "copy.db"
    raw_copy(db, copy, busy_timeout=1)
    with open(f"{copy}-wal", "ab") as wal:
        wal.write(b"\x00\x00\x00\x09" + b"\xaa" * 2000)  # a torn frame after the last commit
    finish_copy(copy)
    live.close()
    assert _count(copy) == 20
    assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_rollback_copy_reports_lockout_and_writers_wait(tmp_path: Path, sqlite_writer: Any) -> None:
    db = tmp_path / "src.db"
    make_db(db, 4, "delete")
    writer = sqlite_writer(db, interval=0.002, busy_timeout=5)
    time.sleep(0.2)
    before = _count(db)
    copy = tmp_path / "copy.db"
    result = raw_copy(db, copy, busy_timeout=5)
    time.sleep(0.2)
    stats = writer.stop()
    after = _count(db)
    assert result.journal_mode == "delete"
    assert 0 < result.writer_lockout_seconds <= result.copy_seconds
    assert stats.errors == 0, stats.error_samples
    assert before <= _count(copy) <= after
    assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_wal_copies_stay_consistent_through_checkpoints_and_restarts(
    tmp_path: Path, sqlite_writer: Any
) -> None:
    """A writer checkpointing every 2 pages restarts the WAL from frame 1 all the time; every
    copy taken meanwhile must be exactly the source's rows 1..K for some K."""
    db = tmp_path / "src.db"
    make_db(db, 2, "wal")
    writer = sqlite_writer(db, interval=0.001, autocheckpoint=2)
    seen = []
    for i in range(8):  # bounded: 8 copies of a 2 MiB database
        copy = tmp_path / f"copy{i}.db"
        raw_copy(db, copy, busy_timeout=5)
        finish_copy(copy)
        assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seen.append(copy)
        time.sleep(0.03)
    stats = writer.stop()
    assert stats.errors == 0, stats.error_samples
    counts = [_count(c) for c in seen]
    assert counts == sorted(counts) and counts[-1] > counts[0]  # the writer moved on meanwhile
    for copy in seen:
        k = _count(copy)
        assert table_digest(copy, "events") == table_digest(db, "events", k)
        assert table_digest(copy, "bulk") == table_digest(db, "bulk")


def test_missing_source_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "missing.db"
    with pytest.raises(SourceError, match="not found"):
        raw_copy(db, tmp_path / "copy.db", busy_timeout=1)
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"hello, not a database" * 100])
def test_not_sqlite(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "x.db"
    db.write_bytes(content)
    with pytest.raises(SourceError, match="not an SQLite database"):
        raw_copy(db, tmp_path / "copy.db", busy_timeout=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]


def test_exclusive_lock_beyond_busy_timeout(tmp_path: Path, sqlite_lock_holder: Any) -> None:
    db = tmp_path / "src.db"
    make_db(db, 0.2, "delete")
    sqlite_lock_holder(db, "BEGIN EXCLUSIVE")
    started = time.monotonic()
    with pytest.raises(SourceBusyError, match="busy timeout"):
        raw_copy(db, tmp_path / "copy.db", busy_timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 5
    assert not (tmp_path / "copy.db").exists()


def test_wal_copy_is_not_blocked_by_a_long_write_transaction(
    tmp_path: Path, sqlite_lock_holder: Any
) -> None:
    """In WAL mode BEGIN EXCLUSIVE only excludes writers: the copy goes ahead, without the
    holder's uncommitted rows."""
    db = tmp_path / "src.db"
    make_db(db, 0.2, "wal")
    sqlite_lock_holder(db, "BEGIN EXCLUSIVE", "INSERT INTO events(at, v) VALUES (1, x'00')")
    copy = tmp_path / "copy.db"
    result = raw_copy(db, copy, busy_timeout=0.3)
    finish_copy(copy)
    assert result.writer_lockout_seconds == 0.0
    assert _count(copy) == 0


def test_wal_exclusive_locking_mode_is_busy(tmp_path: Path, sqlite_lock_holder: Any) -> None:
    """A WAL writer in locking_mode=EXCLUSIVE keeps its wal-index private: nobody can read."""
    db = tmp_path / "src.db"
    make_db(db, 0.2, "wal")
    sqlite_lock_holder(db, "PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE")
    with pytest.raises(SourceBusyError):
        raw_copy(db, tmp_path / "copy.db", busy_timeout=0.3)


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_hold_blocks_writers_and_releases_on_exit(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "src.db"
    make_db(db, 0.2, mode)
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    with hold_for_snapshot(db, busy_timeout=1, max_hold_seconds=10) as facts:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        assert other.execute("SELECT count(*) FROM bulk").fetchone()[0] > 0  # readers go on
        time.sleep(0.05)
    assert facts["journal_mode"] == mode
    assert facts["released_by"] == "exit"
    assert facts["lock_held_seconds"] >= 0.05
    other.execute("BEGIN IMMEDIATE")  # released: writing works again
    other.execute("ROLLBACK")


def test_hold_releases_when_the_body_raises(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    make_db(db, 0.2, "wal")
    with pytest.raises(RuntimeError), hold_for_snapshot(db, busy_timeout=1):
        raise RuntimeError("snapshot call failed")
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")


def test_watchdog_releases_a_hung_hold(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    make_db(db, 0.2, "wal")
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    with (  # noqa: PT012
        pytest.raises(QuiesceError, match="watchdog"),
        hold_for_snapshot(db, busy_timeout=1, max_hold_seconds=0.3) as facts,
    ):
        deadline = time.monotonic() + 5
        while facts["released_by"] is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the "snapshot call" hangs
        other.execute("BEGIN IMMEDIATE")  # the watchdog let writers back in
        other.execute("ROLLBACK")
    assert facts["released_by"] == "watchdog"
    assert 0.3 <= facts["lock_held_seconds"] < 2


def test_hold_gives_up_beyond_busy_timeout(tmp_path: Path, sqlite_lock_holder: Any) -> None:
    db = tmp_path / "src.db"
    make_db(db, 0.2, "wal")
    sqlite_lock_holder(db, "BEGIN IMMEDIATE")
    with pytest.raises(SourceBusyError), hold_for_snapshot(db, busy_timeout=0.3):
        pytest.fail("must not get the lock")
