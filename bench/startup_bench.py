#!/usr/bin/env python3
"""Benchmark: how long safesnap takes to start, against the bare interpreter.

Runs each command N times in a fresh process (interleaved, so a burst of load from elsewhere on
the machine hits every command alike) and prints the median and min wall time of each:

  python -c pass                   the interpreter alone: the floor, for scale
  safesnap --version               the console script the wheel installs
  safesnap backup sqlite --help    the SQLite path's command, parsed and its help printed
  import SQLite path               `import safesnap.cli.app, safesnap.engines.sqlite.engine`
  backup sqlite (tiny db)          a whole `safesnap backup sqlite` of a one-table database

Run from the repository root with the venv that has safesnap installed. Compiled bytecode
matters: pip compiles it at install time, uv only with --compile-bytecode; without .pyc files
(and PYTHONDONTWRITEBYTECODE=1) every number here is two to three times larger.

    .venv/bin/python bench/startup_bench.py            # 10 runs each
    .venv/bin/python bench/startup_bench.py --runs 30 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def commands(scratch: Path) -> dict[str, list[str]]:
    safesnap = str(BIN / "safesnap")
    db = scratch / "tiny.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    conn.close()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "safesnap --version": [safesnap, "--version"],
        "safesnap backup sqlite --help": [safesnap, "backup", "sqlite", "--help"],
        "import SQLite path": [
            sys.executable,
            "-c",
            "import safesnap.cli.app, safesnap.engines.sqlite.engine",
        ],
        "backup sqlite (tiny db)": [
            safesnap, "--nice", "0", "backup", "sqlite", str(db), "--dest", str(scratch / "out"),
            "--json",
        ],
    }  # fmt: skip


def once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def measure(runs: int, scratch: Path) -> dict[str, list[float]]:
    cmds = commands(scratch)
    for argv in cmds.values():  # warm the page cache and the .pyc files first
        once(argv)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, argv in cmds.items():
            times[name].append(once(argv))
    return times


def machine() -> str:
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load:.2f} at start"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory() as scratch:
        times = measure(args.runs, Path(scratch))
    summary = {
        name: {"median_ms": statistics.median(ts) * 1000, "min_ms": min(ts) * 1000}
        for name, ts in times.items()
    }
    if args.json:
        print(json.dumps({"machine": info, "runs": args.runs, "results": summary}, indent=2))
        return
    print(f"{info}; {args.runs} runs each")
    print("| command | median ms | min ms |")
    print("| --- | --- | --- |")
    for name, row in summary.items():
        print(f"| `{name}` | {row['median_ms']:.0f} | {row['min_ms']:.0f} |")


if __name__ == "__main__":
    main()
