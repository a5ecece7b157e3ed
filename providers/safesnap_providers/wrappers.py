"""Cross-cutting behaviour wrapped around any provider, restic style.

`registry.build_provider` stacks them as DryRun(Logging(Retrying(Counting(adapter)))):
Counting sits innermost so `calls` counts real API calls, retries included; DryRun outermost so
no mutating call can slip past it. Each wrapper forwards unknown attributes (`calls`, `region`,
`client_retries`, test hooks) to the provider it wraps.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from safesnap_providers.base import (
    Capabilities,
    RestoredVolumes,
    Snapshot,
    SnapshotProvider,
    SnapshotRequest,
)
from safesnap_providers.retry import DEFAULT_POLICY, RetryPolicy, call_with_retry, retry_create

log = logging.getLogger("safesnap.providers")


class _Wrapper:
    def __init__(self, inner: SnapshotProvider) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, item: str) -> Any:
        # Only called for attributes not found normally: pass through to the wrapped provider.
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    @property
    def region(self) -> str | None:
        return self.inner.region

    @property
    def client_retries(self) -> frozenset[str]:
        return self.inner.client_retries


class Counting(_Wrapper):
    """Counts calls that reach the provider: `calls` (total) and `by_method`."""

    def __init__(self, inner: SnapshotProvider) -> None:
        super().__init__(inner)
        self.by_method: Counter[str] = Counter()

    @property
    def calls(self) -> int:
        return sum(self.by_method.values())

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        self.by_method["create_snapshot"] += 1
        return self.inner.create_snapshot(request)

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        self.by_method["wait"] += 1
        return self.inner.wait(snapshot, timeout=timeout)

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        self.by_method["list_snapshots"] += 1
        return self.inner.list_snapshots(labels, region=region)

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        self.by_method["delete_snapshot"] += 1
        self.inner.delete_snapshot(snapshot)

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        self.by_method["copy_to_region"] += 1
        return self.inner.copy_to_region(snapshot, region, labels)

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        self.by_method["restore_volume"] += 1
        return self.inner.restore_volume(snapshot, name=name, zone=zone, size=size)


class Retrying(_Wrapper):
    """Retries transient ProviderErrors through `safesnap_providers.retry`.

    Methods named in the provider's `client_retries` attribute are already retried by its
    client library (botocore `standard` mode, hcloud's own 429/502/504 loop) and pass through
    once, so retries never multiply. Non-idempotent calls (create, copy) look for what an
    earlier attempt may have made before trying again; restore_volume is never retried.
    """

    handles_retries = True  # tells safesnap_providers.retry.retry_create not to retry a second time

    def __init__(self, inner: SnapshotProvider, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        super().__init__(inner)
        self.policy = policy
        self._client_retries: frozenset[str] = frozenset(inner.client_retries)

    def _policy(self, method: str) -> RetryPolicy:
        if method in self._client_retries:
            return replace(self.policy, max_attempts=1)
        return self.policy

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        return retry_create(self.inner, request, policy=self._policy("create_snapshot"))

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        """The adapter's polling loop already repeats a failed poll (polling.poll_until); a
        transient error outside it (labelling after the action, the final read) repeats the
        wait with the time that is LEFT, so `timeout` bounds the whole and an early error
        never starts a fresh full wait, nor a late one loses it to the retry budget."""
        clock = self.policy.clock
        deadline = clock() + timeout
        policy = replace(self._policy("wait"), budget_seconds=timeout)
        return call_with_retry(
            lambda: self.inner.wait(snapshot, timeout=max(0.0, deadline - clock())),
            policy=policy,
            describe=f"wait {snapshot.id}",
        )

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        return call_with_retry(
            lambda: self.inner.list_snapshots(labels, region=region),
            policy=self._policy("list_snapshots"),
            describe="list_snapshots",
        )

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        call_with_retry(
            lambda: self.inner.delete_snapshot(snapshot),
            policy=self._policy("delete_snapshot"),
            describe=f"delete_snapshot {snapshot.id}",
        )

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        attempts = [0]

        def attempt() -> Snapshot:
            attempts[0] += 1
            if attempts[0] > 1:
                found = [
                    s
                    for s in self.inner.list_snapshots(labels, region=region)
                    if s.copied_from == snapshot.id
                ]
                if found:
                    return found[0]
            return self.inner.copy_to_region(snapshot, region, labels)

        return call_with_retry(
            attempt, policy=self._policy("copy_to_region"), describe=f"copy {snapshot.id}"
        )

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        return self.inner.restore_volume(snapshot, name=name, zone=zone, size=size)

    def delete_volume(self, volume_id: str, *, region: str | None = None) -> None:
        """`RestoredVolumes.delete_volume` (only called where `drill_volumes`): idempotent, so
        a transient failure is retried; a drill must not leave a billed volume, droplet or
        server behind because of one 503."""
        volumes = cast(RestoredVolumes, self.inner)
        call_with_retry(
            lambda: volumes.delete_volume(volume_id, region=region),
            policy=self._policy("delete_volume"),
            describe=f"delete_volume {volume_id}",
        )


class Logging(_Wrapper):
    """Logs every mutating call and its duration at INFO, reads at DEBUG. Never logs secrets:
    only ids, regions and label keys/values (which never hold secrets)."""

    def _timed(self, level: int, what: str, fn: Any) -> Any:
        started = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            log.log(
                level,
                "%s %s failed after %.2fs: %s",
                self.name,
                what,
                time.monotonic() - started,
                getattr(exc, "message", type(exc).__name__),
            )
            raise
        log.log(level, "%s %s ok in %.2fs", self.name, what, time.monotonic() - started)
        return result

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        out: list[Snapshot] = self._timed(
            logging.INFO,
            f"create_snapshot {request.source_kind}={request.source_id}",
            lambda: self.inner.create_snapshot(request),
        )
        return out

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        out: Snapshot = self._timed(
            logging.INFO, f"wait {snapshot.id}", lambda: self.inner.wait(snapshot, timeout=timeout)
        )
        return out

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        out: list[Snapshot] = self._timed(
            logging.DEBUG,
            f"list_snapshots region={region or 'default'}",
            lambda: self.inner.list_snapshots(labels, region=region),
        )
        return out

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        self._timed(
            logging.INFO,
            f"delete_snapshot {snapshot.id}",
            lambda: self.inner.delete_snapshot(snapshot),
        )

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        out: Snapshot = self._timed(
            logging.INFO,
            f"copy_to_region {snapshot.id} -> {region}",
            lambda: self.inner.copy_to_region(snapshot, region, labels),
        )
        return out

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        out: str = self._timed(
            logging.INFO,
            f"restore_volume {snapshot.id}",
            lambda: self.inner.restore_volume(snapshot, name=name, zone=zone, size=size),
        )
        return out


class DryRun(_Wrapper):
    """Reads pass through; create/delete/copy/restore do nothing and say what they would do.

    Returned snapshots are `completed`, with ids starting `dry-run-`, so a dry-run pipeline
    runs to the end without waiting; `wait` returns them unchanged without an API call.
    """

    def _region(self) -> str:
        return self.inner.region or ""

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        log.info("dry-run: would snapshot %s %s", request.source_kind, request.source_id)
        return [
            Snapshot(
                id=f"dry-run-{uuid.uuid4().hex[:12]}",
                source_id=request.source_id,
                region=self._region(),
                state="completed",
                created_at=datetime.now(UTC),
                labels=dict(request.labels),
                name=request.name,
            )
        ]

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        if snapshot.id.startswith("dry-run-"):
            return snapshot
        return self.inner.wait(snapshot, timeout=timeout)

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        return self.inner.list_snapshots(labels, region=region)

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        log.info("dry-run: would delete snapshot %s", snapshot.id)

    def adopt_unlabelled(self, request: SnapshotRequest) -> list[Snapshot]:
        """Labelling is a change: a dry run adopts nothing."""
        del request
        return []

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        log.info("dry-run: would copy snapshot %s to %s", snapshot.id, region)
        return replace(
            snapshot,
            id=f"dry-run-{uuid.uuid4().hex[:12]}",
            region=region,
            labels=dict(labels),
            state="completed",
            copied_from=snapshot.id,
        )

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        del size  # nothing is created
        log.info(
            "dry-run: would create volume %s from snapshot %s in %s",
            name,
            snapshot.id,
            zone or "the default zone",
        )
        return f"dry-run-{uuid.uuid4().hex[:12]}"


def unwrap(provider: SnapshotProvider) -> SnapshotProvider:
    """The adapter inside any stack of wrappers (tests and `--verbose` diagnostics)."""
    while isinstance(provider, _Wrapper):
        provider = provider.inner
    return provider
