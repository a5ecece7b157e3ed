"""MariaDB hot physical backup (`mariabackup`) of the benchmark database, with writer impact.

Reuses bench/mysql_bench.py's generator (tracker-like `peers` table, ~1 GB), its writer process
(one autocommit INSERT every 5 ms) and its latency summary, so the rows sit beside the dump and
lock figures in docs/benchmarks.md. `mariabackup` is NOT a dependency of safesnap or its tests:
install it for this measurement only (Debian: `apt-get install mariadb-backup`, the package
that matches the server's version).

Measured, each with the writer running:
  backup     `mariabackup --backup --target-dir DIR` (copies InnoDB files + redo log while the
             server runs; a short BACKUP STAGE BLOCK_COMMIT at the end for non-InnoDB files)
  prepare    `mariabackup --prepare` (crash recovery on the copy; no server involved, but it
             runs on the same disk and CPUs)
  stream     `mariabackup --backup --stream=xbstream | zstd -3 -T1` (compress during the copy)

    .venv/bin/python bench/mariabackup_bench.py --reuse --json-out /tmp/mariabackup.json

Must run as a user that can read the server's datadir (root here).
"""

from __future__ import annotations

import argparse
import json
import runpy
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

# A sibling script, loaded by path (bench/ is not a package).
mb = runpy.run_path(str(Path(__file__).resolve().parent / "mysql_bench.py"))

CONN = ["--host=127.0.0.1", "--user=root"]


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def backup(tmp: Path, db: str) -> dict[str, Any]:
    target = tmp / "mb"
    proc = subprocess.run(
        ["mariabackup", "--backup", f"--target-dir={target}", f"--databases={db}", *CONN],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    # The log names how long commits were blocked at the end (BACKUP STAGE BLOCK_COMMIT).
    stages = [ln for ln in proc.stderr.splitlines() if "BACKUP STAGE" in ln]
    return {"bytes": du(target), "stages": stages[-4:]}


def prepare(tmp: Path) -> dict[str, Any]:
    target = tmp / "mb"
    proc = subprocess.run(
        ["mariabackup", "--prepare", f"--target-dir={target}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return {"bytes_after": du(target), "completed_ok": "completed OK" in proc.stderr}


def stream_zstd(tmp: Path, db: str) -> dict[str, Any]:
    out = tmp / "mb.xbstream.zst"
    cmd = (
        f"mariabackup --backup --stream=xbstream --databases={db} {' '.join(CONN)} "
        f"2>{tmp / 'stream.log'} | zstd -q -3 -T1 > {out}"
    )
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    size = out.stat().st_size
    out.unlink()
    return {"bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.05)
    parser.add_argument("--db", default="safesnap_bench")
    parser.add_argument("--reuse", action="store_true", help="Use --db if it already exists.")
    parser.add_argument("--keep", action="store_true", help="Keep the generated database.")
    parser.add_argument("--dir", type=Path, default=None, help="scratch dir (default: /tmp)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--with-dump",
        action="store_true",
        help="Also run the dump and FTWRL rows of mysql_bench.py in this session.",
    )
    args = parser.parse_args()
    version = subprocess.run(["mariabackup", "--version"], capture_output=True, text=True)
    results: dict[str, Any] = {"machine": mb["machine"](), "mariabackup": version.stderr.strip()}
    reused = args.reuse and mb["existing"](args.db)
    results["data"] = reused or mb["generate"](args.db, args.size_gb)
    results["data"]["settle_seconds"] = mb["settle"]()
    print(json.dumps(results, indent=1), flush=True)
    turn = FileLock(Path(tempfile.gettempdir()) / "safesnap-mariadb-tests.lock", timeout=1800)
    with turn, tempfile.TemporaryDirectory(prefix="safesnap-mb-", dir=args.dir) as name:
        tmp = Path(name)
        runs = {
            "baseline (writer alone, 5 s)": lambda: mb["baseline"](args.db),
            "mariabackup --backup": lambda: backup(tmp, args.db),
            "mariabackup --prepare": lambda: prepare(tmp),
            "mariabackup --backup --stream=xbstream | zstd -3": lambda: stream_zstd(tmp, args.db),
        }
        if args.with_dump:  # the same session's dump and lock figures, for a fair comparison
            runs["mysqldump --single-transaction --quick | gzip"] = lambda: mb["mysqldump_gzip"](
                args.db, tmp
            )
            runs["lock ftwrl + 1 s snapshot"] = lambda: mb["lock"](args.db, "ftwrl", 1.0)
        results["runs"] = {}
        for label, action in runs.items():
            results["runs"][label] = mb["measured"](args.db, tmp, action)
            print(label, json.dumps(results["runs"][label]), flush=True)
        shutil.rmtree(tmp / "mb", ignore_errors=True)
    if not args.keep:
        mb["admin"]().cursor().execute(f"DROP DATABASE IF EXISTS `{args.db}`")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
