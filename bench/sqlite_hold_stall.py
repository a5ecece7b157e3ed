"""How long a SQLite writer (a separate process, WAL mode, committing every 5 ms) stalls while
safesnap holds the snapshot-time write lock: the cost of `hold_until_done` on SQLite targets.
Run: .venv/bin/python bench/sqlite_hold_stall.py (figures in docs/reference/providers.md)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safesnap.engines.sqlite.copy import hold_for_snapshot

WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30)
worst, end = 0.0, time.time() + float(sys.argv[2])
print("ready", flush=True)
while time.time() < end:
    t = time.perf_counter()
    conn.execute("insert into t values (1)")
    conn.commit()
    worst = max(worst, time.perf_counter() - t)
    time.sleep(0.005)
print(round(worst, 3))
"""


def main() -> None:
    for hold in (2.0, 0.5, 2.0):
        db = Path(tempfile.mkdtemp()) / "t.db"  # a fresh database each time: see the docs
        with sqlite3.connect(db) as conn:
            conn.execute("pragma journal_mode=wal")
            conn.execute("create table t(x)")
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(hold + 2)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        writer.stdout.readline()  # the writer is committing now
        time.sleep(0.5)
        with hold_for_snapshot(db, busy_timeout=10, max_hold_seconds=30) as facts:
            time.sleep(hold)
        worst = writer.communicate()[0].strip()
        print(
            f"hold {hold} s: lock held {facts['lock_held_seconds']} s, "
            f"writer worst commit {worst} s"
        )


if __name__ == "__main__":
    main()
