"""Hetzner Cloud adapter against the spec-validated fake, as a contract backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hcloud import Client

from safesnap_providers.hetzner.adapter import Hetzner
from tests.contract.backends.digitalocean import dead_endpoint
from tests.contract.harness import ProviderHarness
from tests.fakes.hetzner_fake import HetznerFake

PAGE_SIZE = 2


def adapter(url: str, token: str, **kw: Any) -> Hetzner:
    return Hetzner(Client(token=token, api_endpoint=url, timeout=5), poll_interval=0.01, **kw)


def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    del tmp_path
    fake = HetznerFake()  # start() is typed as the base class
    fake.start()
    fake.page_size = PAGE_SIZE
    fake.action_polls = 2  # images stay `creating` for a couple of polls, as real ones do
    provider = adapter(fake.url, fake.token)

    def foreign() -> str:
        server = fake.servers[fake.add_server()]
        with fake._lock:
            image = fake._new_image(server, {"labels": {"owner": "someone-else"}})
            image["status"] = "available"
        return str(image["id"])

    def world() -> object:
        # The fake's resources, and every request that could have changed them.
        with fake._lock:
            mutating = [(m, path) for m, path in fake.calls if m != "GET"]
            return mutating, sorted(fake.images), sorted(fake.servers)

    def inject(*, status: int, retry_after: float | None = None, **_: Any) -> None:
        if status == 429:
            fake.rate_limit(retry_after=retry_after)
        else:
            fake.server_error(status)

    try:
        yield ProviderHarness(
            provider=provider,
            make_source=lambda: (str(fake.add_server()), "server"),
            region="global",
            other_region="fsn1",
            wait_timeout=10.0,
            inject=inject,
            extras={
                "make_foreign_snapshot": foreign,
                "exists": lambda sid: int(sid) in fake.images,
                "page_size": PAGE_SIZE,
                "missing_source": ("999999999", "server"),
                "unreachable": lambda: adapter(dead_endpoint() + "/v1", "t"),
                "fake": fake,
                "world": world,
                "restored_exists": lambda sid: int(sid) in fake.servers,
                "make_foreign_restore": fake.add_server,
            },
        )
        fake.assert_clean()
    finally:
        fake.stop()
