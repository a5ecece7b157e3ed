"""`safesnap drill --snapshots` end to end on DigitalOcean and Hetzner, against the
spec-validated fakes (tests/fakes): plan -> registry -> wrappers -> adapter -> HTTP.

The newest managed snapshot of the target becomes a volume (DO volume snapshot), a droplet (DO
droplet snapshot) or a server (Hetzner image); the drill waits until it is usable, then deletes
it. The promise checked every time: afterwards the fake holds only what was there before (the
source), also when the wait fails (a droplet that never boots, a server whose create action
ends in error).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hcloud import Client
from tests.fakes.digitalocean_fake import DigitalOceanFake
from tests.fakes.hetzner_fake import HetznerFake

from safesnap.errors import ProviderTimeoutError
from safesnap_providers.base import Snapshot, managed_labels
from safesnap_providers.digitalocean.adapter import label_tags
from safesnap_providers.hetzner.adapter import Hetzner

# A MySQL target in lock mode writes no artifact: the drill has only the snapshot to prove.
LOCK_TARGET = 'name = "tracker"\nengine = "mysql"\nquiesce = "lock"\ndatabases = ["tracker"]\n'
OLD, NEW = "2026-12-01T03:00:00Z", "2026-12-02T03:00:00Z"


def labels(run: str) -> dict[str, str]:
    return managed_labels(plan="prod", target="tracker", run_id=run, kind="nightly")


def drill(tmp_path: Path, snapshot: str, provider: str, url: str, token: str) -> Any:
    """Run the drill in its own process; returns (exit code, the target's only step)."""
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "prod"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[providers.{provider}]\nendpoint_url = "{url}"\npoll_interval = 0.02\n'
        "wait_timeout = 2\n"
        f"[[targets]]\n{LOCK_TARGET}snapshot = {{ {snapshot} }}\n"
    )
    env_file = tmp_path / ".env"
    name = "DIGITALOCEAN_TOKEN" if provider == "digitalocean" else "HCLOUD_TOKEN"
    env_file.write_text(f"{name}={token}\n")
    os.chmod(env_file, 0o600)
    env = {k: v for k, v in os.environ.items() if k not in ("DIGITALOCEAN_TOKEN", "HCLOUD_TOKEN")}
    proc = subprocess.run(
        [sys.executable, "-m", "safesnap", "drill", "--config", str(plan), "--env-file",
         str(env_file), "--snapshots", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    (target,) = json.loads(proc.stdout)["targets"]
    assert [s["name"] for s in target["steps"]] == ["snapshot-restore"], proc.stderr
    return proc.returncode, target["steps"][0]


# ---- DigitalOcean ------------------------------------------------------------------------
def do_volume_snapshots(fake: DigitalOceanFake, volume_id: str) -> list[str]:
    made = []
    for run, created in (("r1", OLD), ("r2", NEW)):
        sid = str(uuid.uuid4())
        fake.snapshots[sid] = {
            "id": sid, "name": f"safesnap-tracker-{run}", "created_at": created,
            "regions": ["nyc3"], "min_disk_size": 10, "size_gigabytes": 0.5,
            "resource_id": volume_id, "resource_type": "volume", "tags": label_tags(labels(run)),
        }  # fmt: skip
        made.append(sid)
    return made


def do_droplet_snapshot(fake: DigitalOceanFake, droplet_id: int) -> str:
    image = fake.add_droplet_image(droplet_id, "safesnap-tracker-r1")
    fake.snapshots[image]["tags"] = label_tags(labels("r1"))
    return image


def test_do_volume_from_the_newest_snapshot_is_created_and_deleted(
    tmp_path: Path, do_fake: DigitalOceanFake
) -> None:
    source = do_fake.add_volume()
    made = do_volume_snapshots(do_fake, source)

    code, step = drill(
        tmp_path, f'provider = "digitalocean", volume_ids = ["{source}"]', "digitalocean",
        do_fake.url, do_fake.token,
    )  # fmt: skip

    assert code == 0, step
    assert step["ok"] is True and step["volume_deleted"] is True
    assert step["snapshot_id"] == made[-1]
    made_volume = step["volume_id"]
    assert do_fake.count("POST", r"^/v2/volumes$") == 1
    assert do_fake.count("GET", f"/v2/volumes/{made_volume}$") >= 1  # waited for
    assert do_fake.count("DELETE", f"/v2/volumes/{made_volume}$") == 1
    assert list(do_fake.volumes) == [source]  # only the source is left


def test_do_droplet_from_a_droplet_snapshot_boots_and_is_deleted(
    tmp_path: Path, do_fake: DigitalOceanFake
) -> None:
    source = do_fake.add_droplet()
    image = do_droplet_snapshot(do_fake, source)
    do_fake.droplet_polls = 3  # `new` for three reads, then `active`

    code, step = drill(
        tmp_path, f'provider = "digitalocean", droplet_id = {source}', "digitalocean",
        do_fake.url, do_fake.token,
    )  # fmt: skip

    assert code == 0, step
    assert step["snapshot_id"] == image
    droplet = step["volume_id"]
    assert do_fake.count("GET", f"/v2/droplets/{droplet}$") >= 4  # polled until active
    assert do_fake.count("DELETE", f"/v2/droplets/{droplet}$") == 1
    assert list(do_fake.droplets) == [source]


def test_do_droplet_that_never_boots_times_out_and_is_deleted(
    tmp_path: Path, do_fake: DigitalOceanFake
) -> None:
    source = do_fake.add_droplet()
    do_droplet_snapshot(do_fake, source)
    do_fake.droplet_polls = 1_000_000

    code, step = drill(
        tmp_path, f'provider = "digitalocean", droplet_id = {source}', "digitalocean",
        do_fake.url, do_fake.token,
    )  # fmt: skip

    assert code == 15, step
    assert step["error"]["code"] == "provider_timeout"
    assert "not usable after" in step["error"]["message"]
    assert do_fake.count("POST", r"^/v2/droplets$") == 1
    assert list(do_fake.droplets) == [source]  # the droplet made was deleted all the same


# ---- Hetzner -----------------------------------------------------------------------------
def hz_images(fake: HetznerFake, server_id: int) -> list[str]:
    made = []
    for run, created in (("r1", OLD), ("r2", NEW)):
        image = fake._new_image(fake.servers[server_id], {"labels": labels(run)})
        image.update(status="available", created=created)
        made.append(str(image["id"]))
    return made


def test_hetzner_server_from_the_newest_snapshot_is_created_and_deleted(
    tmp_path: Path, hz_fake: HetznerFake
) -> None:
    source = hz_fake.add_server()
    made = hz_images(hz_fake, source)
    hz_fake.server_polls = 3  # the create action runs for three reads
    hz_fake.action_polls = 2  # and so does the delete action

    code, step = drill(
        tmp_path, f'provider = "hetzner", server_id = {source}', "hetzner",
        hz_fake.url, hz_fake.token,
    )  # fmt: skip

    assert code == 0, step
    assert step["snapshot_id"] == made[-1]
    assert hz_fake.count("POST", r"/servers$") == 1
    assert hz_fake.count("DELETE", f"/servers/{step['volume_id']}$") == 1
    kinds = [a.command for a in hz_fake.actions.values()]
    assert kinds == ["create_server", "delete_server"]
    assert all(a.status == "success" for a in hz_fake.actions.values())  # both waited for
    assert list(hz_fake.servers) == [source]


def test_hetzner_server_whose_creation_fails_is_deleted(
    tmp_path: Path, hz_fake: HetznerFake
) -> None:
    source = hz_fake.add_server()
    hz_images(hz_fake, source)
    hz_fake.fail_servers = True

    code, step = drill(
        tmp_path, f'provider = "hetzner", server_id = {source}', "hetzner",
        hz_fake.url, hz_fake.token,
    )  # fmt: skip

    assert code == 15, step
    assert step["error"]["code"] == "provider_failed"
    assert "action_failed" in step["error"]["message"]  # Hetzner's own error code, kept
    assert hz_fake.count("DELETE", r"/servers/\d+$") == 1
    assert list(hz_fake.servers) == [source]


def test_hetzner_wait_without_the_create_action_reads_the_server_status(
    hz_fake: HetznerFake,
) -> None:
    """Another process (or one that lost the action id) waits for the status: `off` after a
    create without start (`initializing` before), and a bounded timeout if it never gets there."""
    source = hz_fake.add_server()
    image = hz_images(hz_fake, source)[-1]
    hz_fake.server_polls = 3

    def adapter() -> Hetzner:
        client = Client(token=hz_fake.token, api_endpoint=hz_fake.url, timeout=5)
        return Hetzner(client, poll_interval=0.01, max_poll_interval=0.02)

    snap = Snapshot(id=image, source_id=str(source), region="global", state="completed",
                    created_at=datetime.now(UTC))  # fmt: skip
    server_id = adapter().restore_volume(snap, name="drill-status")
    assert hz_fake.servers[int(server_id)]["status"] == "initializing"

    adapter().wait_volume(server_id, timeout=5)  # a fresh adapter: no action id

    assert hz_fake.servers[int(server_id)]["status"] == "off"
    hz_fake.servers[int(server_id)]["status"] = "starting"  # never usable from here on
    with pytest.raises(ProviderTimeoutError):
        adapter().wait_volume(server_id, timeout=0.2)
    adapter().delete_volume(server_id)
    assert list(hz_fake.servers) == [source]
