"""`safesnap snapshots list|prune|restore` through the real entry point, against the in-memory
provider (state in a file shared with the CLI process) and against moto for an AWS restore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fixtures.aws import REGION, MotoEC2

from safesnap_providers.base import Snapshot, managed_labels
from safesnap_providers.testing.memory import MemoryProvider

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
NOW = datetime.now(UTC).replace(microsecond=0)


def safesnap(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(proc.stdout)  # exactly one JSON object on stdout
    return data


def put(
    cloud: MemoryProvider,
    run: str,
    age_days: float,
    *,
    kind: str = "nightly",
    state: str = "completed",
    expires: datetime | None = None,
    vol: str = "vol-a",
    target: str = "tracker",
) -> str:
    labels = managed_labels(plan="prod", target=target, run_id=run, kind=kind, expires_at=expires)
    snap = Snapshot(
        id=f"snap-{run}",
        source_id=vol,
        region="mem-1",
        state=state,  # type: ignore[arg-type]
        created_at=NOW - timedelta(days=age_days),
        labels=labels,
    )
    return cloud.add_snapshot(snap).id


def setup(tmp_path: Path) -> tuple[Path, MemoryProvider]:
    state = tmp_path / "cloud.json"
    cloud = MemoryProvider(state_file=state, pending_polls=0)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "prod"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        "[retention]\nkeep_last = 2\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"
        f'[[targets]]\nname = "tracker"\nengine = "sqlite"\npath = "{tmp_path / "t.db"}"\n'
        f'snapshot = {{ provider = "memory", state_file = "{state}", volume_ids = ["vol-a"] }}\n'
        f'[[targets]]\nname = "plain"\nengine = "sqlite"\npath = "{tmp_path / "p.db"}"\n'
    )
    for i in range(5):
        put(cloud, f"n{i}", i)
    put(cloud, "pre", 10, kind="pre-upgrade", expires=NOW + timedelta(days=5))
    put(cloud, "pre-old", 20, kind="pre-upgrade", expires=NOW - timedelta(days=1))
    put(cloud, "crashed", 3, state="pending")
    put(cloud, "other-target", 30, target="elsewhere")
    cloud.add_snapshot(
        Snapshot(
            id="snap-by-hand",
            source_id="vol-a",
            region="mem-1",
            state="completed",
            created_at=NOW - timedelta(days=90),
        )
    )
    return plan, cloud


def test_list_shows_labelled_snapshots_of_the_target_and_marks_orphans(tmp_path: Path) -> None:
    plan, _ = setup(tmp_path)
    proc = safesnap("snapshots", "list", "--config", str(plan), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = as_json(proc)
    (entry,) = data["targets"]  # "plain" has no snapshot table
    ids = {row["id"] for row in entry["snapshots"]}
    assert ids == {
        "snap-n0",
        "snap-n1",
        "snap-n2",
        "snap-n3",
        "snap-n4",
        "snap-pre",
        "snap-pre-old",
        "snap-crashed",
    }
    assert [r["id"] for r in entry["snapshots"] if r["orphan"]] == ["snap-crashed"]
    assert entry["orphans"] == 1


def test_prune_dry_run_changes_nothing_then_prune_deletes_exactly_that(tmp_path: Path) -> None:
    plan, cloud = setup(tmp_path)
    before = {s.id for s in cloud.all_snapshots()}
    dry = safesnap("snapshots", "prune", "--config", str(plan), "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    would = set(as_json(dry)["targets"][0]["deleted"])
    assert would == {"snap-n2", "snap-n3", "snap-n4", "snap-pre-old", "snap-crashed"}
    assert {s.id for s in cloud.all_snapshots()} == before

    real = safesnap(
        "snapshots", "prune", "--config", str(plan), "--target", "tracker", "--json", cwd=tmp_path
    )
    assert real.returncode == 0, real.stderr
    assert set(as_json(real)["targets"][0]["deleted"]) == would
    assert {s.id for s in cloud.all_snapshots()} == before - would
    # untouched: newest runs, the protected pre-upgrade one, other targets', unlabelled ones
    assert {"snap-n0", "snap-n1", "snap-pre", "snap-other-target", "snap-by-hand"} <= before - would


def test_restore_creates_a_new_volume(tmp_path: Path) -> None:
    plan, cloud = setup(tmp_path)
    proc = safesnap(
        "snapshots",
        "restore",
        "snap-n1",
        "--config",
        str(plan),
        "--target",
        "tracker",
        "--name",
        "rescue",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    data = as_json(proc)
    assert data["name"] == "rescue"
    state = json.loads((tmp_path / "cloud.json").read_text())
    assert state["volumes"][data["new_id"]]["from_snapshot"] == "snap-n1"
    assert "snap-n1" in {s.id for s in cloud.all_snapshots()}


def test_restore_refuses_snapshots_safesnap_did_not_make(tmp_path: Path) -> None:
    plan, _ = setup(tmp_path)
    for snapshot_id in ("snap-by-hand", "snap-other-target", "snap-nope"):
        proc = safesnap(
            "snapshots",
            "restore",
            snapshot_id,
            "--config",
            str(plan),
            "--target",
            "tracker",
            "--json",
            cwd=tmp_path,
        )
        assert proc.returncode == 2
        assert as_json(proc)["error"]["code"] == "config_invalid"
    state = json.loads((tmp_path / "cloud.json").read_text())
    assert all("from_snapshot" not in v for v in state["volumes"].values())


def test_unknown_target_and_target_without_snapshots(tmp_path: Path) -> None:
    plan, _ = setup(tmp_path)
    for name in ("nope", "plain"):
        proc = safesnap(
            "snapshots", "list", "--config", str(plan), "--target", name, "--json", cwd=tmp_path
        )
        assert proc.returncode == 2
        assert as_json(proc)["ok"] is False


def test_aws_restore_through_moto(tmp_path: Path, moto_ec2: MotoEC2) -> None:
    volume = moto_ec2.volume()
    ec2 = moto_ec2.client()
    labels = managed_labels(plan="prod", target="db", run_id="r1", kind="nightly")
    tags = [{"Key": k, "Value": v} for k, v in labels.items()]
    snap_id = ec2.create_snapshot(
        VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}]
    )["SnapshotId"]
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "prod"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[providers.aws]\nregion = "{REGION}"\nendpoint_url = "{moto_ec2.endpoint}"\n'
        f'[[targets]]\nname = "db"\nengine = "sqlite"\npath = "{tmp_path / "t.db"}"\n'
        f'snapshot = {{ provider = "aws", volume_ids = ["{volume}"] }}\n'
    )
    env = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    listed = safesnap("snapshots", "list", "--config", str(plan), "--json", cwd=tmp_path, env=env)
    assert [r["id"] for r in as_json(listed)["targets"][0]["snapshots"]] == [snap_id]
    no_zone = safesnap(
        "snapshots",
        "restore",
        snap_id,
        "--config",
        str(plan),
        "--target",
        "db",
        "--json",
        cwd=tmp_path,
        env=env,
    )
    assert no_zone.returncode == 10
    assert "availability zone" in as_json(no_zone)["error"]["message"]
    proc = safesnap(
        "snapshots",
        "restore",
        snap_id,
        "--config",
        str(plan),
        "--target",
        "db",
        "--zone",
        f"{REGION}a",
        "--json",
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    new_id = as_json(proc)["new_id"]
    assert ec2.describe_volumes(VolumeIds=[new_id])["Volumes"][0]["SnapshotId"] == snap_id


def test_list_region_filter(tmp_path: Path) -> None:
    plan, cloud = setup(tmp_path)
    n0 = next(s for s in cloud.all_snapshots() if s.id == "snap-n0")
    copy = cloud.copy_to_region(n0, "mem-2", dict(n0.labels))
    proc = safesnap(
        "snapshots", "list", "--config", str(plan), "--region", "mem-2", "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    rows = as_json(proc)["targets"][0]["snapshots"]
    assert [(r["id"], r["copied_from"]) for r in rows] == [(copy.id, "snap-n0")]


def test_prune_reports_failed_deletes_with_exit_10_and_keeps_going(tmp_path: Path) -> None:
    """Command provider whose delete fails for one snapshot: the others are still deleted."""
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    names = [f"safesnap--prod--db--2026110{i}T030000Z--nightly--r{i}" for i in range(1, 5)]
    for name in names:
        (snaps / name).mkdir()
    (snaps / names[0] / "busy").write_text("x")  # rmdir fails on this one: not empty
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "prod"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        "[retention]\nkeep_last = 1\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"
        f'[[targets]]\nname = "db"\nengine = "sqlite"\npath = "{tmp_path / "t.db"}"\n'
        f'snapshot = {{ provider = "command", create = "true", list = "ls -1 {snaps}", '
        f'delete = "rmdir {snaps}/{{name}}" }}\n'
    )
    proc = safesnap("snapshots", "prune", "--config", str(plan), "--json", cwd=tmp_path)
    assert proc.returncode == 10
    result = as_json(proc)["targets"][0]
    assert set(result["deleted"]) == {names[1], names[2]}
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith(names[0])
    assert sorted(p.name for p in snaps.iterdir()) == [names[0], names[3]]
