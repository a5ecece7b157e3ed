"""`safesnap run` and `safesnap snapshots list` end to end against the DigitalOcean and Hetzner
fakes: plan -> registry -> retry/count/log wrappers -> adapters -> spec-validated HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes.digitalocean_fake import DigitalOceanFake
from tests.fakes.hetzner_fake import HetznerFake


@pytest.fixture
def clouds() -> Iterator[tuple[DigitalOceanFake, HetznerFake]]:
    do, hz = DigitalOceanFake().start(), HetznerFake().start()
    do.action_polls = hz.action_polls = 2
    try:
        yield do, hz
        do.assert_clean()
        hz.assert_clean()
    finally:
        do.stop()
        hz.stop()


def write_plan(tmp: Path, do: DigitalOceanFake, hz: HetznerFake) -> Path:
    db = tmp / "tracker.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table torrents(id integer primary key, info_hash text)")
        conn.execute("insert into torrents(info_hash) values ('abc')")
    vid, did, sid = do.add_volume(), do.add_droplet(), hz.add_server()
    plan = tmp / "plan.toml"
    plan.write_text(f"""
plan = "e2e"
[destination]
path = "{tmp / "dest"}"
[[targets]]
name = "vol"
path = "{db}"
snapshot = {{ provider = "digitalocean", volume_ids = ["{vid}"], keep_days = 3 }}
[[targets]]
name = "drop"
path = "{db}"
snapshot = {{ provider = "digitalocean", droplet_id = {did}, copy_to = ["fra1"] }}
[[targets]]
name = "server"
path = "{db}"
snapshot = {{ provider = "hetzner", server_id = {sid}, protect = true }}
[providers.digitalocean]
endpoint_url = "{do.url}"
poll_interval = 0.05
[providers.hetzner]
endpoint_url = "{hz.url}"
poll_interval = 0.05
""")
    env = tmp / ".env"
    env.write_text(f"DIGITALOCEAN_TOKEN={do.token}\nHCLOUD_TOKEN={hz.token}\n")
    os.chmod(env, 0o600)
    return plan


def safesnap(tmp: Path, *args: str) -> tuple[int, dict[str, object], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIGITALOCEAN_TOKEN", "HCLOUD_TOKEN")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "safesnap",
            *args,
            "--config",
            str(tmp / "plan.toml"),
            "--env-file",
            str(tmp / ".env"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=120,
        env=env,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.mark.slow
def test_run_snapshots_every_target_through_throttling(clouds, tmp_path: Path) -> None:
    do, hz = clouds
    write_plan(tmp_path, do, hz)
    do.rate_limit(retry_after=1, path=r"/v2/volumes/.*/snapshots$")  # first create: 429
    hz.rate_limit(path=r"/create_image$")  # first create: 429 rate_limit_exceeded
    hz.server_error(503, path=r"/actions/")  # one poll fails with 503
    code, report, stderr = safesnap(tmp_path, "run")
    assert code == 0, stderr
    assert do.token not in stderr and hz.token not in stderr
    by_target = {t["name"]: t for t in report["targets"]}  # type: ignore[union-attr]
    assert all(t["ok"] for t in by_target.values())
    # Retried after the 429s without duplicates: exactly one snapshot per source.
    assert len([s for s in do.snapshots.values() if s["resource_type"] == "volume"]) == 1
    assert len(hz.images) == 1
    [image] = hz.images.values()
    assert image["protection"]["delete"] and image["labels"]["plan"] == "e2e"
    drop = [s["region"] for s in by_target["drop"]["snapshots"]]
    assert drop == ["nyc3", "fra1"]  # the droplet snapshot and its transfer

    code, listed, stderr = safesnap(tmp_path, "snapshots", "list")
    assert code == 0, stderr
    counts = {t["target"]: len(t["snapshots"]) for t in listed["targets"]}  # type: ignore[union-attr]
    assert counts == {"vol": 1, "drop": 2, "server": 1}
