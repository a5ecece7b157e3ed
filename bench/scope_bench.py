"""Backup scope on a Torrust-like storage tree: full folder vs database only vs db + config.

Builds a tree shaped like a Torrust deployment (torrust-demo's compose.yaml and the
torrust-tracker-deployer's templates: storage/{tracker,index,prometheus,grafana,caddy,certbot},
docker-compose.yml, .env) and measures, per scope: wall and CPU seconds, stored bytes, number of
files, and the time to restore it. The tracker database is a Torrust-shaped SQLite file (--db, e.g.
one kept by bench/torrust_sqlite_bench.py --keep-db, else generated with --rows).

Scopes:
  full       tar of the whole deployment folder | zstd -3 (what a folder copy or rsync captures)
  db         `safesnap backup sqlite` of the tracker database (consistent copy + check + zstd -3)
  db+config  db, plus `safesnap run` with a `files` target over the config files only
  layered    per-run figures are the ones above; the weekly storage of a daily db+config plus a
             weekly full archive is computed from them (7 daily + 1 weekly), not measured again

    .venv/bin/python bench/scope_bench.py --db /tmp/tracker.db --prom-mb 256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# A sibling script, loaded by path (bench/ is not a package).
make_db = runpy.run_path(str(Path(__file__).resolve().parent / "torrust_sqlite_bench.py"))[
    "make_db"
]

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
CONFIG_FILES = [  # the deployer's backup-paths.txt, plus the compose stack and the index
    "storage/tracker/etc/tracker.toml",
    "storage/index/etc/index.toml",
    "storage/prometheus/etc/prometheus.yml",
    "storage/grafana/provisioning",
    "storage/caddy/etc/Caddyfile",
    "docker-compose.yml",
    ".env",
]


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def text_lines(n: int, template: str) -> bytes:
    return "".join(template.format(i=i, h=os.urandom(8).hex()) for i in range(n)).encode()


def build_tree(root: Path, db: Path, prom_mb: int, log_mb: int) -> None:
    """The deployment folder. Bounded: fixed file counts; sizes from the arguments."""
    st = root / "storage"
    (st / "tracker/lib/database").mkdir(parents=True)
    shutil.copyfile(db, st / "tracker/lib/database/sqlite3.db")
    write(st / "tracker/etc/tracker.toml", text_lines(40, 'key_{i} = "{h}"\n'))
    line = "2026-12-04T00:00:{i:06d}Z INFO UDP TRACKER: announce info_hash={h}{h} peer=10.0.0.1\n"
    per_file = max(1, log_mb * 1024 * 1024 // 95 // 10)
    for k in range(10):  # rotated logs, like docker's max-file = 10
        write(st / f"tracker/log/tracker.log.{k}", text_lines(per_file, line))
    idx = st / "index/lib/database/sqlite3.db"
    idx.parent.mkdir(parents=True)
    conn = sqlite3.connect(idx)
    conn.execute("CREATE TABLE torrust_torrents(id INTEGER PRIMARY KEY, info_hash TEXT, title TEXT,"
                 " description TEXT, torrent BLOB)")  # fmt: skip
    conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<1000) "
                 "INSERT INTO torrust_torrents(info_hash, title, description, torrent) SELECT "
                 "hex(randomblob(20)), 'title-' || x, 'description of torrent ' || x, "
                 "randomblob(1500) FROM c")  # fmt: skip
    conn.commit()
    conn.close()
    write(st / "index/etc/index.toml", text_lines(40, 'key_{i} = "{h}"\n'))
    write(st / "prometheus/etc/prometheus.yml", text_lines(20, "  - job_{i}: {h}\n"))
    for k in range(max(1, prom_mb // 64)):  # TSDB blocks: already compressed (Gorilla, snappy)
        write(st / f"prometheus/data/01BLOCK{k:04d}/chunks/000001", os.urandom(64 << 20))
        write(st / f"prometheus/data/01BLOCK{k:04d}/index", os.urandom(1 << 20))
    write(st / "grafana/data/grafana.db", os.urandom(2 << 20) + bytes(3 << 20))
    write(st / "grafana/provisioning/datasources/prometheus.yml", b"apiVersion: 1\n" * 20)
    write(st / "grafana/provisioning/dashboards/torrust.json", text_lines(500, '"p{i}": "{h}",\n'))
    write(st / "caddy/etc/Caddyfile", text_lines(20, "tracker.example.com {{ # {h}\n}}\n"))
    for k in range(6):  # ACME account + certificates and keys
        write(st / f"caddy/data/certificates/site{k}.crt", os.urandom(2500))
        write(st / f"certbot/etc/live/site{k}/privkey.pem", os.urandom(1700))
    write(root / "docker-compose.yml", text_lines(150, "  service_{i}: {h}\n"))
    write(root / ".env", text_lines(30, "VAR_{i}={h}\n"))


def timed(cmd: list[str] | str) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    shell = isinstance(cmd, str)
    run = ["bash", "-o", "pipefail", "-c", cmd] if shell else cmd
    proc = subprocess.run(run, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def count_files(root: Path, rel: list[str] | None = None) -> tuple[int, int]:
    paths = [root / r for r in rel] if rel else [root]
    files = [p for base in paths for p in ([base] if base.is_file() else base.rglob("*"))
             if p.is_file()]  # fmt: skip
    return len(files), sum(p.stat().st_size for p in files)


def plan(work: Path, root: Path) -> Path:
    paths = ", ".join(f'"{root / c}"' for c in CONFIG_FILES)
    p = work / "plan.toml"
    p.write_text(
        f'plan = "scope"\n[destination]\npath = "{work / "cfg"}"\n\n'
        f'[[targets]]\nname = "config"\nengine = "files"\npaths = [{paths}]\n'
    )
    return p


def measure(work: Path, root: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    db = root / "storage/tracker/lib/database/sqlite3.db"

    def add(scope: str, wall: float, cpu: float, stored: int, files: int, src: int, **kw: Any):
        r = {"scope": scope, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "files": files,
             "source_bytes": src, "stored_bytes": stored, "load1": round(os.getloadavg()[0], 2),
             **kw}  # fmt: skip
        print(json.dumps(r), flush=True)
        rows.append(r)

    n, src = count_files(root)
    full = work / "full.tar.zst"
    wall, cpu, _ = timed(f"tar -C {root} -cf - . | zstd -q -3 -T1 > {full}")
    rwall, _, _ = timed(f"mkdir -p {work}/rf && zstd -q -dc {full} | tar -C {work}/rf -xf -")
    add("full storage folder (tar | zstd -3)", wall, cpu, full.stat().st_size, n, src,
        restore_s=round(rwall, 2))  # fmt: skip
    shutil.rmtree(work / "rf")
    full.unlink()

    wall, cpu, out = timed([SAFESNAP, "backup", "sqlite", str(db), "--dest", str(work / "db"),
                            "--json"])  # fmt: skip
    art = Path(json.loads(out)["artifact"])
    rwall, _, _ = timed([SAFESNAP, "restore", str(art), "--to", str(work / "db-restored.db")])
    add("database only (safesnap backup sqlite)", wall, cpu, art.stat().st_size, 1,
        db.stat().st_size, restore_s=round(rwall, 2))  # fmt: skip

    n, src = count_files(root, CONFIG_FILES)
    wall, cpu, out = timed([SAFESNAP, "run", "--config", str(plan(work, root)), "--json"])
    stored = sum(p.stat().st_size for p in (work / "cfg").rglob("*") if p.is_file()
                 and not p.name.endswith(".json"))  # fmt: skip
    add("config files only (safesnap files target)", wall, cpu, stored, n, src)

    n, src = count_files(root)
    rest = work / "rest.tar.zst"
    wall, cpu, _ = timed(f"tar -C {root} --exclude=./storage/tracker/lib/database -cf - . "
                         f"| zstd -q -3 -T1 > {rest}")  # fmt: skip
    add("everything but the tracker database (tar | zstd -3)", wall, cpu, rest.stat().st_size,
        n - 1, src - db.stat().st_size)  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", type=Path, default=None, help="tracker database to place in the tree")
    p.add_argument("--rows", type=int, default=2_000_000, help="generate one when --db is absent")
    p.add_argument("--prom-mb", type=int, default=256, help="Prometheus TSDB size")
    p.add_argument("--log-mb", type=int, default=50, help="tracker logs size")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="scope-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        db = args.db
        if db is None:
            db = work / "gen.db"
            make_db(db, args.rows, 0.9)
        root = work / "torrust"
        build_tree(root, db, args.prom_mb, args.log_mb)
        rows = measure(work, root)
    report = {"db_bytes": Path(args.db).stat().st_size if args.db else None, "rows": rows,
              "prom_mb": args.prom_mb, "log_mb": args.log_mb,
              "load_end": os.getloadavg()}  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
