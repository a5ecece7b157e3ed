#!/usr/bin/env python3
"""Benchmark: copying a live SQLite database while another process commits every 5 ms.

Compares, on the same database in the same run:
  cp                  unsafe while in use; the speed limit
  cp+zstd             cp, then `zstd -T1` at safesnap's default level (the 1.5x target's base)
  safesnap            `safesnap backup sqlite` (raw route + quick_check + zstd), a separate process
  safesnap-t2         the same with `--threads 2` (two zstd workers; compression_threads = 2)
  safesnap-nice0      `safesnap --nice 0`: without lowering its CPU priority (the default is 10)
  vacuum_into         VACUUM INTO with synchronous=OFF on the copying connection
  backup_api          Python Connection.backup(pages=-1): one step
  sqlite3_cli         `sqlite3 db ".backup out"` (the tracker live demo's method), capped

For each: completed?, wall seconds, writer p99 latency before (baseline) and during, writer max
during, writer errors during, output bytes; for safesnap also its peak RSS (getrusage of the
process itself). Run from the repository root:

    .venv/bin/python bench/sqlite_bench.py                      # 1 GiB, WAL and rollback
    .venv/bin/python bench/sqlite_bench.py --size-mb 5120 --modes wal --methods safesnap
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.fixtures.sqlite_writer import Writer, make_db, percentile  # noqa: E402

from safesnap.artifacts.codecs import DEFAULT_LEVELS  # noqa: E402

METHODS = [
    "cp",
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


def run_cp_zstd(db: Path, out: Path, _cap: float) -> dict[str, Any]:
    subprocess.run(["cp", str(db), str(out)], check=True)
    level = DEFAULT_LEVELS["zstd"]
    subprocess.run(["zstd", "-q", f"-{level}", "-T1", "--rm", str(out)], check=True)
    return {"completed": True, "bytes": Path(f"{out}.zst").stat().st_size}


def run_safesnap(
    db: Path, out: Path, _cap: float, threads: int = 1, nice: int = 10
) -> dict[str, Any]:
    args = [sys.executable, "-c", RSS_WRAPPER, "--nice", str(nice), "backup", "sqlite", str(db),
            "--dest", str(out), "--json"]  # fmt: skip
    args += ["--threads", str(threads)] if threads != 1 else []
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"completed": False, "error": proc.stdout.strip() or proc.stderr[-500:]}
    rss = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_RSS_KB=")]
    data = json.loads(proc.stdout)
    return {"completed": True, "bytes": data["bytes"], "peak_rss_mb": int(rss[0][12:]) / 1024,
            "journal_mode": data["journal_mode"], "integrity_result": data["integrity_result"],
            "writer_lockout_seconds": data["writer_lockout_seconds"],
            "copy_seconds": data["copy_seconds"]}  # fmt: skip


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
    "cp": run_cp, "cp+zstd": run_cp_zstd, "safesnap": run_safesnap,
    "safesnap-t2": lambda db, out, cap: run_safesnap(db, out, cap, threads=2),
    "safesnap-nice0": lambda db, out, cap: run_safesnap(db, out, cap, nice=0),
    "vacuum_into": run_vacuum_into, "backup_api": run_backup_api, "sqlite3_cli": run_sqlite3_cli,
}  # fmt: skip


def measure(method: str, db: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = work / f"out-{method}"
    writer = Writer(db, work / f"writer-{method}.json", interval=args.interval,
                    busy_timeout=args.writer_busy_timeout, max_seconds=args.cap + 120)  # fmt: skip
    time.sleep(args.baseline)
    start_wall, start = time.time(), time.perf_counter()
    try:
        result = RUNNERS[method](db, out, args.cap)
    except (OSError, sqlite3.Error, subprocess.CalledProcessError) as exc:
        result = {"completed": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    seconds = time.perf_counter() - start
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
    cols = ["mode", "method", "completed", "seconds", "bytes", "writer_p99_before_ms",
            "writer_p99_during_ms", "writer_max_during_ms", "writer_errors", "peak_rss_mb",
            "writer_lockout_seconds", "copy_seconds", "error"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


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
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sqlite-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        for mode in args.modes.split(","):
            db = work / f"bench-{mode}.db"
            t0 = time.perf_counter()
            make_db(db, args.size_mb, mode)
            print(f"# {mode}: made {db.stat().st_size / 2**20:.0f} MiB in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip
            for method in args.methods.split(","):
                row = {"mode": mode, **measure(method, db, work, args)}
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
            db.unlink()
    report = {"machine": machine(), "size_mb": args.size_mb, "interval": args.interval,
              "rows": rows}  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["machine"]))
    print(table(rows))


if __name__ == "__main__":
    main()
