"""`safesnap drill --replica`: the newest backup downloaded from the bucket (moto in server
mode), checked, decrypted, restored into scratch and checked; a damaged object or a wrong
identity fails the drill, and nothing is left in the scratch place either way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.artifacts import small_sqlite_db
from tests.fixtures.replicas import AgeKey, Bucket, make_age_key

SAFESNAP = [sys.executable, "-m", "safesnap"]


def safesnap(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SAFESNAP_AGE_IDENTITY_FILE"}
    return subprocess.run(
        [*SAFESNAP, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env,
        check=False,
    )  # fmt: skip


@pytest.fixture
def uploaded(tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey) -> Path:
    """One run of a plan with an encrypted replica; then the local destination is lost."""
    db = small_sqlite_db(tmp_path / "tracker.db", rows=120)
    replica = replica_bucket.replica
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[encryption]\nrecipients = ["{age_key.recipient}"]\n'
        f'[[targets]]\nname = "tracker"\nengine = "sqlite"\npath = "{db}"\n'
        f'[[replicas]]\nname = "dr"\nbucket = "{replica.bucket}"\nregion = "{replica.region}"\n'
        f'endpoint_url = "{replica.endpoint_url}"\naddressing_style = "path"\n'
    )
    proc = safesnap("run", "--config", str(plan), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(tmp_path / "dest")
    return plan


def drill(plan: Path, identity: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    proc = safesnap(
        "drill", "--config", str(plan), "--replica", "dr", "--identity", str(identity),
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, report


def steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (target,) = report["targets"]
    return {step["name"]: step for step in target["steps"]}


def left_behind(tmp_path: Path) -> list[Path]:
    dest = tmp_path / "dest"
    return [p for p in dest.rglob("*") if p.name != ".safesnap.lock"] if dest.exists() else []


def test_a_drill_from_the_replica_restores_the_newest_backup(
    uploaded: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    code, report = drill(uploaded, age_key.identity_file, tmp_path)

    assert code == 0, report
    assert report["replica"] == "dr"
    (target,) = report["targets"]
    assert [s["name"] for s in target["steps"]] == ["fetch", "checksum", "restore"]
    assert ".safesnap-drill.tracker." in target["artifact"]  # downloaded into scratch
    assert target["row_counts"] == {"t": 120}
    assert target["scratch_removed"] is True
    assert [p.name for p in left_behind(tmp_path)] == [".safesnap-drill-state.json"]


def test_a_corrupted_replica_object_fails_the_drill(
    uploaded: Path, age_key: AgeKey, replica_bucket: Bucket, tmp_path: Path
) -> None:
    (key,) = [k for k in replica_bucket.object_keys() if not k.endswith(".manifest.json")]
    body = bytearray(replica_bucket.body(key))
    body[len(body) // 2] ^= 0xFF
    replica_bucket.s3.put_object(Bucket=replica_bucket.name, Key=key, Body=bytes(body))

    code, report = drill(uploaded, age_key.identity_file, tmp_path)

    assert code == 15
    assert report["ok"] is False
    assert steps(report)["fetch"]["error"]["code"] in ("integrity_failed", "decryption_failed")
    assert "restore" not in steps(report)
    assert report["targets"][0]["scratch_removed"] is True
    assert [p.name for p in left_behind(tmp_path)] == [".safesnap-drill-state.json"]


def test_a_wrong_identity_fails_the_fetch_cleanly(uploaded: Path, tmp_path: Path) -> None:
    stranger = make_age_key(tmp_path / "keys" / "stranger.key")

    code, report = drill(uploaded, stranger.identity_file, tmp_path)

    assert code == 15
    assert steps(report)["fetch"]["error"]["code"] == "decryption_failed"
    assert report["targets"][0]["scratch_removed"] is True
