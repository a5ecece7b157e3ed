"""Is this artifact a backup we can restore? Checksums first, then the engine's content check.

Shared by `safesnap verify`, `safesnap restore` (checksum part) and the plan runner.
1. checksum: the stored file's sha256 and size, and the decompressed content's sha256 and
   size, are recomputed in one streaming pass and compared with the manifest;
2. content: the engine named in the manifest checks that the data restores
   (SQLite: integrity_check of a decompressed copy; MySQL: load into a scratch database).
Only when both hold is the manifest rewritten (atomically) with `verified: true`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safesnap.artifacts.codecs import CHUNK
from safesnap.artifacts.store import (
    iso,
    open_decompressed,
    read_manifest,
    resolve_artifact,
    write_manifest,
)
from safesnap.engines import get_engine
from safesnap.errors import ArtifactError, IntegrityError
from safesnap.output import log

Progress = Callable[[int, int | None], None]


def check_checksums(artifact: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Stream the whole artifact once; IntegrityError (with what differs) when it does not match."""
    manifest = read_manifest(artifact)
    total = manifest.get("source_bytes")
    done = 0
    with open_decompressed(artifact) as reader:
        while chunk := reader.read(CHUNK):
            done += len(chunk)
            if progress is not None:
                progress(done, total if isinstance(total, int) else None)
    return manifest


def verify_artifact(
    artifact: Path,
    options: Mapping[str, Any],
    *,
    progress: Progress | None = None,
    mark: bool = True,
) -> dict[str, Any]:
    """Checksums, then the engine's content check; mark the manifest verified on success.

    Returns the `safesnap verify --json` object. Raises ArtifactError (not a backup) or
    IntegrityError (checksum or content check failed). On IntegrityError the manifest is
    rewritten with `verified: false` and the reason: an artifact verified yesterday and damaged
    today must stop counting as "the newest verified backup", which retention always keeps.
    Other failures (the engine cannot reach a scratch server, its user lacks a privilege:
    PrivilegeError) leave the manifest alone: the artifact is unchecked, not damaged.
    """
    started = time.monotonic()
    artifact = resolve_artifact(artifact)
    try:
        manifest = check_checksums(artifact, progress)
        engine = get_engine(str(manifest.get("engine")))
        integrity = engine.verify(artifact, manifest, options)
    except IntegrityError as exc:
        if mark:
            _mark_failed(artifact, exc.message)
        raise
    return {
        "ok": True,
        "artifact": str(artifact),
        "sha256": manifest.get("sha256"),
        "checksum_ok": True,
        "integrity": integrity,
        "marked_verified": _mark_verified(artifact) if mark else False,
        "seconds": round(time.monotonic() - started, 3),
    }


def _mark_verified(artifact: Path) -> bool:
    """Record the success in the manifest; a read-only copy (a mounted snapshot, a replica
    download) still verifies, it just cannot remember it."""
    updated = dict(read_manifest(artifact))  # re-read: keep whatever changed meanwhile
    updated.update(verified=True, verified_at=iso(datetime.now(UTC)))
    try:
        write_manifest(artifact, updated)
    except OSError as exc:
        log.warning("%s verified, but the manifest cannot be updated: %s", artifact.name, exc)
        return False
    return True


def _mark_failed(artifact: Path, reason: str) -> None:
    try:
        updated = dict(read_manifest(artifact))
        updated.update(verified=False, verify_failed_at=iso(datetime.now(UTC)))
        updated["verify_error"] = reason[:500]
        write_manifest(artifact, updated)
    except (OSError, ArtifactError) as exc:  # the IntegrityError being raised matters more
        log.warning("%s: could not record the failed verification: %s", artifact.name, exc)
