"""Retention on a replica bucket: the replica's own `retention`, else the plan's.

Candidates are only backups safesnap wrote (listing.scan_replica: its prefix and naming, a
manifest that checks out); orphans and foreign objects are reported, never deleted. The pure
policy (safesnap.retention) keeps the newest verified backup and the newest one whatever the
counts say. Delete order mirrors the upload: the manifest first, then the object, so an
interruption leaves at worst an orphan object (never a manifest describing a missing object).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safesnap.config.plan import ObjectStoreReplica, Retention
from safesnap.replicas.client import object_store_client, s3_errors, s3_failure
from safesnap.replicas.listing import ReplicaEntry, scan_replica
from safesnap.retention import Policy, RetentionItem, decide


@dataclass
class ReplicaPrune:
    replica: str
    dry_run: bool = False
    kept: list[str] = field(default_factory=list)  # object keys
    deleted: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    foreign: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "replica": self.replica,
            "dry_run": self.dry_run,
            "kept": self.kept,
            "deleted": self.deleted,
            "orphans": self.orphans,
            "foreign_objects": self.foreign,
            "problems": self.problems,
        }


def _item(entry: ReplicaEntry) -> RetentionItem:
    return RetentionItem(id=entry.key, created_at=entry.created_at, verified=entry.verified)


def prune_replica(
    replica: ObjectStoreReplica,
    plan_retention: Retention,
    *,
    target: str | None = None,
    env_file: Path | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ReplicaPrune:
    """Apply retention per target in the bucket; return what was kept and deleted."""
    policy = Policy.from_model(replica.retention or plan_retention)
    client = object_store_client(replica, env_file=env_file)
    found = scan_replica(client, replica, target)
    result = ReplicaPrune(replica.name, dry_run, orphans=found.orphans, problems=found.problems)
    result.foreign = len(found.foreign)
    by_target: dict[str, list[ReplicaEntry]] = {}
    for entry in found.entries:
        by_target.setdefault(entry.target, []).append(entry)
    for name in sorted(by_target):
        entries = {e.key: e for e in by_target[name]}
        decision = decide([_item(e) for e in entries.values()], now or datetime.now(UTC), policy)
        result.kept += [i.id for i in decision.keep]
        for item in decision.delete:
            if not dry_run:
                _delete(client, replica, entries[item.id])
            result.deleted.append(item.id)
    return result


def _delete(client: Any, replica: ObjectStoreReplica, entry: ReplicaEntry) -> None:
    for key in (entry.manifest_key, entry.key):  # manifest first (module docstring)
        try:
            client.delete_object(Bucket=replica.bucket, Key=key)
        except s3_errors() as exc:
            raise s3_failure(exc, replica, f"deleting {key} from", key) from None
