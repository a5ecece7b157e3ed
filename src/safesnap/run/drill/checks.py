"""Restore one artifact into the scratch place and check what came out, per engine.

Each check goes through the engine's own restore or verify (engines/), so a drill exercises
the code an operator runs on the bad day, not a second copy of it:
- SQLite: `restore` into the scratch directory (temp file, integrity_check, row counts against
  the manifest, rename);
- MySQL: `verify` reloads every database of the dump into a `safesnap_verify_*` scratch database
  on the server, compares row counts with the manifest and drops it (also on failure and on
  SIGTERM: engines/mysql/engine.py);
- files: `restore` into the scratch directory, then every restored file is hashed again and the
  tree compared with the manifest's per-file sizes, sha256 and symlink targets, so what lands
  on disk is proven, not only what the archive claims.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from safesnap.artifacts.codecs import CHUNK
from safesnap.engines import get_engine
from safesnap.errors import ArtifactError, IntegrityError

Check = Callable[[Path, Mapping[str, Any], Path, Mapping[str, Any]], dict[str, Any]]


def restore_and_check(
    artifact: Path, manifest: Mapping[str, Any], scratch: Path, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Facts for the report, `restored_bytes` among them; IntegrityError when the restored data
    does not match the manifest, any engine error as the engine raises it."""
    engine = str(manifest.get("engine"))
    check = _CHECKS.get(engine)
    if check is None:
        raise ArtifactError(f"{artifact.name}: no drill for engine {engine!r}")
    return check(artifact, manifest, scratch, options)


def _sqlite(
    artifact: Path, manifest: Mapping[str, Any], scratch: Path, options: Mapping[str, Any]
) -> dict[str, Any]:
    to = scratch / "restored.sqlite"
    details = get_engine("sqlite").restore(
        artifact, manifest, str(to), force=False, options=options
    )
    counts: dict[str, int] = details["row_counts"]
    return {
        "integrity_result": details["integrity_result"],
        "tables": len(counts),
        "rows": sum(counts.values()),
        "row_counts": counts,
        "restored_bytes": int(details["bytes"]),
    }


def _mysql(
    artifact: Path,
    manifest: Mapping[str, Any],
    scratch: Path,  # noqa: ARG001 (the dump streams into the client; the scratch is the server's)
    options: Mapping[str, Any],
) -> dict[str, Any]:
    # Restored bytes: the SQL reloaded (the dump's plain size).
    details = get_engine("mysql").verify(artifact, manifest, options)
    return {
        "databases": details["databases"],
        "rows": details["rows"],
        "row_counts": details["row_counts"],
        "restored_bytes": int(manifest.get("source_bytes") or 0),
    }


def _files(
    artifact: Path, manifest: Mapping[str, Any], scratch: Path, options: Mapping[str, Any]
) -> dict[str, Any]:
    tree = scratch / "restored"
    details = get_engine("files").restore(
        artifact, manifest, str(tree), force=False, options=options
    )
    restored = check_tree(tree, manifest, artifact.name)
    return {"files": details["files"], "symlinks": details["symlinks"], "restored_bytes": restored}


def check_tree(tree: Path, manifest: Mapping[str, Any], label: str) -> int:
    """Compare the restored tree with the manifest; return the bytes of its regular files."""
    files: Mapping[str, Any] = manifest.get("files") or {}
    links: Mapping[str, Any] = manifest.get("links") or {}
    found_files, found_links, others = _inventory(tree)
    bad = sorted((set(files) ^ found_files) | (set(links) ^ found_links) | others)
    total = 0
    for name in sorted(set(files) & found_files):
        size, digest = _hash(tree / name)
        total += size
        if size != files[name].get("bytes") or digest != files[name].get("sha256"):
            bad.append(name)
    bad += [n for n in sorted(set(links) & found_links) if os.readlink(tree / n) != links[n]]
    if bad:
        shown = ", ".join(sorted(bad)[:10]) + (
            f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        )
        raise IntegrityError(f"{label}: the restored tree differs from the manifest: {shown}")
    return total


def _inventory(tree: Path) -> tuple[set[str], set[str], set[str]]:
    """Relative names under `tree` (never following links): regular files, symlinks, and
    anything else (a device or FIFO is never what safesnap restores)."""
    files: set[str] = set()
    links: set[str] = set()
    others: set[str] = set()
    for root, dirs, names in os.walk(tree):
        base = Path(root)
        for name in names + [d for d in dirs if (base / d).is_symlink()]:
            path = base / name
            rel = path.relative_to(tree).as_posix()
            if path.is_symlink():
                links.add(rel)
            elif path.is_file():
                files.add(rel)
            else:
                others.add(rel)
    return files, links, others


def _hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


_CHECKS: dict[str, Check] = {"sqlite": _sqlite, "mysql": _mysql, "files": _files}
