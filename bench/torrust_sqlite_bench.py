"""Copy and compression tools on a Torrust-shaped SQLite database.

The tracker's SQLite schema (torrust-tracker, packages/tracker-core/src/databases/driver/
sqlite.rs): `torrents(id, info_hash TEXT UNIQUE, completed INTEGER)`, `whitelist(id, info_hash)`,
`keys(id, key, valid_until)`, `torrent_aggregate_metrics(id, metric_name, value)`. info_hash is
a 20-byte SHA-1 stored as 40 hex characters; `completed` is a small counter, 0 for most rows
(--zero-share). Rows are inserted in random hash order, as the tracker inserts them, so the
UNIQUE index is as fragmented as in production. Production (torrust-tracker issue #1651): 17 GB,
161 M torrents rows, i.e. ~105 bytes per row; this generator gives the same bytes per row.

Phases (each row records wall seconds, CPU seconds of the child processes, bytes, load average):
  compress  every codec/level on a database of --compress-rows (bounded: ~100 MB by default),
            compressed and decompressed by the CLI tools, single-threaded
  copy      on a database of --rows (no writer): cp, rsync, sqlite3 .backup, VACUUM INTO,
            safesnap backup sqlite, and compressing during vs after the copy
  writer    sqlite3 .backup and safesnap while a tracker-like writer process commits every 5 ms
            (an UPDATE of `completed` and an INSERT of a new torrent per transaction)

    .venv/bin/python bench/torrust_sqlite_bench.py --phases compress
    .venv/bin/python bench/torrust_sqlite_bench.py --phases copy,writer --rows 20000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS whitelist (id INTEGER PRIMARY KEY AUTOINCREMENT,
    info_hash TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS keys (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,
    valid_until INTEGER);
CREATE TABLE IF NOT EXISTS torrents (id INTEGER PRIMARY KEY AUTOINCREMENT,
    info_hash TEXT NOT NULL UNIQUE, completed INTEGER DEFAULT 0 NOT NULL);
CREATE TABLE IF NOT EXISTS torrent_aggregate_metrics (id INTEGER PRIMARY KEY AUTOINCREMENT,
    metric_name TEXT NOT NULL UNIQUE, value INTEGER DEFAULT 0 NOT NULL);
"""
BATCH = 1_000_000


def make_db(path: Path, rows: int, zero_share: float, journal_mode: str = "delete") -> float:
    """Create the database; return seconds taken. Bounded: batches of BATCH rows."""
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # test data: speed over durability
    conn.execute("PRAGMA cache_size=-1500000")  # 1.5 GB: the random-order index stays cached
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    conn.executescript(SCHEMA)
    zero_pct = int(zero_share * 100)
    for done in range(0, rows, BATCH):
        conn.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<?) "
            "INSERT INTO torrents(info_hash, completed) SELECT lower(hex(randomblob(20))), "
            "CASE WHEN abs(random()) % 100 < ? THEN 0 ELSE 1 + abs(random() % 40) END FROM c",
            (min(BATCH, rows - done), zero_pct),
        )
    n_white = min(30_076, rows // 100 + 1)  # production: 30,076 whitelist rows, 10 keys
    conn.execute(
        "INSERT INTO whitelist(info_hash) SELECT info_hash FROM torrents ORDER BY random() LIMIT ?",
        (n_white,),
    )
    conn.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<10) "
        "INSERT INTO keys(key, valid_until) SELECT hex(randomblob(16)), 1800000000 + x FROM c"
    )
    conn.execute(
        "INSERT INTO torrent_aggregate_metrics(metric_name, value) "
        "SELECT 'torrents_downloads_total', sum(completed) FROM torrents"
    )
    conn.close()
    fd = os.open(path, os.O_RDONLY)  # flush now, so no later measurement pays for it
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - started


def timed(cmd: str) -> tuple[float, float]:
    """Run a shell command; (wall seconds, CPU seconds of its processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def drop_caches_of(path: Path) -> None:
    """Warm the source in the page cache, so every method starts from the same state."""
    with path.open("rb") as fh, open(os.devnull, "wb") as null:
        shutil.copyfileobj(fh, null, 8 << 20)


def row(what: str, wall: float, cpu: float, out_bytes: int, src_bytes: int, **extra: Any) -> dict:
    r = {"what": what, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "bytes": out_bytes,
         "ratio": round(out_bytes / src_bytes, 3), "MBps": round(src_bytes / 1e6 / wall, 1),
         "load1": round(os.getloadavg()[0], 2), **extra}  # fmt: skip
    print(json.dumps(r), flush=True)
    return r


CODECS = [
    ("gzip -1", "gzip -1 -c", "gzip -dc"),
    ("gzip -6", "gzip -6 -c", "gzip -dc"),
    ("gzip -9", "gzip -9 -c", "gzip -dc"),
    ("bzip2 -1", "bzip2 -1 -c", "bzip2 -dc"),
    ("bzip2 -9", "bzip2 -9 -c", "bzip2 -dc"),
    ("xz -1", "xz -1 -T1 -c", "xz -dc"),
    ("xz -6", "xz -6 -T1 -c", "xz -dc"),
    ("zstd -1", "zstd -q -1 -T1 -c", "zstd -q -dc"),
    ("zstd -3", "zstd -q -3 -T1 -c", "zstd -q -dc"),
    ("zstd -9", "zstd -q -9 -T1 -c", "zstd -q -dc"),
    ("zstd -19", "zstd -q -19 -T1 -c", "zstd -q -dc"),
    # info_hash is stored twice (row + UNIQUE index), far apart in the file: only a window as
    # large as the database finds the second copy (zstd's default at -3 is 2 MiB).
    ("zstd -3 --long=30", "zstd -q -3 --long=30 -T1 -c", "zstd -q --long=30 -dc"),
    ("zstd -19 --long=30", "zstd -q -19 --long=30 -T1 -c", "zstd -q --long=30 -dc"),
]


def phase_compress(work: Path, args: argparse.Namespace) -> list[dict]:
    db = work / "compress.db"
    made = make_db(db, args.compress_rows, args.zero_share)
    size = db.stat().st_size
    print(f"# compress: {args.compress_rows} rows, {size} bytes, made in {made:.1f} s", flush=True)
    drop_caches_of(db)
    out, rows = work / "c.out", []
    wanted = args.codecs.split(",") if args.codecs else [c[0] for c in CODECS]
    for name, comp, decomp in (c for c in CODECS if c[0] in wanted):  # bounded: fixed list
        wall, cpu = timed(f"{comp} < {db} > {out}")
        dwall, _ = timed(f"{decomp} < {out} > /dev/null")
        rows.append(row(name, wall, cpu, out.stat().st_size, size, decompress_s=round(dwall, 2)))
        out.unlink()
    db.unlink()
    return rows


def safesnap(db: Path, dest: Path, *extra: str) -> dict[str, Any]:
    cmd = [str(Path(sys.executable).parent / "safesnap"), "backup", "sqlite", str(db),
           "--dest", str(dest), "--json", *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-1000:] + proc.stderr[-1000:])
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def phase_copy(work: Path, db: Path) -> list[dict]:
    size = db.stat().st_size
    out, dest = work / "copy.out", work / "dest"
    ss = f"{Path(sys.executable).parent / 'safesnap'} backup sqlite {db} --dest {dest} --json"
    methods = [
        ("cp (unsafe while in use)", f"cp {db} {out}"),
        ("rsync --whole-file (unsafe while in use)", f"rsync --whole-file {db} {out}"),
        ("sqlite3 .backup", f"sqlite3 {db} '.backup {out}'"),
        ("VACUUM INTO", f"sqlite3 {db} \"VACUUM INTO '{out}'\""),
        ("after: cp, then zstd -3 of the copy",
         f"cp {db} {out}.raw && zstd -q -3 -T1 --rm {out}.raw -o {out}"),
        ("during: zstd -3 reading the live file (unsafe)", f"zstd -q -3 -T1 -c < {db} > {out}"),
        ("during: zstd -3 --long=30 reading the live file (unsafe)",
         f"zstd -q -3 --long=30 -T1 -c < {db} > {out}"),
        ("after: sqlite3 .backup, then zstd -3",
         f"sqlite3 {db} '.backup {out}.raw' && zstd -q -3 -T1 --rm {out}.raw -o {out}"),
        ("during: sqlite3 .dump | zstd -3 (SQL text)",
         f"sqlite3 {db} .dump | zstd -q -3 -T1 > {out}"),
        ("safesnap backup sqlite (raw copy, quick_check, zstd -3)", f"{ss} > {work / 'ss.json'}"),
    ]  # fmt: skip
    rows = []
    for name, cmd in methods:  # bounded: fixed list
        drop_caches_of(db)
        wall, cpu = timed(cmd)
        if name.startswith("safesnap"):
            data = json.loads((work / "ss.json").read_text())
            out_bytes = int(data["bytes"])
            extra = {"copy_seconds": data.get("copy_seconds"), "integrity": data.get(
                "integrity_result")}  # fmt: skip
            shutil.rmtree(dest)
        else:
            out_bytes, extra = out.stat().st_size, {}
            out.unlink()
        rows.append(row(name, wall, cpu, out_bytes, size, **extra))
    return rows


WRITER = r"""
import json, random, sqlite3, sys, time, signal
db, out, interval, cap = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
stop = [False]
signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
conn = sqlite3.connect(db, isolation_level=None, timeout=5)
n = conn.execute("SELECT max(id) FROM torrents").fetchone()[0]
lat, errors = [], 0
print("ready", flush=True)
deadline = time.monotonic() + cap
while not stop[0] and time.monotonic() < deadline:
    t = time.monotonic()
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE torrents SET completed = completed + 1 WHERE id = ?",
                     (random.randint(1, n),))
        conn.execute("INSERT OR IGNORE INTO torrents(info_hash) "
                     "VALUES (lower(hex(randomblob(20))))")
        conn.execute("COMMIT")
        lat.append((time.time(), time.monotonic() - t))
    except sqlite3.OperationalError:
        errors += 1
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    time.sleep(max(0.0, interval - (time.monotonic() - t)))
json.dump({"lat": lat, "errors": errors}, open(out, "w"))
"""


def with_writer(db: Path, work: Path, cmd: str, cap: float) -> dict[str, Any]:
    log = work / "writer.json"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(log), "0.005",
                             str(cap + 60)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(3)
    t0 = time.time()
    try:
        subprocess.run(["bash", "-c", cmd], check=True, timeout=cap, capture_output=True)
        done, err = True, ""
    except subprocess.TimeoutExpired:
        done, err = False, f"stopped after {cap:g} s"
    except subprocess.CalledProcessError as exc:
        done, err = False, (exc.stdout or b"").decode()[-300:] + (exc.stderr or b"").decode()[-300:]
    t1 = time.time()
    time.sleep(1)
    proc.terminate()
    proc.wait(timeout=60)
    data = json.loads(log.read_text())
    before = sorted(d for t, d in data["lat"] if t < t0)
    during = sorted(d for t, d in data["lat"] if t0 <= t <= t1)

    def p99(v: list[float]) -> float | None:
        return round(v[min(len(v) - 1, int(len(v) * 0.99))] * 1000, 1) if v else None

    return {"completed": done, "error": err.strip(), "wall_s": round(t1 - t0, 2),
            "writer_p99_before_ms": p99(before), "writer_p99_during_ms": p99(during),
            "writer_max_during_ms": round(max(during) * 1000, 1) if during else None,
            "writer_commits_during": len(during), "writer_errors": data["errors"],
            "load1": round(os.getloadavg()[0], 2)}  # fmt: skip


def phase_writer(work: Path, args: argparse.Namespace, db: Path) -> list[dict]:
    out, dest = work / "w.out", work / "wdest"
    ss = f"{Path(sys.executable).parent / 'safesnap'} backup sqlite {db} --dest {dest} --json"
    rows = []
    for mode in args.writer_modes.split(","):
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute(f"PRAGMA journal_mode={mode}")
        conn.close()
        for name, cmd in (("sqlite3 .backup", f"sqlite3 -cmd '.timeout 5000' {db} '.backup {out}'"),
                          ("safesnap backup sqlite", f"{ss} > {work / 'ssw.json'}")):  # fmt: skip
            drop_caches_of(db)
            r = {"mode": mode, "what": name, **with_writer(db, work, cmd, args.cap)}
            r["bytes_written"] = out.stat().st_size if out.exists() else None
            print(json.dumps(r), flush=True)
            rows.append(r)
            out.unlink(missing_ok=True)
            shutil.rmtree(dest, ignore_errors=True)
    return rows


def machine() -> dict[str, Any]:
    def sh(c: str) -> str:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()

    return {"nproc": os.cpu_count(), "mem": sh("free -h | awk '/Mem:/ {print $2}'"),
            "kernel": platform.release(), "python": platform.python_version(),
            "sqlite_lib": sqlite3.sqlite_version, "sqlite3_cli": sh("sqlite3 --version")[:20],
            "gzip": sh("gzip --version | head -1"), "bzip2": sh("bzip2 --help 2>&1 | head -1"),
            "xz": sh("xz --version | head -1"), "zstd": sh("zstd -V"),
            "rsync": sh("rsync --version | head -1"), "fs": sh("df -T /tmp | tail -1")}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--phases", default="compress,copy,writer")
    p.add_argument("--rows", type=int, default=10_000_000, help="copy/writer database rows")
    p.add_argument("--compress-rows", type=int, default=1_000_000)
    p.add_argument("--codecs", default="", help="comma list of CODECS names (default: all)")
    p.add_argument("--zero-share", type=float, default=0.9, help="share of completed = 0")
    p.add_argument("--writer-modes", default="delete,wal")
    p.add_argument("--cap", type=float, default=60.0, help="time cap per run under the writer (s)")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep-db", type=Path, default=None, help="copy the big database here")
    p.add_argument("--reuse-db", type=Path, default=None, help="start from a copy of this database")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args()
    phases = args.phases.split(",")
    report: dict[str, Any] = {"machine": machine(), "args": vars(args) | {"workdir": None}}
    print(json.dumps(report, default=str), flush=True)
    with tempfile.TemporaryDirectory(prefix="torrust-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        if "compress" in phases:
            report["compress"] = phase_compress(work, args)
        if "copy" in phases or "writer" in phases:
            db = work / "tracker.db"
            if args.reuse_db:  # a database kept by an earlier run (--keep-db): same data
                shutil.copyfile(args.reuse_db, db)
                made = 0.0
            else:
                made = make_db(db, args.rows, args.zero_share)
            report["db"] = {"rows": args.rows, "bytes": db.stat().st_size, "make_s": round(made),
                            "reused": str(args.reuse_db)}  # fmt: skip
            print(json.dumps(report["db"]), flush=True)
            if "copy" in phases:
                report["copy"] = phase_copy(work, db)
            if args.keep_db:
                shutil.copyfile(db, args.keep_db)
            if "writer" in phases:
                report["writer"] = phase_writer(work, args, db)
    report["load_at_end"] = os.getloadavg()
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
