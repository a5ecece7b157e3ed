"""DigitalOcean adapter against the spec-validated fake, as a contract backend.

The harness snapshots volumes (safesnap's main DigitalOcean use), so capabilities say
cross_region_copy=False (volume snapshots cannot move). Droplet snapshots and their transfer
are covered in tests/integration/test_digitalocean_fake.py.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safesnap_providers.digitalocean.adapter import DigitalOcean
from safesnap_providers.digitalocean.api import DoApi
from tests.contract.harness import ProviderHarness
from tests.fakes.digitalocean_fake import DigitalOceanFake

PAGE_SIZE = 2


def dead_endpoint() -> str:
    """A 127.0.0.1 URL nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    del tmp_path
    fake = DigitalOceanFake()  # start() is typed as the base class
    fake.start()
    fake.page_size = PAGE_SIZE
    provider = DigitalOcean(DoApi(fake.token, fake.url, timeout=5), poll_interval=0.01)

    def foreign() -> str:
        vid = fake.add_volume()
        snap_id = str(uuid.uuid4())
        with fake._lock:
            fake.snapshots[snap_id] = {
                "id": snap_id,
                "name": "someone-elses",
                "created_at": "2026-01-01T00:00:00Z",
                "regions": ["nyc3"],
                "min_disk_size": 10,
                "size_gigabytes": 1.0,
                "resource_id": vid,
                "resource_type": "volume",
                "tags": ["owner:someone-else"],
            }
        return snap_id

    def world() -> object:
        # The fake's resources, and every request that could have changed them.
        with fake._lock:
            mutating = [(m, path) for m, path in fake.calls if m != "GET"]
            return mutating, sorted(fake.snapshots), sorted(fake.volumes), sorted(fake.droplets)

    def inject(*, status: int, retry_after: float | None = None, **_: Any) -> None:
        if status == 429:
            fake.rate_limit(retry_after=int(retry_after or 1))
        else:
            fake.server_error(status)

    try:
        yield ProviderHarness(
            provider=provider,
            make_source=lambda: (fake.add_volume(), "volume"),
            region="nyc3",
            other_region="fra1",
            wait_timeout=10.0,
            inject=inject,
            extras={
                "make_foreign_snapshot": foreign,
                "exists": lambda sid: sid in fake.snapshots,
                "page_size": PAGE_SIZE,
                "missing_source": (str(uuid.uuid4()), "volume"),
                "unreachable": lambda: DigitalOcean(
                    DoApi("t", dead_endpoint(), timeout=2), poll_interval=0.01
                ),
                "fake": fake,
                "world": world,
                # a restored volume id is a UUID, a droplet id an integer (restored.kind)
                "restored_exists": lambda rid: (
                    int(rid) in fake.droplets if rid.isdigit() else rid in fake.volumes
                ),
                "make_foreign_restore": fake.add_volume,
            },
        )
        fake.assert_clean()
    finally:
        fake.stop()
