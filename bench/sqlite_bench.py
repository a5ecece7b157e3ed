#!/usr/bin/env python3
"""Benchmark: copying a live SQLite database while another process commits every 5 ms.

Compares, on the same database in the same run:
  cp                  unsafe while in use; the speed limit
  cp+sync             `cp FILE OUT && sync OUT` (the copy made durable; issue #13's reference)
  zstd+sync           `zstd -3 -T1 FILE -o OUT && sync OUT`: the fastest unsafe single pass
                      (issue #13's reference for the 1.2x / 1.1x targets)
  cp+zstd             cp, then `zstd -T1` at safesnap's default level (the 1.5x target's base)
  safesnap            `safesnap backup sqlite` (raw route + quick_check + zstd), a separate process
  safesnap-t2         the same with `--threads 2` (two zstd workers; compression_threads = 2)
  safesnap-nice0      `safesnap --nice 0`: without lowering its CPU priority (the default is 10)
  safesnap-base       `safesnap` from an earlier checkout (`--base-src SRC:PROVIDERS`)
  vacuum_into         VACUUM INTO with synchronous=OFF on the copying connection
  backup_api          Python Connection.backup(pages=-1): one step
  sqlite3_cli         `sqlite3 db ".backup out"` (the tracker live demo's method), capped

For each: completed?, wall seconds, writer p99 latency before (baseline) and during, writer max
during, writer errors during, output bytes; for safesnap also its peak RSS (getrusage of the
process itself) and for every method the peak extra space on the destination (sampled every
20 ms). `--shape torrust` (the default) makes a Torrust-tracker-shaped database: `torrents`
rows with a 20-byte info_hash and `completed` mostly 0 (unique index on info_hash), small
`whitelist`, `keys` and `torrent_aggregate_metrics` tables, and the writer's `events` table;
`--shape bulk` the older half-random rows. Run from the repository root:

    .venv/bin/python bench/sqlite_bench.py                      # 1 GiB, WAL and rollback
    .venv/bin/python bench/sqlite_bench.py --size-mb 5120 --modes wal --methods safesnap
    .venv/bin/python bench/sqlite_bench.py --size-mb 300 --modes wal \
        --methods cp+sync,zstd+sync,safesnap                      # issue #13's comparison
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.fixtures.sqlite_writer import SCHEMA, Writer, make_db, percentile  # noqa: E402

from safesnap.artifacts.codecs import DEFAULT_LEVELS  # noqa: E402

METHODS = [
    "cp",
    "cp+sync",
    "zstd+sync",
    "cp+zstd",
    "safesnap",
    "safesnap-t2",
    "safesnap-nice0",
    "vacuum_into",
    "backup_api",
    "sqlite3_cli",
]
RSS_WRAPPER = """
import resource, sys
from safesnap.cli.app import main
try:
    main(sys.argv[1:])
finally:
    sys.stderr.write("PEAK_RSS_KB=%d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_cp(db: Path, out: Path, _cap: float) -> dict[str, Any]:
    subprocess.run(["cp", str(db), str(out)], check=True)
    return {"completed": True, "bytes": out.stat().st_size}


def run_cp_sync(db: Path, out: Path, _cap: float) -> dict[str, Any]:
    subprocess.run(["cp", str(db), str(out)], check=True)
    subprocess.run(["sync", str(out)], check=True)  # fsync of that one file (coreutils >= 8.24)
    return {"completed": True, "bytes": out.stat().st_size}


def run_zstd_sync(db: Path, out: Path, _cap: float) -> dict[str, Any]:
    level = DEFAULT_LEVELS["zstd"]
    zst = Path(f"{out}.zst")
    # From stdin: zstd refuses a FILE that grows while it reads it (the writer appends), with
    # "Incomplete read" (error 27); stdin has no size to check, the work is the same.
    with db.open("rb") as src:
        subprocess.run(["zstd", "-q", f"-{level}", "-T1", "-o", str(zst)], stdin=src, check=True)
    subprocess.run(["sync", str(zst)], check=True)
    return {"completed": True, "bytes": zst.stat().st_size}


def run_cp_zstd(db: Path, out: Path, _cap: float) -> dict[str, Any]:
    subprocess.run(["cp", str(db), str(out)], check=True)
    level = DEFAULT_LEVELS["zstd"]
    subprocess.run(["zstd", "-q", f"-{level}", "-T1", "--rm", str(out)], check=True)
    return {"completed": True, "bytes": Path(f"{out}.zst").stat().st_size}


BASE_SRC: list[str] = []  # --base-src: PYTHONPATH entries of an earlier checkout


def run_safesnap(
    db: Path, out: Path, _cap: float, threads: int = 1, nice: int = 10, base: bool = False
) -> dict[str, Any]:
    args = [sys.executable, "-c", RSS_WRAPPER, "--nice", str(nice), "backup", "sqlite", str(db),
            "--dest", str(out), "--json"]  # fmt: skip
    args += ["--threads", str(threads)] if threads != 1 else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(BASE_SRC)} if base else None
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        return {"completed": False, "error": proc.stdout.strip() or proc.stderr[-500:]}
    rss = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_RSS_KB=")]
    data = json.loads(proc.stdout)
    return {"completed": True, "bytes": data["bytes"], "peak_rss_mb": int(rss[0][12:]) / 1024,
            "journal_mode": data["journal_mode"], "integrity_result": data["integrity_result"],
            "writer_lockout_seconds": data["writer_lockout_seconds"],
            "copy_seconds": data.get("copy_seconds"), "path": data.get("method")}  # fmt: skip


def run_vacuum_into(db: Path, out: Path, _cap: float) -> dict[str, Any]:
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("VACUUM INTO ?", (str(out),))
    conn.close()
    return {"completed": True, "bytes": out.stat().st_size}


def run_backup_api(db: Path, out: Path, _cap: float) -> dict[str, Any]:
    src = sqlite3.connect(db, timeout=30)
    dst = sqlite3.connect(out)
    dst.execute("PRAGMA synchronous=OFF")
    src.backup(dst, pages=-1)
    dst.close()
    src.close()
    return {"completed": True, "bytes": out.stat().st_size}


def run_sqlite3_cli(db: Path, out: Path, cap: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(["sqlite3", "-cmd", ".timeout 5000", str(db), f".backup {out}"],
                              capture_output=True,
                              text=True, check=False, timeout=cap)  # fmt: skip
    except subprocess.TimeoutExpired:
        done = out.stat().st_size if out.exists() else 0
        return {"completed": False, "error": f"killed after {cap:g} s", "bytes": done}
    if proc.returncode != 0:
        return {"completed": False, "error": proc.stderr.strip()[:200]}
    return {"completed": True, "bytes": out.stat().st_size}


RUNNERS: dict[str, Callable[[Path, Path, float], dict[str, Any]]] = {
    "cp": run_cp, "cp+sync": run_cp_sync, "zstd+sync": run_zstd_sync, "cp+zstd": run_cp_zstd,
    "safesnap": run_safesnap,
    "safesnap-t2": lambda db, out, cap: run_safesnap(db, out, cap, threads=2),
    "safesnap-nice0": lambda db, out, cap: run_safesnap(db, out, cap, nice=0),
    "safesnap-base": lambda db, out, cap: run_safesnap(db, out, cap, base=True),
    "vacuum_into": run_vacuum_into, "backup_api": run_backup_api, "sqlite3_cli": run_sqlite3_cli,
}  # fmt: skip


def measure(method: str, db: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = work / f"out-{method}"
    writer = Writer(db, work / f"writer-{method}.json", interval=args.interval,
                    busy_timeout=args.writer_busy_timeout, max_seconds=args.cap + 120)  # fmt: skip
    time.sleep(args.baseline)
    space = SpaceSampler(work, exclude={db.name, f"{db.name}-wal", f"{db.name}-shm"})
    start_wall, start = time.time(), time.perf_counter()
    try:
        result = RUNNERS[method](db, out, args.cap)
    except (OSError, sqlite3.Error, subprocess.CalledProcessError) as exc:
        result = {"completed": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    seconds = time.perf_counter() - start
    result["peak_dest_mb"] = round(space.stop() / 2**20, 1)
    end_wall = time.time()
    time.sleep(0.5)
    stats = writer.stop()
    during = stats.latencies(start_wall, end_wall)
    errors_during = stats.errors  # the writer only ran around this one method
    _remove(out)
    return {"method": method, "seconds": round(seconds, 2), **result,
            "writer_p99_before_ms": _ms(percentile(stats.latencies(None, start_wall), 99)),
            "writer_p99_during_ms": _ms(percentile(during, 99)),
            "writer_max_during_ms": _ms(max(during, default=float("nan"))),
            "writer_commits_during": len(during), "writer_errors": errors_during,
            "writer_error_samples": stats.error_samples[:3]}  # fmt: skip


class SpaceSampler:
    """Peak bytes (allocated blocks) of everything under `root` but the source, every 20 ms."""

    def __init__(self, root: Path, exclude: set[str]) -> None:
        self.root, self.exclude, self.peak = root, exclude, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):  # bounded: stops when the method ends
            self.peak = max(self.peak, self._used())

    def _used(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name in self.exclude or name.startswith("writer-"):
                    continue
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except FileNotFoundError:
                    continue  # a temp file renamed or removed meanwhile
        return total

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self._used())


def _ms(value: float) -> float:
    return round(value * 1000, 1)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    for p in (path, Path(f"{path}.zst")):
        p.unlink(missing_ok=True)


def machine() -> dict[str, Any]:
    def cmd(*c: str) -> str:
        try:
            return subprocess.run(c, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "n/a"

    return {"nproc": os.cpu_count(), "free_h": cmd("free", "-h").splitlines()[1:2],
            "python": platform.python_version(), "sqlite_lib": sqlite3.sqlite_version,
            "sqlite3_cli": cmd("sqlite3", "--version")[:20], "zstd": cmd("zstd", "-V"),
            "kernel": platform.release(), "loadavg_at_end": os.getloadavg()}  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    cols = ["mode", "method", "path", "completed", "seconds", "bytes", "writer_p99_before_ms",
            "writer_p99_during_ms", "writer_max_during_ms", "writer_errors", "peak_rss_mb",
            "peak_dest_mb", "writer_lockout_seconds", "error"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


TORRUST_SCHEMA = """
CREATE TABLE whitelist (id INTEGER PRIMARY KEY AUTOINCREMENT, info_hash BLOB NOT NULL UNIQUE);
CREATE TABLE torrents (id INTEGER PRIMARY KEY AUTOINCREMENT, info_hash BLOB NOT NULL,
                       completed INTEGER DEFAULT 0 NOT NULL);
CREATE TABLE keys (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,
                   valid_until INTEGER);
CREATE TABLE torrent_aggregate_metrics (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                        metric_name TEXT NOT NULL UNIQUE, value INTEGER NOT NULL);
"""
TORRUST_ROW_BYTES = 60  # torrents row + its info_hash index entry (70 gave 257 MiB for 300)


def make_torrust_db(path: Path, mb: float, journal_mode: str = "wal") -> int:
    """A tracker-shaped database of about `mb` MiB; return the number of torrents rows.

    The unique index on info_hash is built after the bulk insert (a sort, not 10^8 random
    b-tree inserts); 1 in 20 torrents has a non-zero `completed`, as on a public tracker.
    """
    rows = max(1, int(mb * 2**20 / TORRUST_ROW_BYTES))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB for the index sort
        # Built without a journal, the mode set at the end: in WAL mode the one big transaction
        # would go through the WAL first and be written twice.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.executescript(TORRUST_SCHEMA + SCHEMA)
        conn.execute("BEGIN")
        for done in range(0, rows, 1_000_000):  # bounded: batches of 1M rows
            conn.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<?) "
                "INSERT INTO torrents(info_hash, completed) SELECT randomblob(20), "
                "CASE WHEN abs(random()) % 20 = 0 THEN abs(random()) % 5000 ELSE 0 END FROM c",
                (min(1_000_000, rows - done),),
            )
        conn.execute("CREATE UNIQUE INDEX torrents_info_hash ON torrents(info_hash)")
        conn.execute("INSERT INTO whitelist(info_hash) SELECT info_hash FROM torrents LIMIT 1000")
        conn.execute("INSERT INTO keys(key, valid_until) SELECT hex(randomblob(16)), "
                     "1800000000 FROM torrents LIMIT 100")  # fmt: skip
        conn.execute("INSERT INTO torrent_aggregate_metrics(metric_name, value) "
                     "VALUES ('torrents_downloads_total', 12345)")  # fmt: skip
        conn.execute("COMMIT")
        assert conn.execute(f"PRAGMA journal_mode={journal_mode}").fetchone()[0] == journal_mode
    finally:
        conn.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # as make_db: the writer's first fsync must not pay for the whole file
    finally:
        os.close(fd)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=float, default=1024)
    p.add_argument("--modes", default="wal,delete", help="comma list: wal,delete")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--interval", type=float, default=0.005, help="writer commit interval (s)")
    p.add_argument("--writer-busy-timeout", type=float, default=5.0)
    p.add_argument("--baseline", type=float, default=3.0, help="writer seconds before each copy")
    p.add_argument("--cap", type=float, default=120.0, help="time cap for sqlite3 .backup (s)")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--shape", choices=["torrust", "bulk"], default="torrust")
    p.add_argument("--make-only", type=Path, default=None, help="only create the database here")
    p.add_argument("--db", type=Path, default=None, help="use this database (one mode)")
    p.add_argument(
        "--base-src",
        default=None,
        help="SRC:PROVIDERS of an earlier checkout, for the safesnap-base method",
    )
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args()
    BASE_SRC.extend(args.base_src.split(":") if args.base_src else [])
    make = make_torrust_db if args.shape == "torrust" else make_db
    if args.make_only:
        make(args.make_only, args.size_mb, args.modes.split(",")[0])
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sqlite-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        for mode in args.modes.split(","):
            db = args.db or work / f"bench-{mode}.db"
            t0 = time.perf_counter()
            if args.db is None:
                make(db, args.size_mb, mode)
            print(f"# {mode}: made {db.stat().st_size / 2**20:.0f} MiB in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip
            for method in args.methods.split(","):
                row = {"mode": mode, **measure(method, db, work, args)}
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
            if args.db is None:
                db.unlink()
    report = {"machine": machine(), "size_mb": args.size_mb, "interval": args.interval,
              "rows": rows}  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["machine"]))
    print(table(rows))


if __name__ == "__main__":
    main()
