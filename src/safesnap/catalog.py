"""What is in a destination directory: backups (artifacts with a valid manifest), orphans,
and temp files left by crashed runs.

Only an artifact whose manifest parses, is ours (`format`), names this very file and whose
stored size matches counts as a backup. Everything else is reported, never deleted, except
temp files (`.<name>.<hex>.tmp`) whose writer is gone, which `sweep_temporaries` removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from safesnap.artifacts import MANIFEST_SUFFIX, parse_iso, read_manifest
from safesnap.atomic import TEMP_PREFIX, TEMP_SUFFIX
from safesnap.errors import ArtifactError

# Exactly what atomic.temp_path_for makes; nothing else is ever swept.
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
# What artifact_name makes: `<target>.<YYYYmmddTHHMMSSZ>[_n].<kind>.<ext>[.zst|.gz|.xz]`.
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.\d{8}T\d{6}Z(_\d+)?\.[A-Za-z0-9_.-]+$")
# A live writer refreshes its temp file's mtime with every chunk; this much silence plus a
# free flock means the writer is gone. Tests pass 0 after killing the writer.
DEFAULT_TEMP_MIN_AGE = 10.0


@dataclass(frozen=True)
class CatalogEntry:
    path: Path
    manifest: dict[str, Any]
    created_at: datetime

    @property
    def target(self) -> str:
        return str(self.manifest.get("target"))

    @property
    def verified(self) -> bool:
        return self.manifest.get("verified") is True

    def summary(self) -> dict[str, Any]:
        """The `safesnap list --json` row."""
        m = self.manifest
        row = {k: m.get(k) for k in ("target", "engine", "kind", "created_at", "bytes")}
        row.update({k: m.get(k) for k in ("source_bytes", "sha256", "compression")})
        row.update({k: m.get(k) for k in ("verified_at", "verify_error")})
        row.update(artifact=str(self.path), verified=self.verified)
        return row


@dataclass
class Scan:
    entries: list[CatalogEntry] = field(default_factory=list)  # newest first
    orphans: list[Path] = field(default_factory=list)  # artifact-like files without a manifest
    problems: list[str] = field(default_factory=list)  # manifests that did not check out


def _walk(dest: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(dest):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            yield Path(root) / name


def _entry(manifest_path: Path) -> CatalogEntry:
    artifact = manifest_path.with_name(manifest_path.name[: -len(MANIFEST_SUFFIX)])
    manifest = read_manifest(artifact)
    size = artifact.stat().st_size
    if manifest.get("bytes") != size:
        raise ArtifactError(
            f"{artifact}: size {size} does not match manifest {manifest.get('bytes')}"
        )
    try:
        created = parse_iso(str(manifest["created_at"]))
    except (KeyError, ValueError):
        raise ArtifactError(f"{manifest_path}: created_at missing or not ISO-8601") from None
    return CatalogEntry(path=artifact, manifest=manifest, created_at=created)


def scan(dest: Path, *, target: str | None = None) -> Scan:
    """Every backup under `dest` (recursively), newest first; plus orphans and problems."""
    if not dest.is_dir():
        raise ArtifactError(f"destination not found or not a directory: {dest}")
    out = Scan()
    files = [p for p in _walk(dest) if not p.name.startswith(TEMP_PREFIX)]
    described = set()
    for path in files:
        if not path.name.endswith(MANIFEST_SUFFIX):
            continue
        described.add(path.with_name(path.name[: -len(MANIFEST_SUFFIX)]))
        try:
            entry = _entry(path)
        except ArtifactError as exc:
            out.problems.append(exc.message)
            continue
        if target is None or entry.target == target:
            out.entries.append(entry)
    out.entries.sort(key=lambda e: (e.created_at, e.path.name), reverse=True)
    out.orphans = [
        p
        for p in files
        if p not in described
        and not p.name.endswith(MANIFEST_SUFFIX)
        and _ARTIFACT_NAME.match(p.name)
        and (target is None or p.name.startswith(target + "."))
    ]
    return out


def _writer_gone(path: Path) -> bool:
    """True when no process holds the flock the writer takes on its temp file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True  # no flock on this file system: the age check alone decides
    finally:
        os.close(fd)
    return True


def sweep_temporaries(dest: Path, *, min_age: float = DEFAULT_TEMP_MIN_AGE) -> list[Path]:
    """Remove temp files left by crashed writers under `dest`; return what was removed.

    A temp file is removed only if it has our exact temp-name shape, has not been written for
    `min_age` seconds and its writer's flock is free (the kernel drops it when a process dies).
    """
    if not dest.is_dir():
        return []
    removed: list[Path] = []
    now = time.time()
    for path in _walk(dest):
        if not (path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX)):
            continue
        if not _TEMP_NAME.match(path.name):
            continue
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime >= min_age and _writer_gone(path):
                path.unlink()
                removed.append(path)
    return removed


def prune_destination(
    dest: Path,
    policy: Any,
    *,
    target: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Re-exported for the plan runner; see safesnap.pruning (imported late: it imports us)."""
    from safesnap.pruning import prune_destination as prune

    return prune(dest, policy, target=target, dry_run=dry_run, now=now)
