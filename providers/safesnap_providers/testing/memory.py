"""In-memory provider: the reference implementation of the SnapshotProvider contract.

The contract suite runs against it first, the pipeline tests use it, and `safesnap snapshots`
can drive it from a plan (`provider = "memory"`) with a `state_file`, so separate CLI
invocations see the same "cloud". Knobs make it behave like the real ones where that matters:
snapshots stay `pending` for a few polls (as EBS and Hetzner actions do), listing is paginated,
capabilities are configurable, and `fail_next` injects provider errors into the next calls.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from safesnap.errors import ProviderError, ProviderTimeoutError
from safesnap_providers.base import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    Capabilities,
    Snapshot,
    SnapshotRequest,
    labels_match,
)
from safesnap_providers.config import ExternalSnapshot
from safesnap_providers.polling import Pace, PollState, wait_done

FULL_CAPABILITIES = Capabilities(
    volume_snapshots=True,
    server_snapshots=True,
    cross_region_copy=True,
    point_in_time_at_request=True,
    multi_volume_consistent=True,
    restore_to_volume=True,
    drill_volumes=True,
    notes=("in-memory reference provider",),
)


@dataclass
class _State:
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {region, instance}
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> snapshot fields


def _to_json(snap: Snapshot, polls_left: int) -> dict[str, Any]:
    return {
        "id": snap.id,
        "source_id": snap.source_id,
        "region": snap.region,
        "state": snap.state,
        "created_at": snap.created_at.isoformat(),
        "labels": dict(snap.labels),
        "name": snap.name,
        "size_gb": snap.size_gb,
        "copied_from": snap.copied_from,
        "polls_left": polls_left,
        "protected": snap.protected,
    }


def _from_json(data: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        id=data["id"],
        source_id=data["source_id"],
        region=data["region"],
        state=data["state"],
        created_at=datetime.fromisoformat(data["created_at"]),
        labels=dict(data["labels"]),
        name=data.get("name", ""),
        size_gb=data.get("size_gb"),
        copied_from=data.get("copied_from"),
        protected=bool(data.get("protected", False)),
    )


class MemoryProvider:
    name = "memory"
    client_retries: frozenset[str] = frozenset()

    def __init__(
        self,
        *,
        region: str = "mem-1",
        regions: tuple[str, ...] = ("mem-1", "mem-2"),
        capabilities: Capabilities = FULL_CAPABILITIES,
        pending_polls: int = 1,
        page_size: int = 50,
        state_file: Path | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.01,
        volume_polls: int = 0,
        volume_error: bool = False,
        restore_reply_delay: float = 0.0,
    ) -> None:
        self.region = region
        self.regions = regions
        self._capabilities = capabilities
        self.pending_polls = pending_polls
        # Restored volumes: `creating` for this many wait_volume polls, then available (or
        # error, to test what a drill does when a volume never becomes usable).
        self.volume_polls = volume_polls
        self.volume_error = volume_error
        # Seconds between creating a restored volume and returning its id: the window in which
        # a real API has made the volume but the client has not yet read the reply.
        self.restore_reply_delay = restore_reply_delay
        self.page_size = page_size
        self.pages_read = 0
        self.state_file = state_file
        self.now = now
        # A fixed interval: the fake's snapshots finish after a number of polls, not a time.
        self.pace = Pace(poll_interval, poll_interval, factor=1.0, sleep=sleep)
        self._state = _State()
        self._lock = threading.RLock()
        self._failures: list[tuple[str | None, ProviderError]] = []

    # -- test hooks ---------------------------------------------------------------------------

    def add_volume(self, region: str | None = None, instance: str | None = None) -> str:
        with self._tx() as st:
            vol = f"vol-{uuid.uuid4().hex[:10]}"
            st.volumes[vol] = {"region": region or self.region, "instance": instance}
            return vol

    def add_instance(self, volumes: int = 2) -> str:
        instance = f"i-{uuid.uuid4().hex[:10]}"
        for _ in range(volumes):
            self.add_volume(instance=instance)
        return instance

    def add_snapshot(self, snap: Snapshot, *, polls_left: int = 0) -> Snapshot:
        """Put a snapshot in place as-is (unlabelled ones, old ones, orphans...)."""
        with self._tx() as st:
            st.snapshots[snap.id] = _to_json(snap, polls_left)
        return snap

    def all_snapshots(self) -> list[Snapshot]:
        """Every snapshot in every region, labelled or not (what the console would show)."""
        with self._tx() as st:
            return [_from_json(d) for d in st.snapshots.values()]

    def fail_next(self, error: ProviderError, *, times: int = 1, method: str | None = None) -> None:
        """The next `times` calls (of `method`, or of any method) raise `error`."""
        with self._lock:
            self._failures.extend([(method, error)] * times)

    # -- the contract -------------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return self._capabilities

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        self._maybe_fail("create_snapshot")
        with self._tx() as st:
            volumes = self._source_volumes(st, request)
            out = []
            for vol in volumes:
                labels = {**request.labels, "source": request.source_id}
                snap = Snapshot(
                    id=f"snap-{uuid.uuid4().hex[:12]}",
                    source_id=vol,
                    region=st.volumes[vol]["region"] if vol in st.volumes else self.region,
                    state="pending" if self.pending_polls else "completed",
                    created_at=self.now(),
                    labels=labels,
                    name=request.name,
                    size_gb=1.0,
                )
                st.snapshots[snap.id] = _to_json(snap, self.pending_polls)
                out.append(snap)
            return out

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        def poll() -> tuple[PollState, Snapshot]:
            self._maybe_fail("wait")
            current = self._poll(snapshot.id)
            return current.state, current

        return wait_done(
            poll,
            self.pace,
            timeout=timeout,
            on_error=lambda: ProviderError(
                f"snapshot {snapshot.id} failed", provider=self.name, resource_id=snapshot.id
            ),
            on_timeout=lambda: ProviderTimeoutError(
                f"snapshot {snapshot.id} still pending after {timeout:.0f}s",
                provider=self.name,
                resource_id=snapshot.id,
                transient=False,
            ),
        )

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        self._maybe_fail("list_snapshots")
        where = region or self.region
        out: list[Snapshot] = []
        for page in self._pages(where):
            out.extend(s for s in page if labels_match(s.labels, labels))
        return out

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        self._maybe_fail("delete_snapshot")
        with self._tx() as st:
            data = st.snapshots.get(snapshot.id)
            if data is None:
                return  # already gone: deleting is idempotent
            current = _from_json(data)
            if not current.managed:
                raise ProviderError(
                    f"refusing to delete snapshot {snapshot.id}: not labelled managed-by=safesnap",
                    provider=self.name,
                    resource_id=snapshot.id,
                )
            del st.snapshots[snapshot.id]

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        self._maybe_fail("copy_to_region")
        if not self._capabilities.cross_region_copy:
            raise ProviderError(
                "this provider cannot copy snapshots across regions",
                provider=self.name,
                resource_id=snapshot.id,
            )
        if region not in self.regions:
            raise ProviderError(f"unknown region {region!r}", provider=self.name)
        with self._tx() as st:
            if snapshot.id not in st.snapshots:
                raise ProviderError(
                    f"snapshot {snapshot.id} not found", provider=self.name, resource_id=snapshot.id
                )
            copy = Snapshot(
                id=f"snap-{uuid.uuid4().hex[:12]}",
                source_id=snapshot.source_id,
                region=region,
                state="pending" if self.pending_polls else "completed",
                created_at=self.now(),
                labels=dict(labels),
                name=snapshot.name,
                size_gb=snapshot.size_gb,
                copied_from=snapshot.id,
            )
            st.snapshots[copy.id] = _to_json(copy, self.pending_polls)
            return copy

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        del size  # in-memory volumes have no sizes
        self._maybe_fail("restore_volume")
        if not self._capabilities.restore_to_volume:
            raise ProviderError(
                "this provider cannot restore snapshots to volumes",
                provider=self.name,
                resource_id=snapshot.id,
            )
        with self._tx() as st:
            data = st.snapshots.get(snapshot.id)
            if data is None or data["state"] != "completed":
                raise ProviderError(
                    f"snapshot {snapshot.id} not found or not completed",
                    provider=self.name,
                    resource_id=snapshot.id,
                )
            vol = f"vol-{uuid.uuid4().hex[:10]}"
            st.volumes[vol] = {
                "region": data["region"],
                "instance": None,
                "name": name,
                "zone": zone,
                "from_snapshot": snapshot.id,
                "state": "creating",
                "polls_left": self.volume_polls,
                "labels": {MANAGED_BY_KEY: MANAGED_BY_VALUE},
            }
        if self.restore_reply_delay:
            time.sleep(self.restore_reply_delay)
        return vol

    def wait_volume(self, volume_id: str, *, region: str | None = None, timeout: float) -> None:
        del region  # volume ids are unique across the fake's regions

        def poll() -> tuple[PollState, None]:
            self._maybe_fail("wait_volume")
            with self._tx() as st:
                volume = st.volumes.get(volume_id)
                if volume is None:
                    raise ProviderError(
                        f"volume {volume_id} not found", provider=self.name, resource_id=volume_id
                    )
                if volume.get("state") == "creating":
                    if volume.get("polls_left", 0) > 0:
                        volume["polls_left"] -= 1
                        return "pending", None
                    volume["state"] = "error" if self.volume_error else "available"
                return ("error" if volume.get("state") == "error" else "completed"), None

        wait_done(
            poll,
            self.pace,
            timeout=timeout,
            on_error=lambda: ProviderError(
                f"volume {volume_id} ended in state error", provider=self.name,
                resource_id=volume_id,
            ),
            on_timeout=lambda: ProviderTimeoutError(
                f"volume {volume_id} not available after {timeout:.0f}s", provider=self.name,
                resource_id=volume_id, transient=False,
            ),
        )  # fmt: skip

    def delete_volume(self, volume_id: str, *, region: str | None = None) -> None:
        del region
        self._maybe_fail("delete_volume")
        with self._tx() as st:
            volume = st.volumes.get(volume_id)
            if volume is None:
                return
            if not labels_match(volume.get("labels") or {}, {}):
                raise ProviderError(
                    f"refusing to delete volume {volume_id}: not managed by safesnap",
                    provider=self.name,
                    resource_id=volume_id,
                )
            del st.volumes[volume_id]

    # -- internals ----------------------------------------------------------------------------

    def _maybe_fail(self, method: str) -> None:
        with self._lock:
            for i, (which, error) in enumerate(self._failures):
                if which in (None, method):
                    del self._failures[i]
                    raise error

    def _source_volumes(self, st: _State, request: SnapshotRequest) -> list[str]:
        if request.source_kind != "instance":
            if request.source_kind == "volume" and request.source_id not in st.volumes:
                raise ProviderError(
                    f"volume {request.source_id} not found",
                    provider=self.name,
                    resource_id=request.source_id,
                )
            return [request.source_id]
        vols = [v for v, d in st.volumes.items() if d.get("instance") == request.source_id]
        if not vols:
            raise ProviderError(
                f"instance {request.source_id} not found",
                provider=self.name,
                resource_id=request.source_id,
            )
        return vols

    def _poll(self, snap_id: str) -> Snapshot:
        with self._tx() as st:
            data = st.snapshots.get(snap_id)
            if data is None:
                raise ProviderError(
                    f"snapshot {snap_id} not found", provider=self.name, resource_id=snap_id
                )
            if data["state"] == "pending":
                data["polls_left"] = max(0, int(data["polls_left"]) - 1)
                if data["polls_left"] == 0:
                    data["state"] = "completed"
            return _from_json(data)

    def _pages(self, region: str) -> Iterator[list[Snapshot]]:
        with self._tx() as st:
            items = [_from_json(d) for d in st.snapshots.values() if d["region"] == region]
        for start in range(0, max(len(items), 1), self.page_size):
            self.pages_read += 1
            yield items[start : start + self.page_size]

    @contextmanager
    def _tx(self) -> Iterator[_State]:
        """Exclusive access to the state; with a state file, load before and save after."""
        with self._lock:
            if self.state_file is None:
                yield self._state
                return
            with FileLock(str(self.state_file) + ".lock", timeout=10):
                state = self._load()
                yield state
                self._save(state)

    def _load(self) -> _State:
        assert self.state_file is not None
        if not self.state_file.exists():
            return _State()
        raw = json.loads(self.state_file.read_text(encoding="utf-8"))
        return _State(volumes=raw["volumes"], snapshots=raw["snapshots"])

    def _save(self, state: _State) -> None:
        assert self.state_file is not None
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"volumes": state.volumes, "snapshots": state.snapshots}))
        os.replace(tmp, self.state_file)


def from_settings(
    config: object | None,
    spec: ExternalSnapshot | None,
    *,
    env_file: Path | None = None,
    region: str | None = None,
) -> MemoryProvider:
    """Plan options (all optional): state_file, region, regions, pending_polls,
    cross_region_copy. `config` is unused: the memory provider has no [providers] section.
    The plan validates `provider = "memory"` as an ExternalSnapshot (not a built-in cloud),
    so the options arrive as its extra fields."""
    del config, env_file
    extra: dict[str, Any] = dict(spec.model_extra or {}) if spec is not None else {}
    caps = FULL_CAPABILITIES
    if extra.get("cross_region_copy") is False:
        caps = Capabilities(**{**caps.__dict__, "cross_region_copy": False})
    state_file = extra.get("state_file")
    return MemoryProvider(
        region=region or str(extra.get("region", "mem-1")),
        regions=tuple(extra.get("regions", ("mem-1", "mem-2"))),
        capabilities=caps,
        pending_polls=int(extra.get("pending_polls", 0 if state_file else 1)),
        volume_polls=int(extra.get("volume_polls", 0)),
        volume_error=bool(extra.get("volume_error", False)),
        restore_reply_delay=float(extra.get("restore_reply_delay", 0.0)),
        state_file=Path(state_file) if state_file else None,
    )
