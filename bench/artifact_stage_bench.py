#!/usr/bin/env python3
"""Benchmark: the artifact stage alone (write_artifact, zstd 3) against `zstd -3 -T1`.

Runs in one process, interleaved and `--reps` times each, on one existing file (e.g. a database
made by `tests/fixtures/sqlite_writer.make_db`):
  zstd -3 -T1 (CLI)          the reference of the SQLite bench's 1.5x target (no hashes, no fsync)
  zstd --single-thread       the CLI without its worker thread
  write_artifact threads=N   the full stage: read, sha256 in, compress, sha256 out, fsync, manifest
  write_artifact before      the same from another source tree (`--before-src DIR/src`), if given

Wall and CPU seconds (this process plus children: all threads count). Run from the repository
root:

    .venv/bin/python bench/artifact_stage_bench.py FILE --reps 5 --threads 1,2
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load_write_artifact(src: Path) -> Callable[..., Any]:
    """safesnap.artifacts.store.write_artifact imported from `src` (a fresh import each time)."""
    for name in [m for m in sys.modules if m == "safesnap" or m.startswith("safesnap.")]:
        del sys.modules[name]
    sys.path.insert(0, str(src))
    try:
        return importlib.import_module("safesnap.artifacts.store").write_artifact  # type: ignore[no-any-return]
    finally:
        sys.path.remove(str(src))


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("file", type=Path)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", default="1,2", help="comma list of write_artifact threads")
    p.add_argument("--before-src", type=Path, default=None, help="another tree's src/ directory")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stage-bench-"))

    def cli(*flags: str) -> Callable[[], int]:
        def run() -> int:
            out = work / "cli.zst"
            subprocess.run(["zstd", "-q", "-3", *flags, "-f", "-o", str(out), str(args.file)],
                           check=True)  # fmt: skip
            size = out.stat().st_size
            out.unlink()
            return size

        return run

    def stage(write_artifact: Callable[..., Any], **kw: Any) -> Callable[[], int]:
        def run() -> int:
            shutil.rmtree(work / "dest", ignore_errors=True)
            with args.file.open("rb") as src:
                info = write_artifact(src, work / "dest", target="t", engine="sqlite",
                                      ext="sqlite", **kw)  # fmt: skip
            return int(info.bytes)

        return run

    variants: dict[str, Callable[[], int]] = {
        "zstd -3 -T1 (CLI)": cli("-T1"),
        "zstd -3 --single-thread (CLI)": cli("--single-thread"),
    }
    if args.before_src:
        variants["write_artifact before"] = stage(load_write_artifact(args.before_src))
    current = load_write_artifact(ROOT / "src")
    for n in args.threads.split(","):
        variants[f"write_artifact threads={n}"] = stage(current, threads=int(n))
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
    try:
        for _ in range(args.reps):
            for name, run in variants.items():
                cpu, start = cpu_seconds(), time.perf_counter()
                size = run()
                results[name].append((time.perf_counter() - start, cpu_seconds() - cpu, size))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.reps} runs each, interleaved")
    print("| what | wall s min | wall s median | CPU s median | output bytes |")
    print("| --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        walls, cpus = sorted(r[0] for r in rows), sorted(r[1] for r in rows)
        mid = len(rows) // 2
        print(f"| {name} | {walls[0]:.2f} | {walls[mid]:.2f} | {cpus[mid]:.2f} | {rows[0][2]:,} |")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
