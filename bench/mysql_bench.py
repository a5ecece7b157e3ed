"""MySQL/MariaDB benchmark: safesnap's guarded lock and dump vs `mysqldump | gzip`.

A database of --size-gb (default 1) is generated quickly with INSERT ... SELECT from MariaDB's
sequence engine; a writer *process* commits one row every 5 ms throughout. For each method we
record wall time, artifact size and the writer's commit latency (p50/p99/max), plus for the
lock modes the lock wait/held time around a command "snapshot" that takes --snapshot-seconds.

Target (brief): writers blocked no longer than the snapshot request plus 100 ms.

    .venv/bin/python bench/mysql_bench.py --size-gb 1 --json-out /tmp/mysql_bench.json

Results and the machine go in docs/benchmarks.md (## MySQL / MariaDB).
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pymysql
from filelock import FileLock

from safesnap.config.plan import MysqlTarget
from safesnap.engines import BackupContext, get_engine

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "fixtures" / "mariadb_writer.py"
ROW_BYTES = 458  # stored bytes per `peers` row incl. index (measured: (data+index) / rows)


def admin(db: str | None = None) -> Any:
    return pymysql.connect(host="127.0.0.1", user="root", database=db, autocommit=True)


def generate(db: str, size_gb: float) -> dict[str, Any]:
    """Tracker-like table: one row per torrent peer; strings as the tracker stores them."""
    conn = admin()
    cur = conn.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    cur.execute(f"CREATE DATABASE `{db}`")
    cur.execute(f"USE `{db}`")
    cur.execute(
        "CREATE TABLE peers (id BIGINT AUTO_INCREMENT PRIMARY KEY, info_hash CHAR(40), "
        "peer_id CHAR(40), ip VARCHAR(45), port INT, uploaded BIGINT, downloaded BIGINT, "
        "`left` BIGINT, updated DATETIME, agent VARCHAR(200), KEY (info_hash)) ENGINE=InnoDB"
    )
    rows = int(size_gb * 1024**3 / ROW_BYTES)
    started = time.monotonic()
    batch = 250_000
    for offset in range(0, rows, batch):
        n = min(batch, rows - offset)
        cur.execute(
            "INSERT INTO peers (info_hash, peer_id, ip, port, uploaded, downloaded, `left`, "
            "updated, agent) SELECT SHA1(seq), MD5(seq), CONCAT('10.', seq % 250, '.', seq % 97,"
            " '.', seq % 13), seq % 65535, seq * 7, seq * 3, seq % 1000, NOW(), "
            f"CONCAT('qBittorrent/4.6.', seq % 9, ' ', REPEAT('x', 150)) FROM seq_1_to_{n}"
        )
    cur.execute("ANALYZE TABLE peers")  # refresh data_length, stale right after bulk inserts
    cur.fetchall()
    cur.execute(
        "SELECT SUM(data_length + index_length) FROM information_schema.tables "
        "WHERE table_schema = %s",
        (db,),
    )
    size = int(cur.fetchone()[0])
    conn.close()
    return {"rows": rows, "bytes": size, "generate_seconds": round(time.monotonic() - started, 1)}


def settle(limit: float = 180.0) -> float:
    """Wait (bounded) until InnoDB has flushed the bulk load: its background flushing stalled
    the writer for ~1 s in the baseline of a first run right after generating the data."""
    conn = admin()
    cur = conn.cursor()
    started = time.monotonic()
    while time.monotonic() - started < limit:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
        if int(cur.fetchone()[1]) < 100:
            break
        time.sleep(2)
    conn.close()
    return round(time.monotonic() - started, 1)


def existing(db: str) -> dict[str, Any] | None:
    conn = admin()
    cur = conn.cursor()
    cur.execute(
        "SELECT table_rows, data_length + index_length FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name = 'peers'",
        (db,),
    )
    row = cur.fetchone()
    conn.close()
    return {"rows": int(row[0]), "bytes": int(row[1]), "reused": True} if row else None


class Writer:
    def __init__(self, db: str, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), db, str(out), "--interval", "0.005",
             "--max-seconds", "900"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> list[tuple[float, float]]:
        self.proc.terminate()
        self.proc.wait(timeout=120)
        lines = self.out.read_text().split("\n")
        return [(float(a), float(b)) for a, b in (x.split() for x in lines if x.strip())]


def latency(commits: list[tuple[float, float]], t0: float, t1: float) -> dict[str, float]:
    values = sorted(e - s for s, e in commits if s <= t1 and e >= t0)
    if not values:
        return {}

    def pct(p: float) -> float:
        return round(values[min(len(values) - 1, int(len(values) * p))] * 1000, 1)

    return {"n": len(values), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0)}


def measured(db: str, tmp: Path, action: Any) -> dict[str, Any]:
    writer = Writer(db, tmp / f"w{time.monotonic_ns()}.txt")
    time.sleep(1.0)
    started = time.monotonic()
    facts = action() or {}
    ended = time.monotonic()
    time.sleep(1.0)
    commits = writer.stop()
    return {"wall_seconds": round(ended - started, 2), "writer": latency(commits, started, ended),
            **facts}  # fmt: skip


def baseline(_db: str) -> dict[str, Any]:
    time.sleep(5)
    return {}


def lock(db: str, mode: str, snapshot_seconds: float) -> dict[str, Any]:
    target = MysqlTarget(name="bench", databases=[db], lock_mode=mode)
    with get_engine("mysql").quiesce(target) as info:
        subprocess.run(["sleep", str(snapshot_seconds)], check=True)  # the "snapshot" command
    return {k: info[k] for k in ("lock_wait_seconds", "lock_held_seconds", "attempts", "binlog")}


def mysqldump_gzip(db: str, tmp: Path) -> dict[str, Any]:
    # What the tracker's deployer runs today (single transaction, gzip default level).
    out = tmp / "deployer.sql.gz"
    subprocess.run(
        f"mysqldump -h127.0.0.1 -uroot --single-transaction --quick {db} | gzip > {out}",
        shell=True, check=True,
    )  # fmt: skip
    size = out.stat().st_size
    out.unlink()
    return {"bytes": size}


def safesnap_dump(db: str, tmp: Path, compression: str) -> dict[str, Any]:
    target = MysqlTarget(name="bench", databases=[db])
    dest = tmp / f"ss-{compression}"
    outcome = get_engine("mysql").backup(target, BackupContext(dest=dest, compression=compression))
    info = outcome.artifact
    facts = {"bytes": info.bytes, "sql_bytes": info.source_bytes}
    facts["rows_counted"] = sum(sum(t.values()) for t in outcome.details["row_counts"].values())
    info.path.unlink()
    info.manifest_path.unlink()
    return facts


def machine() -> dict[str, Any]:
    conn = admin()
    cur = conn.cursor()
    cur.execute("SELECT VERSION()")
    version = cur.fetchone()[0]
    conn.close()

    def sh(cmd: str) -> str:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()

    return {"nproc": sh("nproc"), "mem": sh("free -h | awk '/Mem:/ {print $2}'"),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "mariadb": version, "dump_client": sh("mariadb-dump --version"),
            "kernel": platform.release()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--db", default="safesnap_bench")
    parser.add_argument("--snapshot-seconds", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="Keep the generated database.")
    parser.add_argument("--reuse", action="store_true", help="Use --db if it already exists.")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    db, snap = args.db, args.snapshot_seconds
    results: dict[str, Any] = {"machine": machine()}
    results["data"] = (args.reuse and existing(db)) or generate(db, args.size_gb)
    results["data"]["settle_seconds"] = settle()
    print(json.dumps(results, indent=1), flush=True)
    # Same lock as tests/fixtures/mariadb.py: no test run's global lock during our measurements.
    turn = FileLock(Path(tempfile.gettempdir()) / "safesnap-mariadb-tests.lock", timeout=1800)
    with turn, tempfile.TemporaryDirectory(prefix="safesnap-bench-") as name:
        tmp = Path(name)
        runs = {
            "baseline (writer alone, 5 s)": lambda: baseline(db),
            "lock ftwrl + 1 s snapshot": lambda: lock(db, "ftwrl", snap),
            "lock backup_stage + 1 s snapshot": lambda: lock(db, "backup_stage", snap),
            "mysqldump --single-transaction | gzip": lambda: mysqldump_gzip(db, tmp),
            "safesnap backup mysql (zstd)": lambda: safesnap_dump(db, tmp, "zstd"),
            "safesnap backup mysql (gzip)": lambda: safesnap_dump(db, tmp, "gzip"),
        }
        results["runs"] = {}
        for label, action in runs.items():
            results["runs"][label] = measured(db, tmp, action)
            print(label, json.dumps(results["runs"][label]), flush=True)
    if not args.keep:
        admin().cursor().execute(f"DROP DATABASE IF EXISTS `{db}`")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
