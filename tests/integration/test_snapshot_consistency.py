"""Consistency stated honestly (issue #9), with a real SQLite database and the spec-validated
DigitalOcean fake: a create request that outlives the quiesce hold leaves a snapshot that is
labelled and reported as not application-consistent; `hold_until_done` keeps the hold until the
snapshot has finished, bounded by max_lock_hold_seconds."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.digitalocean_fake import DigitalOceanFake

from safesnap.config.plan import load_plan
from safesnap.errors import QuiesceError
from safesnap.run.request import RunRequest
from safesnap.run.snapshot_step import take_snapshots
from safesnap_providers.registry import build_provider


@pytest.fixture
def fake() -> Iterator[DigitalOceanFake]:
    server = DigitalOceanFake().start()
    try:
        yield server
        server.assert_clean()
    finally:
        server.stop()


def _setup(tmp: Path, fake: DigitalOceanFake, table: str, hold: float) -> tuple[Any, Any, Path]:
    db = tmp / "tracker.db"
    with sqlite3.connect(db) as conn:
        conn.execute("pragma journal_mode=wal")
        conn.execute("create table t(id integer primary key)")
    env = tmp / "env"
    env.write_text(f"DIGITALOCEAN_TOKEN={fake.token}\n")
    env.chmod(0o600)
    plan_file = tmp / "plan.toml"
    plan_file.write_text(f"""
plan = "c"
[destination]
path = "{tmp / "dest"}"
[[targets]]
name = "db"
path = "{db}"
max_lock_hold_seconds = {hold}
snapshot = {{ provider = "digitalocean", {table} }}
[providers.digitalocean]
endpoint_url = "{fake.url}"
poll_interval = 0.05
""")
    plan = load_plan(plan_file, env_file=env)
    return plan, plan.targets[0], env


def test_create_that_outlives_the_hold_is_labelled_not_consistent(
    tmp_path: Path, fake: DigitalOceanFake
) -> None:
    vid = fake.add_volume()
    plan, target, env = _setup(tmp_path, fake, f'volume_ids = ["{vid}"]', hold=0.3)
    provider = build_provider(target.snapshot, plan, env_file=env)
    fake.latency = 0.8  # every request takes longer than the whole hold may last
    with pytest.raises(QuiesceError) as info:
        take_snapshots(provider, target, RunRequest(env_file=env), "20261204T010000Z-c1", plan)
    fake.latency = 0
    (snap,) = fake.snapshots.values()
    assert "NOT application-consistent" in info.value.message and snap["id"] in info.value.message
    assert "labelled consistency=crash" in info.value.message
    assert "safesnap:consistency:crash" in snap["tags"]  # findable as such, later too
    listed = provider.list_snapshots({"plan": "c", "target": "db"})
    assert [s.labels.get("consistency") for s in listed] == ["crash"]


def test_hold_until_done_keeps_writers_out_until_the_snapshot_finished(
    tmp_path: Path, fake: DigitalOceanFake
) -> None:
    did = fake.add_droplet()
    table = f"droplet_id = {did}, hold_until_done = true"
    plan, target, env = _setup(tmp_path, fake, table, hold=10)
    fake.action_polls = 3
    provider = build_provider(target.snapshot, plan, env_file=env)
    facts = take_snapshots(provider, target, RunRequest(env_file=env), "20261204T010000Z-c2", plan)
    assert facts["held_until_done"] is True
    assert facts["snapshots"][0]["state"] == "completed"
    # The hold lasted across the action's polls, not just the request.
    assert facts["lock_held_seconds"] >= 2 * 0.05


def test_hold_until_done_is_bounded_by_max_lock_hold(
    tmp_path: Path, fake: DigitalOceanFake
) -> None:
    did = fake.add_droplet()
    table = f"droplet_id = {did}, hold_until_done = true"
    plan, target, env = _setup(tmp_path, fake, table, hold=1.5)
    fake.action_seconds = 2.0  # finishes after the hold's limit
    provider = build_provider(target.snapshot, plan, env_file=env)
    started = time.monotonic()
    facts = take_snapshots(provider, target, RunRequest(env_file=env), "20261204T010000Z-c3", plan)
    assert facts["held_until_done"] is False  # released in time, then waited outside
    assert facts["lock_held_seconds"] < 1.5  # never past max_lock_hold_seconds
    assert facts["snapshots"][0]["state"] == "completed"
    assert time.monotonic() - started >= 2.0
