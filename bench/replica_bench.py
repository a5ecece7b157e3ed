"""Peak memory and time of uploading a large artifact to a replica and restoring it back.

A moto S3 server runs in its own process on 127.0.0.1 (its memory is not ours); each measured
step runs in a fresh child process whose peak RSS (`ru_maxrss` from wait4) is its own:

- upload plain: replicas.upload.replicate_artifact (boto3 multipart from the file);
- upload age: the same with `[encryption] recipients` (age in a thread, through a pipe);
- restore age: the real `safesnap restore --replica ... --identity ...` CLI: download, both
  checksums, decrypt, publish, then the SQLite engine's restore (decompress + integrity check).

The artifact is a real SQLite backup (engine backup, zstd) of a database of random 1 MiB
blobs, so it is as large as the database (random data does not compress).

    .venv/bin/python bench/replica_bench.py --gib 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bench-dr"

UPLOAD = r"""
import json, sys
from pathlib import Path
from safesnap.artifacts.store import read_manifest
from safesnap.config.plan import load_plan
from safesnap.replicas.upload import replicate_artifact
from safesnap.artifacts.store import ArtifactInfo, manifest_path_for
plan = load_plan(Path(sys.argv[1]))
path = Path(sys.argv[2])
m = read_manifest(path)
info = ArtifactInfo(path, manifest_path_for(path), m["sha256"], m["bytes"], m["source_bytes"],
                    0.0, m)
recipients = plan.encryption.recipients if sys.argv[3] == "age" else []
print(json.dumps(replicate_artifact(info, plan.replicas[0], target="bench",
                                    recipients=recipients)))
"""
# The child's own high-water mark: ru_maxrss from wait4 would include the parent's RSS at
# fork (Linux keeps the maximum across exec), VmHWM belongs to the child's address space.
HWM = r"""
import runpy, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("\nVMHWM_KB=" + line.split()[1] + "\n")
sys.argv = sys.argv[1:]
try:
    if sys.argv[0] == "-c":
        code = sys.argv.pop(1)
        sys.argv[0] = "-c"
        exec(compile(code, "<child>", "exec"), {"__name__": "__main__"})
    else:
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    hwm()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measured(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `python -c CODE args` or `python -m MODULE args` (argv without the interpreter);
    return its wall seconds and peak RSS (MiB, the child's VmHWM)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", HWM, *argv], env=env, capture_output=True, check=False
    )
    seconds = time.perf_counter() - started
    err = proc.stderr.decode()
    if proc.returncode != 0 or "VMHWM_KB=" not in err:
        raise SystemExit(f"{argv[:4]} failed: {err[-2000:]}")
    hwm_kb = int(err.rsplit("VMHWM_KB=", 1)[1].split()[0])
    return {"seconds": seconds, "peak_rss_mib": hwm_kb / 1024, "out": proc.stdout.decode()[:300]}


def make_db(path: Path, gib: float) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        for _ in range(int(gib * 1024)):  # bounded: one MiB per statement
            conn.execute("INSERT INTO t(b) VALUES (randomblob(1048576))")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="replica-bench-", dir=args.work))
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rows = run(work, args.gib, f"http://127.0.0.1:{port}", env)
    finally:
        moto.terminate()
        moto.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(json.dumps({"machine": machine(), "rows": rows}, indent=2))


def machine() -> dict[str, object]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def run(work: Path, gib: float, endpoint: str, env: dict[str, str]) -> list[dict[str, object]]:
    import boto3
    from pyrage import x25519  # type: ignore[import-untyped]

    from safesnap.config.plan import SqliteTarget
    from safesnap.engines import BackupContext
    from safesnap.engines.sqlite.engine import ENGINE

    for _ in range(100):  # bounded wait for moto to listen
        try:
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
            s3.create_bucket(Bucket=BUCKET)
            break
        except Exception:
            time.sleep(0.2)
    identity = x25519.Identity.generate()
    key = work / "restore.key"
    key.write_text(f"{identity}\n")
    key.chmod(0o600)
    db = work / "bench.db"
    make_db(db, gib)
    artifact = ENGINE.backup(SqliteTarget(name="bench", path=db), BackupContext(dest=work / "d"))
    plan = work / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{work / "d"}"\n'
        f'[encryption]\nrecipients = ["{identity.to_public()}"]\n'
        f'[[targets]]\nname = "bench"\nengine = "sqlite"\npath = "{db}"\n'
        f'[[replicas]]\nname = "dr"\nbucket = "{BUCKET}"\nendpoint_url = "{endpoint}"\n'
        'addressing_style = "path"\n'
    )
    size = artifact.artifact.bytes
    rows: list[dict[str, object]] = []
    py = ["-c", UPLOAD, str(plan), str(artifact.artifact.path)]
    for mode in ("plain", "age"):
        if mode == "age":  # keep only the encrypted copy for the restore
            for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
                s3.delete_object(Bucket=BUCKET, Key=item["Key"])
        rows.append({"what": f"upload {mode}", "bytes": size, **measured([*py, mode], env)})
    scratch = work / "scratch"
    scratch.mkdir()
    restore = ["safesnap", "restore", "--config", str(plan)]
    restore += ["--replica", "dr", "--target", "bench", "--to", str(work / "restored.db")]
    restore += ["--identity", str(key), "--tmp-dir", str(scratch), "--json"]
    rows.append({"what": "restore age (CLI)", "bytes": size, **measured(restore, env)})
    for row in rows:
        row["mib_per_s"] = round(size / 2**20 / float(row["seconds"]), 1)  # type: ignore[arg-type]
    return rows


if __name__ == "__main__":
    main()
