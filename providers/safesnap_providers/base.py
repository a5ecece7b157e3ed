"""The one seam between safesnap and a cloud: `SnapshotProvider`.

Modelled on restic's backend interface and Litestream's ReplicaClient: a handful of methods
whose docstrings are the contract, declared capabilities the pipeline branches on (never
`isinstance`), and errors the adapter classifies itself as transient or permanent
(`safesnap.errors.ProviderError.transient`), so that `safesnap_providers.retry` alone decides
on retries.
Cross-cutting behaviour (retry, dry-run, call counting, logging) wraps a provider from outside
(see wrappers.py); adapters stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol, runtime_checkable

from safesnap_providers.timestamps import as_utc, stamp

SnapshotState = Literal["pending", "completed", "error"]

# Every resource safesnap creates carries these labels (tags on AWS, labels on Hetzner, tags on
# DigitalOcean). Retention and orphan sweeps only ever touch resources with MANAGED_BY set.
MANAGED_BY_KEY = "managed-by"
MANAGED_BY_VALUE = "safesnap"


SourceKind = Literal["volume", "server", "instance"]


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; the pipeline and plan validation read these, nothing else."""

    volume_snapshots: bool
    server_snapshots: bool
    cross_region_copy: bool  # can a *volume/server snapshot* be copied to another region?
    point_in_time_at_request: bool  # True: the lock may be released once create_snapshot returns
    max_snapshots_per_volume: int | None = None
    min_interval_seconds: float = 0.0  # minimum time between two snapshots of one volume
    multi_volume_consistent: bool = False  # one call snapshots several volumes at one instant
    restore_to_volume: bool = False
    lists_snapshots: bool = True  # False: list_snapshots cannot see anything (nothing to prune)
    notes: tuple[str, ...] = ()
    # True: the adapter is also a `RestoredVolumes` (wait for and delete what restore_volume
    # made), so `safesnap drill --snapshots` can prove a snapshot restores and clean up after.
    drill_volumes: bool = False


@dataclass(frozen=True)
class SnapshotRequest:
    """What to snapshot. `source_id` is a volume id, or a server/droplet/instance id when
    `source_kind` says so. `labels` must be attached at creation time (never afterwards), so a
    crashed run still leaves a findable, labelled resource."""

    source_id: str
    name: str
    labels: Mapping[str, str]
    source_kind: SourceKind = "volume"
    description: str = ""


@dataclass(frozen=True)
class Snapshot:
    id: str
    source_id: str
    region: str
    state: SnapshotState
    created_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    size_gb: float | None = None
    name: str = ""
    protected: bool = False
    copied_from: str | None = None  # id of the source snapshot for a cross-region copy

    @property
    def managed(self) -> bool:
        return self.labels.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE


@runtime_checkable
class SnapshotProvider(Protocol):
    """A cloud (or local command) that snapshots volumes or servers.

    Every method raises `safesnap.errors.ProviderError` (never a client-library exception), with
    `transient=True` only where a retry may help (429, 5xx, timeouts, throttling, concurrency
    limits) and `retry_after` set when the API said how long to wait. Methods must not retry
    on their own beyond what the client library already does.
    """

    name: str

    # Read-only properties, so an adapter may declare them as plain attributes (`region = ...`)
    # or compute them (DigitalOcean reads its home region lazily).
    @property
    def region(self) -> str | None:
        """The home region: where snapshots are made and listed when no region is given.
        None when it is not known (DigitalOcean without a volume or droplet to read it from);
        a single value ("global", "local") where regions do not apply."""
        ...

    @property
    def client_retries(self) -> frozenset[str]:
        """Names of the methods whose client library already retries transient failures
        (botocore `standard` mode, hcloud's own loop), so `wrappers.Retrying` calls them once
        and retries never multiply. Empty when the adapter leaves every retry to safesnap."""
        ...

    def capabilities(self) -> Capabilities:
        """Static facts about this provider. Pure; never calls the API."""
        ...

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        """Start a snapshot and return it (state `pending` or `completed`): one Snapshot for a
        volume or server, one per volume for an `instance` set (AWS CreateSnapshots, taken at
        one instant).

        Returns as soon as the provider has fixed the point in time (at request for EBS, DO,
        Hetzner). NOT idempotent: callers that retry must first `list_snapshots` for the run's
        labels and reuse a snapshot found there. Raises ProviderError.
        """
        ...

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        """Poll until `snapshot` is `completed` (return it) or `error` (raise ProviderError,
        permanent). Bounded polling with backoff; raises ProviderTimeoutError after `timeout`
        seconds. Idempotent."""
        ...

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        """Every snapshot carrying all of `labels` (an empty mapping still only lists snapshots
        labelled managed-by=safesnap), in `region` or the provider's default. Follows
        pagination. Idempotent."""
        ...

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Delete one snapshot. Refuses (ProviderError, permanent) a snapshot without the
        managed-by=safesnap label. Idempotent: deleting a snapshot that is already gone succeeds."""
        ...

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        """Start a copy of a completed snapshot into `region`; return the new (pending) copy,
        labelled at creation. Raises ProviderError (permanent) when capabilities say
        cross_region_copy is False. NOT idempotent (look for the labelled copy first)."""
        ...

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        """Create a new volume (or server) from `snapshot` and return its id. Never overwrites
        anything existing. NOT idempotent. `size`: the provider's size or server type for a
        new server (DigitalOcean size slug, Hetzner server type); None picks the smallest one
        whose disk fits the snapshot. Providers that restore volumes at the snapshot's own
        size ignore it."""
        ...


@runtime_checkable
class RestoredVolumes(Protocol):
    """Optional, for providers whose capabilities say `drill_volumes`: follow a volume made by
    `restore_volume` to the end of a drill. Both raise ProviderError like every method."""

    def wait_volume(self, volume_id: str, *, region: str | None = None, timeout: float) -> None:
        """Poll until the volume is available (usable); ProviderError (permanent) when it
        ends in error, ProviderTimeoutError after `timeout` seconds. Idempotent."""
        ...

    def delete_volume(self, volume_id: str, *, region: str | None = None) -> None:
        """Delete the volume. Refuses (ProviderError, permanent) one without the
        managed-by=safesnap label. Idempotent: a volume already gone succeeds."""
        ...


@runtime_checkable
class AdoptsUnlabelled(Protocol):
    """A provider that can leave an unlabelled resource behind and find it again.

    DigitalOcean's droplet snapshot action takes no tags: the image is tagged only after the
    action completes, so a wait that failed (or a run that died) leaves a billed image that
    list and prune never see. The next run calls `adopt_unlabelled` before it snapshots."""

    def adopt_unlabelled(self, request: SnapshotRequest) -> list[Snapshot]:
        """Find images of `request.source_id` named like this target's snapshots
        (`safesnap-<target>-...`) that carry no managed-by label, label them as this plan's
        and target's nightly snapshots (so retention deletes them in time) and return them.
        Idempotent: an adopted image is labelled and not found again. Raises ProviderError."""
        ...


@runtime_checkable
class HasProviderClock(Protocol):
    """A provider that can tell its own time: the HTTP `Date` of its last response. Minimum
    intervals compare it with the provider's own snapshot times, never with the host clock."""

    def provider_now(self) -> datetime | None:
        """The provider's time at its last answer (aware UTC), or None before any answer."""
        ...


@runtime_checkable
class Relabels(Protocol):
    """A provider that can add labels to a snapshot after its creation (AWS tags, DigitalOcean
    tags, Hetzner labels). Used only to say what was learnt afterwards: that a snapshot's
    request outlived the quiesce hold (`consistency=crash`)."""

    def add_labels(self, snapshot: Snapshot, labels: Mapping[str, str]) -> None:
        """Add (or overwrite) `labels` on a snapshot safesnap made. Idempotent. Raises
        ProviderError."""
        ...


CONSISTENCY_KEY = "consistency"
CRASH_CONSISTENT = "crash"  # the request outlived the quiesce hold


def http_date(value: str | None) -> datetime | None:
    """An HTTP `Date` header as an aware UTC datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        return as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def api_call_count(provider: object) -> int:
    """API calls made so far through a provider wrapped by `wrappers.Counting` (0 otherwise)."""
    return int(getattr(provider, "calls", 0))


def labels_match(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    if have.get(MANAGED_BY_KEY) != MANAGED_BY_VALUE:
        return False
    return all(have.get(k) == v for k, v in want.items())


def managed_labels(
    *, plan: str, target: str, run_id: str, kind: str, expires_at: datetime | None = None
) -> dict[str, str]:
    """The label set for a new resource. Values stay within every provider's label syntax
    (Hetzner: [a-z0-9A-Z._-], at most 63 chars), so timestamps use a compact form."""
    labels = {
        MANAGED_BY_KEY: MANAGED_BY_VALUE,
        "plan": plan,
        "target": target,
        "run-id": run_id,
        "kind": kind,
    }
    if expires_at is not None:
        labels["expires-at"] = stamp(expires_at)
    return labels


__all__: Sequence[str] = (
    "MANAGED_BY_KEY",
    "MANAGED_BY_VALUE",
    "AdoptsUnlabelled",
    "Capabilities",
    "HasProviderClock",
    "Relabels",
    "RestoredVolumes",
    "Snapshot",
    "SnapshotProvider",
    "SnapshotRequest",
    "api_call_count",
    "labels_match",
    "managed_labels",
)
