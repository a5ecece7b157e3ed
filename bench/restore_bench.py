#!/usr/bin/env python3
"""Benchmark: how long getting a SQLite backup back takes, against the bare tools.

On one database (make one with `bench/sqlite_bench.py --make-only`), one after the other, each in
its own process, with the wall time and the user and system CPU time of each:

  backup           `safesnap backup sqlite DB --dest W/out` (the artifact the rest use)
  zstd             `zstd -d -T1 ARTIFACT -o W/plain.db && sync W/plain.db`: the floor
  quick_check      `sqlite3 W/plain.db "PRAGMA quick_check"` (what a backup runs)
  integrity_check  `sqlite3 W/plain.db "PRAGMA integrity_check"` (what verify and restore run)
  verify           `safesnap verify`: checksums, a scratch copy, integrity_check, row counts
  restore          `safesnap restore`: checksums, decompress beside --to, integrity_check,
                   row counts, rename

Nothing writes to the database meanwhile: this measures the restore side, not the copy. The
work directory needs the database's size once plus the artifact (and verify's scratch copy
goes to the system temp directory). Run from the repository root with the venv that has
safesnap installed:

    .venv/bin/python bench/restore_bench.py --db /tmp/sqlite-big/t1g.db --workdir /tmp/rb
    .venv/bin/python bench/restore_bench.py --db DB --workdir W --skip integrity_check --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def timed(argv: list[str], cap: float) -> dict[str, Any]:
    """Run argv to the end (or `cap` seconds), with its own CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=cap)
        code: int | None = proc.returncode
        out = proc.stdout.strip()
    except subprocess.TimeoutExpired:
        code, out = None, f"killed after {cap:.0f} s"
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": round(wall, 2),
        "user_s": round(after.ru_utime - before.ru_utime, 2),
        "sys_s": round(after.ru_stime - before.ru_stime, 2),
        "exit": code,
        "output": out,  # the JSON line of safesnap's steps
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="an existing SQLite database")
    ap.add_argument("--workdir", type=Path, required=True, help="emptied first, kept after")
    ap.add_argument("--cap", type=float, default=3600, help="seconds allowed to each step")
    ap.add_argument("--skip", default="", help="comma list of steps to leave out")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if not args.db.is_file():
        ap.error(f"--db {args.db}: no such file")
    for tool in ("zstd", "sqlite3"):
        if shutil.which(tool) is None:
            ap.error(f"{tool} is not on PATH")
    skip = {s for s in args.skip.split(",") if s}
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    safesnap = str(BIN / "safesnap")
    results: dict[str, Any] = {}

    backup = timed([safesnap, "--nice", "0", "backup", "sqlite", str(args.db),
                    "--dest", str(work / "out"), "--json"], args.cap)  # fmt: skip
    results["backup"] = backup
    if backup["exit"] != 0:
        print(backup["output"], file=sys.stderr)
        return 1
    artifact = json.loads(backup["output"].splitlines()[-1])["artifact"]
    plain = work / "plain.db"
    steps = {
        "zstd": ["sh", "-c", 'zstd -q -d -T1 "$0" -o "$1" && sync "$1"', artifact, str(plain)],
        "quick_check": ["sqlite3", str(plain), "PRAGMA quick_check"],
        "integrity_check": ["sqlite3", str(plain), "PRAGMA integrity_check"],
        "verify": [safesnap, "--nice", "0", "verify", artifact, "--json"],
        "restore": [safesnap, "--nice", "0", "restore", artifact,
                    "--to", str(work / "restored.db"), "--json"],
    }  # fmt: skip
    for name, argv in steps.items():
        if name in skip:
            continue
        if name in ("verify", "restore"):
            plain.unlink(missing_ok=True)  # the disk holds one plain copy at a time
        results[name] = timed(argv, args.cap)

    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_after": os.getloadavg(),
        "db_bytes": args.db.stat().st_size,
    }
    if args.json:
        for r in results.values():
            r["output"] = r["output"][-300:]  # sqlite3 prints "ok"; safesnap one JSON object
        print(json.dumps({"machine": machine, "results": results}))
        return 0
    print(f"{args.db} ({machine['db_bytes']:,} bytes), load after {machine['load_after']}")
    print(f"{'step':16} {'wall s':>8} {'user s':>8} {'sys s':>8} {'exit':>5}")
    for name, r in results.items():
        print(f"{name:16} {r['wall_s']:8.2f} {r['user_s']:8.2f} {r['sys_s']:8.2f} {r['exit']!s:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
