"""What is in a destination directory: backups (artifacts with a valid manifest), orphans,
and temp files left by crashed runs.

Only an artifact whose manifest parses, is ours (`format`), names this very file and whose
stored size matches counts as a backup. Everything else is reported, never deleted, except
temp files of safesnap's one scheme (`.safesnap-tmp.<label>.<hex>.tmp`, see atomic.py) whose
writer is gone, which `sweep_temporaries` removes and `find_temporaries` reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from safesnap.artifacts.atomic import CLAIM_SUFFIX, SIDECARS, TEMP_SUFFIX
from safesnap.artifacts.store import MANIFEST_SUFFIX, parse_iso, read_manifest
from safesnap.errors import ArtifactError
from safesnap.output import log

# What artifact_name makes: `<target>.<YYYYmmddTHHMMSSZ>[_n].<kind>.<ext>[.zst|.gz|.xz]`.
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.\d{8}T\d{6}Z(_\d+)?\.[A-Za-z0-9_.-]+$")


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
    files = [p for p in _walk(dest) if not p.name.startswith(".")]  # temps, the lock
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


# --- temp files: what killed writers left behind ---------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """How one kind of temp name is judged: `min_age` seconds untouched on top of a free
    flock (0: the free lock alone decides), `sidecar`: owned by the file named without it."""

    pattern: re.Pattern[str]
    min_age: float = 0.0
    sidecar: bool = False


_SCHEME = r"\.safesnap-tmp\.[A-Za-z0-9_.-]+\.[0-9a-f]{16}"
_SIDECAR = "(?:" + "|".join(re.escape(s) for s in SIDECARS) + ")"
_LEGACY_SQLITE = r"\.safesnap-tmp-.+\.sqlite"  # the old glob `.safesnap-tmp-*.sqlite`
_RULES = (
    _Rule(re.compile(rf"^{_SCHEME}{re.escape(TEMP_SUFFIX)}$")),
    # Created and locked a few microseconds before its rename to `.tmp`; only a process killed
    # inside that window leaves one (empty), so a short age guard costs nothing.
    _Rule(re.compile(rf"^{_SCHEME}{re.escape(CLAIM_SUFFIX)}$"), min_age=60.0),
    _Rule(re.compile(rf"^{_SCHEME}{re.escape(TEMP_SUFFIX)}{_SIDECAR}$"), sidecar=True),
    # Names of safesnap <= 0.x, swept after an upgrade. Their writers did not lock from the
    # first instant (the SQLite copy only after the copy), hence the age guards they used.
    _Rule(re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$"), min_age=10.0),
    _Rule(re.compile(rf"^{_LEGACY_SQLITE}$"), min_age=600.0),
    _Rule(re.compile(rf"^{_LEGACY_SQLITE}{_SIDECAR}$"), sidecar=True),
)
# Where flock(2) is not supported the lock says nothing; a live writer's temp file is then
# told only by age. Nightly runs are 24 h apart, so a day-old leftover still goes next night.
NO_FLOCK_MIN_AGE = 6 * 3600.0


def temp_rule(name: str) -> _Rule | None:
    """The rule for a file name of safesnap's temp scheme (or a legacy one), else None."""
    if not name.startswith("."):
        return None
    return next((rule for rule in _RULES if rule.pattern.match(name)), None)


@dataclass(frozen=True)
class TempFile:
    path: Path
    bytes: int
    in_use: bool  # a live writer holds it (or it cannot be told): never swept

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.bytes, "in_use": self.in_use}


@dataclass(frozen=True)
class Sweep:
    """What `sweep_temporaries` removed."""

    removed: list[Path] = field(default_factory=list)
    bytes: int = 0

    def report(self) -> dict[str, Any]:
        """The fields every command adds to its JSON (and the run to its report)."""
        return {
            "swept_temp_files": len(self.removed),
            "swept_temp_bytes": self.bytes,
            "swept_temporaries": [str(p) for p in self.removed],
        }


def _lock_if_gone(path: Path) -> tuple[str, int | None]:
    """("gone", fd holding the writer's lock) when its writer is dead; else ("alive" |
    "nolock" | "unknown", None). O_NOFOLLOW: a symlink is never ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "unknown", None  # vanished, a symlink, or not ours to read: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return "alive", None
    except OSError:
        os.close(fd)
        return "nolock", None
    return "gone", fd


def _judge(path: Path, rule: _Rule, now: float, *, unlink: bool) -> TempFile | None:
    """Is this (non-sidecar) temp file abandoned? With `unlink`, remove it while holding its
    lock, so no writer can be between "lock free" and "removed"."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    state, fd = _lock_if_gone(path)
    age = now - st.st_mtime
    try:
        gone = (state == "gone" and age >= rule.min_age) or (
            state == "nolock" and age >= max(rule.min_age, NO_FLOCK_MIN_AGE)
        )
        if gone and unlink:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        if fd is not None:
            os.close(fd)
    return TempFile(path, st.st_size, in_use=not gone)


def _sidecar(path: Path, owners: dict[str, bool], *, unlink: bool) -> TempFile | None:
    """A SQLite sidecar lives and dies with its owner temp file: abandoned when the owner is
    gone from disk (its writer unlinks the owner first) or was judged abandoned."""
    owner = str(path)[: str(path).rfind("-")]
    gone = owners.get(owner, not os.path.lexists(owner))
    try:
        st = path.lstat()
        if gone and unlink and stat.S_ISREG(st.st_mode):
            path.unlink()
    except FileNotFoundError:
        return None
    return TempFile(path, st.st_size, in_use=not gone)


def _survey(dest: Path, *, unlink: bool) -> list[TempFile]:
    if not dest.is_dir():
        return []
    now = time.time()
    found: list[tuple[Path, _Rule]] = []
    for path in _walk(dest):
        rule = temp_rule(path.name)
        if rule is not None:
            found.append((path, rule))
    out: list[TempFile] = []
    owners: dict[str, bool] = {}  # owner path -> abandoned
    for path, rule in found:  # owners first: a sidecar's fate follows its owner's
        if not rule.sidecar and (temp := _judge(path, rule, now, unlink=unlink)) is not None:
            owners[str(path)] = not temp.in_use
            out.append(temp)
    for path, rule in found:
        if rule.sidecar and (temp := _sidecar(path, owners, unlink=unlink)) is not None:
            out.append(temp)
    return out


def find_temporaries(dest: Path) -> list[TempFile]:
    """Every temp file of safesnap's scheme under `dest` (recursively, hidden directories
    skipped), with whether a live writer holds it. Changes nothing."""
    return _survey(dest, unlink=False)


def sweep_temporaries(dest: Path) -> Sweep:
    """Remove every temp file of safesnap's scheme under `dest` that no live writer holds.

    The one sweeper for destinations: `run`, `backup` and `prune` call it at their start. A
    temp file goes when its writer's flock is free (the writer died: SIGKILL, OOM, power cut)
    and, for the few names that need one, its age guard has passed (see `_RULES`); its SQLite
    sidecars go with it. Nothing else is ever touched.
    """
    removed = [t for t in _survey(dest, unlink=True) if not t.in_use]
    sweep = Sweep([t.path for t in removed], sum(t.bytes for t in removed))
    if sweep.removed:
        log.info(
            "removed %d temp file(s) (%d bytes) left by an interrupted run under %s",
            len(sweep.removed), sweep.bytes, dest,
        )  # fmt: skip
        log.debug("removed: %s", ", ".join(str(p) for p in sweep.removed))
    return sweep
