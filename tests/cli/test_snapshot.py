"""`safesnap snapshot` through the real entry point, against the in-memory reference provider
(its state lives in a file so the CLI process and the test share it): labels, expiry, copies,
API call counts, and the quiesce released when the provider fails."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from safesnap_providers.base import Snapshot
from safesnap_providers.testing.memory import MemoryProvider

SAFESNAP = str(Path(sys.executable).parent / "safesnap")


def safesnap(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def setup(tmp_path: Path, volume: str | None = None) -> tuple[Path, MemoryProvider, str]:
    db = tmp_path / "tracker.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    state = tmp_path / "cloud.json"
    cloud = MemoryProvider(state_file=state, pending_polls=0)
    vol = volume or cloud.add_volume()
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "prod"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[[targets]]\nname = "tracker"\nengine = "sqlite"\npath = "{db}"\n'
        f'snapshot = {{ provider = "memory", state_file = "{state}", '
        f'volume_ids = ["{vol}"], copy_to = ["mem-2"] }}\n'
    )
    return plan, cloud, vol


def test_snapshot_labels_expiry_copies_and_call_counts(tmp_path: Path) -> None:
    plan, cloud, vol = setup(tmp_path)
    proc = safesnap(
        "snapshot",
        "--config",
        str(plan),
        "--kind",
        "pre-upgrade",
        "--keep-days",
        "3",
        "--label",
        "ticket=UPG-42",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (target,) = report["targets"]
    regions = sorted(s["region"] for s in target["snapshots"])
    assert regions == ["mem-1", "mem-2"]
    assert all(s["state"] == "completed" for s in target["snapshots"])
    assert target["api_calls"] >= 3  # create, wait, copy, wait
    assert target["lock_held_seconds"] < 5
    assert [s["name"] for s in target["steps"]] == ["snapshot"]  # no artifact in snapshot mode
    stored = {s.id: s for s in cloud.all_snapshots()}
    original = stored[next(s["id"] for s in target["snapshots"] if s["region"] == "mem-1")]
    assert original.source_id == vol
    assert original.labels["managed-by"] == "safesnap"
    assert original.labels["plan"] == "prod"
    assert original.labels["kind"] == "pre-upgrade"
    assert original.labels["run-id"] == report["run_id"]
    assert original.labels["user-ticket"] == "UPG-42"
    assert "expires-at" in original.labels
    assert not (tmp_path / "dest" / "tracker").exists()


def test_provider_failure_releases_the_database_at_once(tmp_path: Path) -> None:
    plan, cloud, _ = setup(tmp_path, volume="vol-does-not-exist")
    proc = safesnap("snapshot", "--config", str(plan), "--json", cwd=tmp_path)
    assert proc.returncode == 11, proc.stderr
    step = json.loads(proc.stdout)["targets"][0]["steps"][0]
    assert step["error"]["code"] == "provider_failed"
    assert "vol-does-not-exist" in step["error"]["message"]
    assert cloud.all_snapshots() == []
    # The write lock taken for the snapshot is gone: a writer gets in without waiting.
    conn = sqlite3.connect(tmp_path / "tracker.db", timeout=0.1)
    started = time.monotonic()
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    assert time.monotonic() - started < 0.1


def test_dry_run_creates_no_snapshot(tmp_path: Path) -> None:
    plan, cloud, _ = setup(tmp_path)
    proc = safesnap("snapshot", "--config", str(plan), "--dry-run", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["dry_run"] is True
    assert cloud.all_snapshots() == []


def test_plan_without_snapshot_tables_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path}"\n[[targets]]\nname = "a"\npath = "/a.db"\n'
    )
    proc = safesnap("snapshot", "--config", str(plan), cwd=tmp_path)
    assert proc.returncode == 2
    assert "snapshot = { provider" in proc.stderr


def test_nightly_run_prunes_old_snapshots_by_retention(tmp_path: Path) -> None:
    plan, cloud, _ = setup(tmp_path)
    text = plan.read_text().replace(', copy_to = ["mem-2"]', "")
    retention = "[retention]\nkeep_last = 2\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"
    plan.write_text(text.replace("[[targets]]", retention + "[[targets]]"))
    unmanaged = cloud.add_volume()  # a snapshot safesnap did not make must survive
    cloud.add_snapshot(
        Snapshot(
            id="snap-by-hand",
            source_id=unmanaged,
            region="mem-1",
            state="completed",
            created_at=datetime(2020, 1, 1, tzinfo=UTC),
            labels={"owner": "ops"},
        )
    )
    run_ids = []
    for _ in range(3):
        proc = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        steps = [s["name"] for s in report["targets"][0]["steps"]]
        assert steps == ["snapshot", "snapshot-prune", "backup", "verify", "prune"]
        run_ids.append(report["run_id"])
        time.sleep(1.1)  # distinct creation seconds
    left = {s.id: s for s in cloud.all_snapshots()}
    assert "snap-by-hand" in left
    managed_runs = sorted(s.labels["run-id"] for s in left.values() if s.managed)
    assert managed_runs == sorted(run_ids[-2:])
