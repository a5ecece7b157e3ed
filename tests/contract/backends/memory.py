"""The in-memory reference provider, as a contract backend.

It keeps its "cloud" in a state file, as it does when a plan names `provider = "memory"`
(separate CLI invocations share it); the file is what the dry-run contract compares."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safesnap.errors import ProviderError
from safesnap_providers.base import Snapshot
from safesnap_providers.testing.memory import MemoryProvider
from tests.contract.harness import ProviderHarness


def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    state = tmp_path / "memory-cloud.json"
    mem = MemoryProvider(
        region="mem-1", regions=("mem-1", "mem-2"), pending_polls=2, page_size=3, state_file=state
    )

    def foreign() -> str:
        vol = mem.add_volume()
        snap = Snapshot(
            id="snap-foreign",
            source_id=vol,
            region="mem-1",
            state="completed",
            created_at=datetime.now(UTC),
            labels={"owner": "someone-else"},
        )
        return mem.add_snapshot(snap).id

    def inject(*, status: int, retry_after: float | None = None, **_: Any) -> None:
        transient = status == 429 or status >= 500
        mem.fail_next(
            ProviderError(
                f"HTTP {status}", transient=transient, retry_after=retry_after, status=status
            )
        )

    def exists(snapshot_id: str) -> bool:
        return any(s.id == snapshot_id for s in mem.all_snapshots())

    def world() -> object:
        # Parsed, not raw bytes: every transaction (reads too) rewrites the file.
        return json.loads(state.read_text(encoding="utf-8")) if state.exists() else None

    yield ProviderHarness(
        provider=mem,
        make_source=lambda: (mem.add_volume(), "volume"),
        region="mem-1",
        other_region="mem-2",
        inject=inject,
        extras={
            "make_foreign_snapshot": foreign,
            "exists": exists,
            "page_size": 3,
            "make_instance": lambda: mem.add_instance(volumes=3),
            "missing_source": ("vol-missing", "volume"),
            "world": world,
        },
    )
