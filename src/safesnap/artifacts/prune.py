"""Apply the retention policy to the backups in a destination directory.

Shared by `safesnap prune` and the plan runner. Per target, only artifacts with a valid
manifest are considered (catalog.scan); files without one are reported as orphans, never
deleted.

Delete order: the manifest first, then the artifact. The manifest is the claim "this is a
backup"; the invariant "a manifest exists only beside a complete artifact" is kept by writing it
last and removing it first. A crash between the two unlinks leaves an artifact without a
manifest, which every reader already treats as "not a backup" and `prune` reports as an orphan.
The opposite order could leave a manifest describing a missing file, which retention would
count as a kept backup that does not exist.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safesnap.artifacts.atomic import fsync_dir
from safesnap.artifacts.catalog import CatalogEntry, scan, sweep_temporaries
from safesnap.artifacts.store import manifest_path_for, parse_iso
from safesnap.retention import Policy, RetentionItem, decide


@dataclass
class PruneResult:
    dry_run: bool
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    swept_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "dry_run": self.dry_run,
            "kept": self.kept,
            "deleted": self.deleted,
            "reasons": self.reasons,
            "orphans": self.orphans,
            "problems": self.problems,
            "swept": self.swept,
            "swept_temp_files": len(self.swept),
            "swept_temp_bytes": self.swept_bytes,
        }


def _protected_until(manifest: dict[str, Any]) -> datetime | None:
    value = manifest.get("protected_until")
    if not value:
        return None
    try:
        return parse_iso(str(value))
    except ValueError:
        # Unreadable protection: treat as protected forever rather than delete by mistake.
        return datetime.max.replace(tzinfo=UTC)


def _item(entry: CatalogEntry) -> RetentionItem:
    return RetentionItem(
        id=str(entry.path),
        created_at=entry.created_at,
        verified=entry.verified,
        managed=True,
        protected_until=_protected_until(entry.manifest),
    )


def delete_artifact(artifact: Path) -> None:
    """Manifest first, then the artifact (see the module docstring for why)."""
    with contextlib.suppress(FileNotFoundError):
        manifest_path_for(artifact).unlink()
    fsync_dir(artifact.parent)
    with contextlib.suppress(FileNotFoundError):
        artifact.unlink()
    fsync_dir(artifact.parent)


def prune_destination(
    dest: Path,
    policy: Policy | Any,
    *,
    target: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    sweep: bool = True,
) -> dict[str, Any]:
    """Per target, keep what `policy` keeps and delete the rest (unless `dry_run`).

    `policy` is a retention.Policy or the plan's settings.Retention. Returns
    PruneResult.to_dict(): the `safesnap prune --json` object.
    """
    return _prune(dest, _policy(policy), target, dry_run, now or datetime.now(UTC), sweep).to_dict()


def _policy(policy: Policy | Any) -> Policy:
    return policy if isinstance(policy, Policy) else Policy.from_model(policy)


def _prune(
    dest: Path, policy: Policy, target: str | None, dry_run: bool, now: datetime, sweep: bool
) -> PruneResult:
    result = PruneResult(dry_run=dry_run)
    if sweep and not dry_run:
        swept = sweep_temporaries(dest)
        result.swept, result.swept_bytes = [str(p) for p in swept.removed], swept.bytes
    found = scan(dest, target=target)
    result.orphans = [str(p) for p in found.orphans]
    result.problems = found.problems
    by_target: dict[str, list[CatalogEntry]] = {}
    for entry in found.entries:
        by_target.setdefault(entry.target, []).append(entry)
    for name in sorted(by_target):
        decision = decide([_item(e) for e in by_target[name]], now, policy)
        result.kept += [i.id for i in decision.keep]
        result.deleted += [i.id for i in decision.delete]
        result.reasons.update(decision.reasons)
        if not dry_run:
            for item in decision.delete:
                delete_artifact(Path(item.id))
    return result
