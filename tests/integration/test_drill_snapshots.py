"""`safesnap drill --snapshots`: a volume from the newest cloud snapshot, waited for, deleted.

Against the in-memory reference provider (state in a file the CLI process shares, so the test
sees every volume the drill made) for the failure paths, and against moto in server mode for
AWS EBS. The promise: the volume is gone afterwards whatever happened (success, a volume that
ends in error, SIGTERM while waiting).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fixtures.aws import REGION, MotoEC2

from safesnap_providers.base import Snapshot, managed_labels
from safesnap_providers.testing.memory import MemoryProvider

SAFESNAP = [sys.executable, "-m", "safesnap"]
NOW = datetime.now(UTC).replace(microsecond=0)
# A MySQL target in lock mode writes no artifact: the drill has only the snapshot to prove.
LOCK_TARGET = 'name = "tracker"\nengine = "mysql"\nquiesce = "lock"\ndatabases = ["tracker"]\n'


def safesnap(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [*SAFESNAP, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def memory_plan(tmp_path: Path, **options: object) -> tuple[Path, MemoryProvider]:
    state = tmp_path / "cloud.json"
    cloud = MemoryProvider(state_file=state, pending_polls=0)
    extra = "".join(f", {k} = {json.dumps(v)}" for k, v in options.items())
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "prod"\n[destination]\npath = "{tmp_path / "dest"}"\n[[targets]]\n{LOCK_TARGET}'
        f'snapshot = {{ provider = "memory", state_file = "{state}", volume_ids = ["vol-a"]'
        f"{extra} }}\n"
    )
    for run, age in (("old", 2), ("new", 1)):
        labels = managed_labels(plan="prod", target="tracker", run_id=run, kind="nightly")
        cloud.add_snapshot(
            Snapshot(
                id=f"snap-{run}", source_id="vol-a", region="mem-1", state="completed",
                created_at=NOW - timedelta(days=age), labels=labels,
            )
        )  # fmt: skip
    return plan, cloud


def volumes(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "cloud.json").read_text())["volumes"]
    return data


def snapshot_step(proc: Any) -> dict[str, Any]:
    (target,) = json.loads(proc.stdout)["targets"]
    assert [s["name"] for s in target["steps"]] == ["snapshot-restore"]
    step: dict[str, Any] = target["steps"][0]
    return step


def test_the_newest_snapshot_becomes_a_volume_that_is_deleted(tmp_path: Path) -> None:
    plan, _ = memory_plan(tmp_path, volume_polls=3)

    proc = safesnap("drill", "--config", str(plan), "--snapshots", "--json", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    step = snapshot_step(proc)
    assert step["ok"] is True
    assert step["snapshot_id"] == "snap-new"
    assert step["volume_deleted"] is True
    assert volumes(tmp_path) == {}


def test_a_volume_that_ends_in_error_fails_the_drill_and_is_deleted(tmp_path: Path) -> None:
    plan, _ = memory_plan(tmp_path, volume_error=True)

    proc = safesnap("drill", "--config", str(plan), "--snapshots", "--json", cwd=tmp_path)

    assert proc.returncode == 15, proc.stderr
    error = snapshot_step(proc)["error"]
    assert error["code"] == "provider_failed" and "state error" in error["message"]
    assert volumes(tmp_path) == {}


def sigterm_once_the_volume_exists(tmp_path: Path, plan: Path) -> tuple[int, str]:
    """Start a snapshot drill, SIGTERM it as soon as the fake holds its volume; (exit, output)."""
    proc = subprocess.Popen(
        [*SAFESNAP, "drill", "--config", str(plan), "--snapshots", "--json"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "cloud.json").exists() or not volumes(tmp_path):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the volume was never created"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode, out + err


def test_sigterm_while_waiting_deletes_the_volume(tmp_path: Path) -> None:
    plan, _ = memory_plan(tmp_path, volume_polls=1_000_000)

    code, output = sigterm_once_the_volume_exists(tmp_path, plan)

    assert code == 143, output
    assert volumes(tmp_path) == {}


def test_sigterm_while_the_create_call_is_in_flight_still_deletes_the_volume(
    tmp_path: Path,
) -> None:
    # The volume exists at the provider but its id has not reached safesnap yet (the fake waits
    # 2 s before replying): the signal must wait for the id, then the volume is deleted.
    plan, _ = memory_plan(tmp_path, volume_polls=1_000_000, restore_reply_delay=2.0)

    code, output = sigterm_once_the_volume_exists(tmp_path, plan)  # inside the 2 s

    assert code == 143, output
    assert volumes(tmp_path) == {}


def test_without_snapshots_a_lock_mode_target_has_nothing_to_drill(tmp_path: Path) -> None:
    plan, _ = memory_plan(tmp_path)

    proc = safesnap("drill", "--config", str(plan), "--json", cwd=tmp_path)

    assert proc.returncode == 2
    assert "nothing to drill" in json.loads(proc.stdout)["error"]["message"]


def test_aws_volume_from_the_newest_snapshot_is_created_and_deleted(
    tmp_path: Path, moto_ec2: MotoEC2
) -> None:
    ec2 = moto_ec2.client()
    source = moto_ec2.volume()
    made = []
    for run in ("r1", "r2"):
        labels = managed_labels(plan="prod", target="tracker", run_id=run, kind="nightly")
        tags = [{"Key": k, "Value": v} for k, v in labels.items()]
        spec = [{"ResourceType": "snapshot", "Tags": tags}]
        made.append(ec2.create_snapshot(VolumeId=source, TagSpecifications=spec)["SnapshotId"])
        time.sleep(1.1)  # distinct StartTime seconds: "newest" is well defined
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "prod"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[providers.aws]\nregion = "{REGION}"\nendpoint_url = "{moto_ec2.endpoint}"\n'
        f"poll_interval = 1\n[[targets]]\n{LOCK_TARGET}"
        f'snapshot = {{ provider = "aws", volume_ids = ["{source}"] }}\n'
    )
    env = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}

    proc = safesnap(
        "drill", "--config", str(plan), "--snapshots", "--zone", f"{REGION}a", "--json",
        cwd=tmp_path, env=env,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stdout + proc.stderr
    step = snapshot_step(proc)
    assert step["snapshot_id"] == made[-1]
    restored = ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": made}])
    assert restored["Volumes"] == []  # the drill's volume is gone
    assert ec2.describe_volumes(VolumeIds=[source])["Volumes"]  # the source is untouched
