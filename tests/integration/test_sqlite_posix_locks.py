"""POSIX advisory locks are per process and per file: closing ANY descriptor of a database
file drops every lock the process holds on it, including the ones SQLite's own connection
holds (sqlite.org/howtocorrupt.html, section 2.2). A quiesce or copy that opened and closed
its own descriptor of a live database while its connection held a lock let writers in and,
held again in the same process, corrupted the database ("database disk image is malformed").
These tests quiesce and copy a live WAL database repeatedly in one process, with a writer in
another process that also closes and reopens its connection (a close runs SQLite's
checkpoint-and-delete-WAL when it believes it is alone), and check that the writer was
blocked every time and that the database and the copies stay intact.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from safesnap.engines.sqlite.copy import hold_for_snapshot

# Commits every 5 ms for `seconds`, reopening its connection every 20 commits; prints the
# number of commits and its worst commit time. Bounded by the time given.
WRITER = """
import sqlite3, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
commits, worst, conn = 0, 0.0, sqlite3.connect(path, timeout=30)
print("ready", flush=True)
while time.monotonic() < end:
    t = time.perf_counter()
    conn.execute("insert into t(v) values (?)", (commits,))
    conn.commit()
    worst = max(worst, time.perf_counter() - t)
    commits += 1
    if commits % 20 == 0:
        conn.close()
        conn = sqlite3.connect(path, timeout=30)
    time.sleep(0.005)
conn.close()
print(commits, round(worst, 3))
"""

HOLD = 0.4


def make_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("pragma journal_mode=wal")
        conn.execute("create table t(id integer primary key, v integer)")
    conn.close()


def start_writer(db: Path, seconds: float) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    return writer


def finish_writer(writer: subprocess.Popen[str]) -> tuple[int, float]:
    out, _ = writer.communicate(timeout=30)
    commits, worst = out.split()
    return int(commits), float(worst)


def test_repeated_holds_in_one_process_block_the_writer_each_time_and_corrupt_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.db"
    make_db(db)
    total = 0
    for _ in range(3):  # the fault showed from the second hold in the same process on
        writer = start_writer(db, HOLD + 1.2)
        time.sleep(0.3)
        with hold_for_snapshot(db, busy_timeout=10, max_hold_seconds=30):
            time.sleep(HOLD)
        commits, worst = finish_writer(writer)
        total += commits
        assert worst >= HOLD * 0.8, f"the writer was not blocked by the hold (worst {worst} s)"
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select count(*) from t").fetchone()[0] == total
    conn.close()


# Opens its own connection, reads, closes. If it is the only process holding the database
# file's SHARED lock, its close checkpoints and deletes the WAL (SQLite's sqlite3WalClose).
LAST_READER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=5)
print(conn.execute("select count(*) from t").fetchone()[0])
conn.close()
"""


def test_a_hold_keeps_its_shared_lock_so_another_process_closing_cannot_delete_the_wal(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.db"
    make_db(db)
    commits, _ = finish_writer(start_writer(db, 0.3))
    wal = db.with_name(db.name + "-wal")
    with hold_for_snapshot(db, busy_timeout=10, max_hold_seconds=30):
        assert wal.exists()  # the hold's own connection opened it
        out = subprocess.run(
            [sys.executable, "-c", LAST_READER, str(db)],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert int(out.stdout) == commits
        # Our connection still has the database open: a close elsewhere must not think it
        # is the last one and remove the WAL from under us.
        assert wal.exists(), "the hold lost its SHARED lock: another process deleted the WAL"
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select count(*) from t").fetchone()[0] == commits
    conn.close()


def test_the_raw_copy_keeps_its_shared_lock_while_it_copies_the_wal(tmp_path: Path) -> None:
    """The copy-then-check path (rollback mode, and WAL when the stream cannot pin): when the
    application closes its last connection while the copy reads the WAL, it must still see
    our connection and leave the WAL alone."""
    from safesnap.engines.sqlite.copy import raw_copy

    db = tmp_path / "live.db"
    make_db(db)
    # The application: one connection held open (so the WAL outlives the writer below) until
    # it is told to leave, then its close is the last one it knows of.
    app = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('select 1 from t').fetchall(); print('ready', flush=True); "
         "sys.stdin.read(); c.close()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert app.stdout is not None and app.stdout.readline().strip() == "ready"
    commits, _ = finish_writer(start_writer(db, 0.3))
    wal = db.with_name(db.name + "-wal")
    main_size = db.stat().st_size
    assert wal.stat().st_size > 0
    seen: list[bool] = []

    def during_wal_copy(done: int) -> None:
        if done > main_size and not seen:
            app.communicate("", timeout=30)  # the application closes its connection now
            seen.append(wal.exists())

    result = raw_copy(db, tmp_path / "copy.db", busy_timeout=10, progress=during_wal_copy)
    assert result.journal_mode == "wal"
    assert seen == [True], "the copy lost its SHARED lock: the application deleted the WAL"
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select count(*) from t").fetchone()[0] == commits
    conn.close()
