"""Artifacts: streamed compression + sha256 + atomic write + manifest.

API CONTRACT (stub; the implementation fills these bodies without changing signatures).

An artifact is one compressed file plus a manifest `<artifact>.manifest.json` beside it. The
manifest is written (atomically) only after the artifact is complete, so an artifact without a
manifest is never counted as a backup. Files are created 0600. Names sort by time within a
target and say what they are: `<target>.<YYYYmmddTHHMMSSZ>.<kind>.<ext>[.zst|.gz|.xz]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "safesnap-manifest/1"


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    manifest_path: Path
    sha256: str  # of the stored (compressed) file
    bytes: int  # stored size
    source_bytes: int  # uncompressed bytes fed in
    seconds: float
    manifest: Mapping[str, Any]


def artifact_name(target: str, created_at: datetime, kind: str, ext: str, compression: str) -> str:
    raise NotImplementedError


def write_artifact(
    source: BinaryIO,
    dest_dir: Path,
    *,
    target: str,
    engine: str,
    ext: str,
    compression: str = "zstd",
    level: int | None = None,
    kind: str = "manual",
    manifest: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> ArtifactInfo:
    """Stream `source` through the compressor into dest_dir atomically; write the manifest."""
    raise NotImplementedError


def read_manifest(artifact: Path) -> dict[str, Any]:
    raise NotImplementedError


@contextmanager
def open_decompressed(artifact: Path) -> Iterator[BinaryIO]:
    """Stream the artifact's original bytes; raises IntegrityError at the end on a bad sha256."""
    raise NotImplementedError
    yield  # pragma: no cover


def decompress_to(artifact: Path, out: Path, progress: Callable[[int], None] | None = None) -> Path:
    raise NotImplementedError
