"""Artifact write/verify throughput and peak memory, against the plain command-line tools.

Each measurement runs in a fresh child process so its peak RSS (ru_maxrss) is its own.
Input: a file of SIZE MiB, half random bytes and half zeros per 4 KiB page (roughly how a
SQLite database compresses), in the page cache (read once before timing).

    .venv/bin/python bench/artifacts_bench.py --mib 512 --mib 64

Rows:
- safesnap write (zstd|gzip|xz|none): write_artifact = read + sha256(source) + compress +
  sha256(stored) + fsync + rename + manifest.
- safesnap verify-checksums: open_decompressed over the whole artifact (both sha256s).
- cli `zstd -3 -c | sha256sum` etc.: the shell pipeline an operator would write instead
  (no fsync, no manifest, no source hash): the floor to compare with.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = 4096


def make_input(path: Path, mib: int) -> None:
    with path.open("wb") as fh:
        for _ in range(mib):  # bounded: one MiB per step, fresh random halves (no long repeats)
            rnd = os.urandom(512 * 1024)
            half = PAGE // 2
            fh.write(b"".join(rnd[p : p + half] + bytes(half) for p in range(0, len(rnd), half)))


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from safesnap.artifacts.store import write_artifact, open_decompressed
mode, src, dest, codec = sys.argv[1:5]
t = time.perf_counter()
if mode == "write":
    with open(src, "rb") as fh:
        info = write_artifact(fh, Path(dest), target="bench", engine="sqlite", ext="sqlite",
                              compression=codec)
    out = {"bytes": info.bytes, "artifact": str(info.path)}
else:
    with open_decompressed(Path(src)) as r:
        while r.read(1 << 20):
            pass
    out = {}
out["seconds"] = time.perf_counter() - t
out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

BASELINE_RSS = r"""
import resource
import safesnap.artifacts.store  # same imports, no work: the interpreter's own footprint
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def child(*args: str) -> dict[str, float | str]:
    res = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(res.stdout)


def cli(cmd: str, src: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run(f"{cmd} < {src} | tee {out} | sha256sum > /dev/null", shell=True, check=True)
    return time.perf_counter() - t


def machine() -> dict[str, str]:
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split("\n")[1]
    return {
        "nproc": str(os.cpu_count()),
        "mem": " ".join(mem.split()[:2]),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "zstd": subprocess.run(["zstd", "-V"], capture_output=True, text=True).stdout.strip(),
        "kernel": platform.release(),
    }


def run(mib: int, work: Path) -> list[tuple[str, int, float, float | None, float]]:
    src = work / f"input-{mib}.bin"
    make_input(src, mib)
    with src.open("rb") as fh, open(os.devnull, "wb") as null:
        shutil.copyfileobj(fh, null)  # warm the page cache
    rows = []
    for codec in ("zstd", "gzip", "xz", "none"):
        if codec == "xz" and mib > 128:
            continue  # ~5 MiB/s: minutes per run; measured at the small size only
        dest = work / f"out-{codec}-{mib}"
        w = child("write", str(src), str(dest), codec)
        rows.append((f"safesnap write {codec}", mib, float(w["seconds"]), float(w["maxrss_mib"]),
                     float(w["bytes"]) / (mib << 20)))  # fmt: skip
        v = child("verify", str(w["artifact"]), "", codec)
        rows.append((f"safesnap verify-checksums {codec}", mib, float(v["seconds"]),
                     float(v["maxrss_mib"]), float(w["bytes"]) / (mib << 20)))  # fmt: skip
        shutil.rmtree(dest)
    for name, cmd in (("zstd -3", "zstd -3 -q -c"), ("gzip -6", "gzip -6 -c")):
        out = work / "cli.out"
        seconds = cli(cmd, src, out)
        rows.append((f"cli `{name} | tee | sha256sum`", mib, seconds, None,
                     out.stat().st_size / (mib << 20)))  # fmt: skip
        out.unlink()
    src.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, action="append", help="input size (repeatable)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch dir (default: /tmp)")
    args = parser.parse_args()
    base_rss = float(
        subprocess.run(
            [sys.executable, "-c", BASELINE_RSS],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    )
    print(json.dumps(machine()))
    print(f"interpreter + imports peak RSS: {base_rss:.0f} MiB\n")
    print("| what | input MiB | seconds | MiB/s | peak RSS MiB | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for mib in args.mib or [256]:
            for name, size, seconds, rss, ratio in run(mib, Path(tmp)):
                rss_s = f"{rss:.0f}" if rss is not None else "-"
                print(f"| {name} | {size} | {seconds:.2f} | {size / seconds:.0f} | {rss_s} "
                      f"| {ratio:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
