#!/usr/bin/env python3
"""Benchmark: what each scope costs on a Torrust-like demo tree (docs/how-to/scopes.md).

Builds the deployer's layout under a work directory: the demo's tracker database
(config/demo.py's tables, `--torrents` rows, WAL mode and held open like a running tracker),
tracker.toml, prometheus.yml, Grafana provisioning, a Caddyfile, tracker logs and a Prometheus
data directory of semi-compressible bytes. Then `safesnap init --torrust` writes the layered
plan and three plans are derived from it and run, each with `safesnap run --config P --json`
in a fresh destination:

  selective     the database by its engine + the config files
  full-storage  one files target of the whole storage/ with live_databases = "copy" (what a
                tar of the folder does: the live database's bytes, not a consistent copy)
  layered       the plan init writes: database + config + storage (the database left out)

For each: wall seconds of the run (process start to exit), artifact bytes, source bytes.
Run from the repository root:

    .venv/bin/python bench/scopes_bench.py                       # 300k torrents, 64 MiB TSDB
    .venv/bin/python bench/scopes_bench.py --torrents 1000000 --tsdb-mb 256
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
COMPOSE = """\
services:
  tracker:
    image: torrust/tracker:develop
    volumes:
      - ./storage/tracker/lib:/var/lib/torrust/tracker:Z
      - ./storage/tracker/log:/var/log/torrust/tracker:Z
      - ./storage/tracker/etc:/etc/torrust/tracker:Z
"""


def build(root: Path, torrents: int, tsdb_mb: int, log_mb: int) -> sqlite3.Connection:
    storage = root / "storage"
    for sub in ("tracker/etc", "tracker/lib/database", "tracker/log", "prometheus/etc",
                "prometheus/data", "grafana/provisioning/datasources", "caddy/etc"):  # fmt: skip
        (storage / sub).mkdir(parents=True, exist_ok=True)
    (root / "docker-compose.yml").write_text(COMPOSE)
    (root / ".env").write_text("TORRUST_TRACKER_CONFIG_OVERRIDE_CORE__DATABASE__DRIVER=sqlite3\n")
    (storage / "tracker/etc/tracker.toml").write_text(
        '[core.database]\ndriver = "sqlite3"\n'
        'path = "/var/lib/torrust/tracker/database/sqlite3.db"\n'
    )
    (storage / "prometheus/etc/prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    (storage / "grafana/provisioning/datasources/p.yml").write_text("apiVersion: 1\n")
    (storage / "caddy/etc/Caddyfile").write_text("tracker.example.com {\n}\n")
    rng = random.Random(7)
    with (storage / "tracker/log/tracker.log").open("w") as log:
        line = "2026-12-04T03:15:00Z INFO UDP announce from 10.0.{}.{} info_hash {}\n"
        while log.tell() < log_mb << 20:
            log.write(line.format(rng.randrange(256), rng.randrange(256), secrets.token_hex(20)))
    for i in range(max(1, tsdb_mb // 8)):  # TSDB chunks: half random, half repetitive
        chunk = secrets.token_bytes(4 << 20) + bytes(range(256)) * (4 << 12)
        (storage / f"prometheus/data/chunk-{i:06d}").write_bytes(chunk)
    db = storage / "tracker/lib/database/sqlite3.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS torrents (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " info_hash TEXT NOT NULL UNIQUE, completed INTEGER DEFAULT 0 NOT NULL)"
    )
    rows = ((secrets.token_hex(20), i % 97) for i in range(torrents))
    conn.executemany("INSERT INTO torrents (info_hash, completed) VALUES (?, ?)", rows)
    conn.commit()
    return conn  # kept open by the caller: -wal and -shm exist, as under a running tracker


def plans(work: Path, root: Path) -> dict[str, Path]:
    layered = work / "layered.toml"
    init = [SAFESNAP, "init", "--torrust", str(root), "--dest", str(work / "dest")]
    subprocess.run([*init, "--output", str(layered), "--force"], check=True, capture_output=True)
    text = layered.read_text()
    db_and_config = text.split("# Everything else the services keep")[0]
    head = text.split("# The tracker's database")[0]
    full = head + (
        '[[targets]]\nname = "storage"\nengine = "files"\n'
        f'paths = ["{root / "storage"}"]\nlive_databases = "copy"\n'
    )
    out = {"selective": work / "selective.toml", "full-storage": work / "full.toml"}
    out["selective"].write_text(db_and_config)
    out["full-storage"].write_text(full)
    out["layered"] = layered
    return out


def measure(name: str, plan: Path, dest: Path) -> dict[str, Any]:
    text = plan.read_text().replace(str(dest.parent / "dest"), str(dest))
    plan.write_text(text)
    started = time.perf_counter()
    done = subprocess.run([SAFESNAP, "run", "--config", str(plan), "--json"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    report = json.loads(done.stdout)
    steps = [t["steps"][0] for t in report["targets"]]
    return {
        "scope": name,
        "ok": report["ok"],
        "seconds": round(seconds, 2),
        "artifact_bytes": sum(s.get("bytes", 0) for s in steps),
        "source_bytes": sum(s.get("source_bytes", 0) for s in steps),
        "targets": {t["name"]: t["steps"][0].get("bytes") for t in report["targets"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, default=300_000)
    parser.add_argument("--tsdb-mb", type=int, default=64)
    parser.add_argument("--log-mb", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scopes-bench-") as tmp:
        work = Path(tmp)
        root = work / "torrust"
        conn = build(root, args.torrents, args.tsdb_mb, args.log_mb)
        try:
            for name, plan in plans(work, root).items():
                result = measure(name, plan, work / f"dest-{name}")
                print(json.dumps(result), flush=True)
        finally:
            conn.close()
    print(json.dumps({"cpus": os.cpu_count(), "args": vars(args)}))


if __name__ == "__main__":
    main()
