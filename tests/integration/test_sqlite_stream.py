"""The streamed WAL copy (ADR 0008) equals the database as the read transaction saw it.

A writer replays a known sequence of transactions (`apply`: inserts of varied sizes, overflow
pages included, updates and bulk deletes, a `meta` row holding the last transaction number);
`model(k)` is the exact content after transactions 1..k. A copy is right when it passes
integrity_check and its content is `model(k)` for the `k` it records: a prefix of the sequence.

The deterministic tests pin a snapshot, stream half of it, let the writer commit more and run
a checkpoint (each mode) or grow/shrink the file, then stream the rest: the copy must hold
exactly the transactions committed before the pin. The last test does the same with real
processes and real timing through the engine.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.pagecache import HAS_FINCORE, resident
from tests.fixtures.sqlite_writer import make_db

from safesnap.artifacts import store as artifacts
from safesnap.config.targets import SqliteTarget
from safesnap.engines import BackupContext
from safesnap.engines.sqlite import copy as q
from safesnap.engines.sqlite import stream, wal
from safesnap.engines.sqlite.engine import ENGINE
from safesnap.engines.sqlite.fds import SourceFiles

Row = tuple[int, bytes]


def payload(t: int) -> bytes:
    """Deterministic content of varied size: 60 B to ~9 KiB (overflow pages at small sizes)."""
    size = 60 + (t * 977) % 9000
    return (hashlib.sha256(str(t).encode()).digest() * (size // 32 + 1))[:size]


def ops(t: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Transaction t of the sequence; every 9th one deletes a third of the rows (shrinks)."""
    out: list[tuple[str, tuple[Any, ...]]] = [
        ("INSERT INTO log(id, v) VALUES (?, ?)", (t, payload(t))),
        ("UPDATE meta SET last = ?", (t,)),
    ]
    if t % 5 == 0:
        out.append(("UPDATE log SET v = ? WHERE id = ?", (payload(t + 100_000), t // 2)))
    if t % 9 == 0:
        out.append(("DELETE FROM log WHERE id % 3 = 0 AND id < ?", (t - 3,)))
    return out


def model(k: int) -> list[Row]:
    rows: dict[int, bytes] = {}
    for t in range(1, k + 1):  # bounded by k
        rows[t] = payload(t)
        if t % 5 == 0 and t // 2 in rows:
            rows[t // 2] = payload(t + 100_000)
        if t % 9 == 0:
            rows = {i: v for i, v in rows.items() if not (i % 3 == 0 and i < t - 3)}
    return sorted(rows.items())


def create(path: Path, page_size: int, auto_vacuum: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute(f"PRAGMA page_size={page_size}")
    conn.execute(f"PRAGMA auto_vacuum={auto_vacuum}")
    assert conn.execute("PRAGMA journal_mode=wal").fetchone()[0] == "wal"
    conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints happen when the test says
    conn.execute("CREATE TABLE log(id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
    conn.execute("CREATE TABLE meta(last INTEGER NOT NULL)")
    conn.execute("INSERT INTO meta VALUES (0)")
    return conn


def apply(conn: sqlite3.Connection, first: int, last: int) -> None:
    for t in range(first, last + 1):  # bounded
        conn.execute("BEGIN IMMEDIATE")
        for sql, args in ops(t):
            conn.execute(sql, args)
        conn.execute("COMMIT")


def content(db: Path) -> tuple[int, list[Row]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        last = conn.execute("SELECT last FROM meta").fetchone()[0]
        return last, conn.execute("SELECT id, v FROM log ORDER BY id").fetchall()


def stream_copy(db: Path, out: Path, during: Callable[[], None], at: float = 0.5) -> int:
    """Pin, stream `at` of the pages, run `during`, stream the rest; return the WAL end frame."""
    with SourceFiles(db) as files, closing(q.connect(db, 5)) as conn:
        pinned = stream.pin(conn, files)
        if pinned.index is not None:  # the parser against the whole checksum chain
            wal.verify_chain(files.fd("-wal"), pinned.header)
        pages = stream.PageStream(files, pinned)
        done = False
        with out.open("wb") as fh:
            while data := pages.read(pinned.page_size * 3):  # bounded by the page count
                fh.write(data)
                if not done and fh.tell() >= pages.size * at:
                    during()
                    done = True
        assert out.stat().st_size == pages.size
        q.rollback_quietly(conn)
        return pinned.header.max_frame


CHECKPOINT_ELSEWHERE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
print(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
"""


def test_the_read_lock_survives_reading_the_wal_files(tmp_path: Path) -> None:
    """While pinned and streaming, another *process* cannot truncate the WAL: reading the -shm,
    -wal and database files did not drop SQLite's POSIX locks (closing any descriptor of a
    file drops all of a process's locks on it, so ours stay open until the connection
    closes). Another process is needed: locks between connections of one process are
    SQLite's own bookkeeping and would hide the bug."""
    db = tmp_path / "src.db"
    writer = create(db, 4096, "NONE")
    apply(writer, 1, 40)
    writer.close()  # the last connection: the WAL is checkpointed and removed

    def truncate_elsewhere() -> str:
        return subprocess.run(
            [sys.executable, "-c", CHECKPOINT_ELSEWHERE, str(db)],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip

    with SourceFiles(db) as files, closing(q.connect(db, 5)) as conn:
        conn.execute("SELECT count(*) FROM log").fetchone()
        more = sqlite3.connect(db, isolation_level=None)  # frames in the WAL: slot i > 0
        apply(more, 41, 60)
        pinned = stream.pin(conn, files)
        assert pinned.index is not None and pinned.header.backfilled < pinned.header.max_frame
        pages = stream.PageStream(files, pinned)
        pages.read(4096)
        assert truncate_elsewhere() == "1"  # busy: our read lock holds
        assert Path(f"{db}-wal").stat().st_size > 0
        q.rollback_quietly(conn)
    assert truncate_elsewhere() == "0"  # the control: without the reader it succeeds
    more.close()


CHECKPOINTS = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"]


@pytest.mark.parametrize("mode", CHECKPOINTS)
@pytest.mark.parametrize(("page_size", "auto_vacuum"), [(1024, "NONE"), (65536, "FULL")])
def test_checkpoint_during_the_copy(
    tmp_path: Path, mode: str, page_size: int, auto_vacuum: str
) -> None:
    db, out = tmp_path / "src.db", tmp_path / "copy.db"
    writer = create(db, page_size, auto_vacuum)
    apply(writer, 1, 60)
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # part in the main file...
    apply(writer, 61, 120)  # ...part only in the WAL: the copy must merge both

    def during() -> None:
        apply(writer, 121, 180)
        writer.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        apply(writer, 181, 190)

    end_frame = stream_copy(db, out, during)
    assert end_frame > 0
    assert content(out) == (120, model(120))
    assert content(db) == (190, model(190))
    writer.close()


@pytest.mark.parametrize("page_size", [1024, 2048, 4096, 8192, 16384, 32768, 65536])
def test_page_sizes_grow_and_shrink(tmp_path: Path, page_size: int) -> None:
    """The file grows past the pinned size and shrinks below it (auto_vacuum=FULL) meanwhile."""
    db, out = tmp_path / "src.db", tmp_path / "copy.db"
    writer = create(db, page_size, "FULL")
    apply(writer, 1, 90)

    def during() -> None:
        writer.execute("INSERT INTO log(id, v) VALUES (10000000, zeroblob(400000))")  # grows
        writer.execute("DELETE FROM log WHERE id < 80 OR id = 10000000")  # shrinks
        writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    stream_copy(db, out, during, at=0.3)
    assert content(out) == (90, model(90))
    writer.close()


def test_wal_wrapped_around_before_the_copy(tmp_path: Path) -> None:
    """After a full checkpoint the next commit restarts the WAL at frame 1 with new salts;
    the frames after it are an older generation and must be ignored."""
    db, out = tmp_path / "src.db", tmp_path / "copy.db"
    writer = create(db, 4096, "NONE")
    apply(writer, 1, 100)
    assert writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0] == 0
    size_before = Path(f"{db}-wal").stat().st_size
    apply(writer, 101, 103)  # restart: frames 1.. rewritten, old frames still after them
    assert Path(f"{db}-wal").stat().st_size == size_before
    end_frame = stream_copy(db, out, lambda: apply(writer, 104, 110))
    assert 0 < end_frame < size_before // 4096 // 2
    assert content(out) == (103, model(103))
    writer.close()


def test_fully_checkpointed_wal_restarts_during_the_copy(tmp_path: Path) -> None:
    """Pinned with every frame in the main file (read-lock slot 0): the stream reads the main
    file alone, so a WAL restart and new frames during the copy cannot leak in."""
    db, out = tmp_path / "src.db", tmp_path / "copy.db"
    writer = create(db, 4096, "NONE")
    apply(writer, 1, 80)
    assert writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0] == 0

    def during() -> None:
        apply(writer, 81, 140)  # restarts the WAL (no reader holds a slot > 0)
        writer.execute("PRAGMA wal_checkpoint(FULL)").fetchone()

    stream_copy(db, out, during)
    assert content(out) == (80, model(80))
    writer.close()


def test_shm_mismatch_falls_back_to_copy_then_check(tmp_path: Path) -> None:
    """A WAL whose salts do not match the wal-index cannot be pinned exactly: the engine says
    so in the manifest and takes the copy-then-check path, whose result is still checked."""
    db = tmp_path / "src.db"
    writer = create(db, 4096, "NONE")
    apply(writer, 1, 30)
    with open(f"{db}-wal", "r+b") as fh:  # flip one salt byte (SQLite itself is not reading)
        fh.seek(16)
        byte = fh.read(1)
        fh.seek(16)
        fh.write(bytes([byte[0] ^ 0xFF]))
    target = SqliteTarget(name="t", engine="sqlite", path=str(db))
    outcome = ENGINE.backup(target, BackupContext(dest=tmp_path / "dest"))
    assert outcome.details["method"] == "raw"
    assert "WAL" in outcome.details["stream_skipped"]
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(
        [outcome.artifact.path.name, outcome.artifact.manifest_path.name]
    )
    writer.close()


def test_engine_stream_under_writer_and_checkpointer_processes(
    tmp_path: Path, sqlite_writer: Any
) -> None:
    """Real timing: a writer process commits every 2 ms, a checkpointer process runs every
    mode in turn while the engine streams; the restored copy is a consistent prefix."""
    db = tmp_path / "src.db"
    make_db(db, 6)
    writer = sqlite_writer(db, interval=0.002, busy_timeout=5)
    time.sleep(0.3)
    target = SqliteTarget(name="t", engine="sqlite", path=str(db))
    before = _max_id(db)
    # A separate process, as the writer: our backup closes its file descriptors at the end,
    # which would drop the POSIX locks of any other connection in this process.
    stop = tmp_path / "stop"
    checkpointer = subprocess.Popen(
        [sys.executable, "-c", CHECKPOINTER, str(db), str(stop)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        outcome = ENGINE.backup(target, BackupContext(dest=tmp_path / "dest"))
    finally:
        stop.touch()
        ran = checkpointer.communicate(timeout=30)[0].split()
    stats = writer.stop()
    assert ran  # checkpoints really ran while the engine streamed
    assert stats.errors == 0, stats.error_samples
    manifest = artifacts.read_manifest(outcome.artifact.path)
    assert manifest["method"] == "stream" and manifest["stream_skipped"] is None
    restored = tmp_path / "restored.db"
    ENGINE.restore(outcome.artifact.path, manifest, str(restored), force=False, options={})
    with closing(sqlite3.connect(restored)) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= before  # a prefix, in order
    assert manifest["row_counts"]["events"] == len(ids)


def _max_id(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT max(id) FROM events").fetchone()[0])


CHECKPOINTER = """
import os, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0.05)
modes = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"]
deadline, i = time.monotonic() + 30, 0
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    try:
        conn.execute(f"PRAGMA wal_checkpoint({modes[i % 4]})").fetchone()
        print(modes[i % 4], flush=True)
    except sqlite3.OperationalError:
        pass  # busy: a writer holds its lock right now; the next mode runs later
    i += 1
    time.sleep(0.01)
"""


@pytest.mark.skipif(
    not HAS_FINCORE or stream.cache_policy(1) != "noreuse",
    reason="needs fincore and Linux >= 6.3 (POSIX_FADV_NOREUSE)",
)
def test_streaming_leaves_the_cached_database_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The application's pages of its own database stay in memory after a backup: the stream
    # reads with NOREUSE instead of dropping what it read (which evicted them as well). The
    # database counts as large here (over a quarter of a 64 MiB machine), where it was dropped.
    monkeypatch.setattr(stream, "_ram", lambda: 64 << 20)
    db = tmp_path / "app.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.executemany("INSERT INTO t VALUES (randomblob(4000))", [()] * 8000)  # ~32 MiB
        conn.commit()
    db.read_bytes()  # cached, as a busy application's database is
    before = resident(db)
    assert before >= 0.9 * db.stat().st_size

    stream_copy(db, tmp_path / "copy.db", lambda: None)

    assert resident(db) >= 0.9 * before
