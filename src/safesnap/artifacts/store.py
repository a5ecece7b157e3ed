"""Artifacts: streamed compression + sha256 + atomic write + manifest.

An artifact is one compressed file plus a manifest `<artifact>.manifest.json` beside it. The
manifest is written (atomically) only after the artifact is complete, so an artifact without a
manifest is never counted as a backup. Files are created 0600. Names sort by time within a
target and say what they are: `<target>.<YYYYmmddTHHMMSSZ>.<kind>.<ext>[.zst|.gz|.xz]`; a second
artifact in the same second gets `_1`, `_2`, ... after the timestamp instead of overwriting.

Guarantees (documented in docs/reference/artifacts.md, tested in tests/unit/test_artifacts.py):
memory is bounded by `compression.CHUNK` and zstd's job buffers whatever the input size; a
crash at any point leaves the complete artifact or only a hidden `.*.tmp` file (swept by
`catalog.sweep_temporaries`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from safesnap import __version__
from safesnap.artifacts.atomic import atomic_write, fsync_dir, publish, temp_file
from safesnap.artifacts.codecs import (
    CHUNK,
    SUFFIXES,
    check_codec,
    check_threads,
    compressing_writer,
    decompressing_reader,
)
from safesnap.artifacts.destination import destination_error, make_private_dirs
from safesnap.artifacts.hashio import GuardedSource, HashingReader, HashingWriter, SourceFailed
from safesnap.artifacts.writeback import SteadyWriter, drop_cache
from safesnap.errors import ArtifactError, ConfigError, IntegrityError
from safesnap_providers.timestamps import as_utc
from safesnap_providers.timestamps import stamp as compact_stamp

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "safesnap-manifest/1"
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_SEQ = 1000
# Fields safesnap computes itself; engine extras passed as `manifest=` cannot override them.
_COMPUTED = (
    "format", "artifact", "target", "engine", "kind", "created_at", "finished_at",
    "compression", "sha256", "bytes", "source_bytes", "source_sha256", "tool_version",
)  # fmt: skip


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    manifest_path: Path
    sha256: str  # of the stored (compressed) file
    bytes: int  # stored size
    source_bytes: int  # uncompressed bytes fed in
    seconds: float
    manifest: Mapping[str, Any]


utc = as_utc  # a naive datetime is taken to already be UTC (documented)


def iso(dt: datetime) -> str:
    return utc(dt).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return utc(datetime.fromisoformat(value))


def artifact_name(
    target: str, created_at: datetime, kind: str, ext: str, compression: str, *, seq: int = 0
) -> str:
    for label, part in (("target", target), ("kind", kind), ("extension", ext)):
        if not _NAME_PART.match(part):
            raise ConfigError(f"invalid artifact {label} {part!r}: use letters, digits, _ . -")
    check_codec(compression)
    stamp = compact_stamp(created_at)
    if seq:
        stamp += f"_{seq}"
    return f"{target}.{stamp}.{kind}.{ext}{SUFFIXES[compression]}"


def manifest_path_for(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def _pump(
    source: IO[bytes], sink: IO[bytes], progress: Callable[[int], None] | None
) -> tuple[str, int]:
    """Copy source to sink in CHUNK pieces; return sha256 and size of what was read."""
    digest, done = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        sink.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done)
    return digest.hexdigest(), done


def write_artifact(
    source: BinaryIO,
    dest_dir: Path,
    *,
    target: str,
    engine: str,
    ext: str,
    compression: str = "zstd",
    level: int | None = None,
    threads: int = 1,
    kind: str = "manual",
    manifest: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> ArtifactInfo:
    """Stream `source` through the compressor into dest_dir atomically; write the manifest.

    `threads` is the number of zstd compression workers (0: one per core; other codecs ignore
    it). `created_at` is the consistent point (default: now). If the source raises, nothing is left
    behind and the source's exception propagates unchanged. A failure on the destination (full,
    read-only, ...) raises ArtifactError, also leaving nothing behind. If writing the manifest
    fails, the artifact is removed too: without its manifest it would not be a backup.
    """
    created = utc(created_at or datetime.now(UTC))
    artifact_name(target, created, kind, ext, compression)  # validate before touching disk
    check_codec(compression, level)
    check_threads(threads)
    started = time.monotonic()
    try:
        final, stored, source_sha, source_bytes = _write(
            source, dest_dir, (target, created, kind, ext, compression), (level, threads), progress
        )
        data = _build_manifest(manifest, final.name, target, engine, kind, compression, created)
        data.update(sha256=stored.hash.hexdigest(), bytes=stored.count)
        data.update(source_sha256=source_sha, source_bytes=source_bytes)
        try:
            write_manifest(final, data)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
    except SourceFailed as exc:
        raise exc.original from None  # the source's own error, for the engine to classify
    except OSError as exc:  # ENOSPC, EROFS, EACCES, EFBIG... on the destination
        error = destination_error(exc, dest_dir, doing="write the artifact into")
        error.target = target
        raise error from None
    return ArtifactInfo(
        path=final,
        manifest_path=manifest_path_for(final),
        sha256=data["sha256"],
        bytes=stored.count,
        source_bytes=source_bytes,
        seconds=time.monotonic() - started,
        manifest=data,
    )


def _write(
    source: IO[bytes],
    dest_dir: Path,
    name_parts: tuple[str, datetime, str, str, str],
    codec_options: tuple[int | None, int],
    progress: Callable[[int], None] | None,
) -> tuple[Path, HashingWriter, str, int]:
    """Stream into a temp file, fsync, publish under a free name, fsync the directory."""
    target, created, kind, ext, codec = name_parts
    level, threads = codec_options
    make_private_dirs(dest_dir)
    with temp_file(dest_dir, artifact_name(target, created, kind, ext, codec)) as (tmp, fh):
        stored = HashingWriter(
            cast(IO[bytes], SteadyWriter(fh))
        )  # flushed in steps, not in one burst at fsync
        with compressing_writer(cast(IO[bytes], stored), codec, level, threads) as sink:
            guarded = cast(IO[bytes], GuardedSource(source))
            source_sha, source_bytes = _pump(guarded, sink, progress)
        fh.flush()
        os.fsync(fh.fileno())
        drop_cache(fh.fileno())  # written once, read by no one now: leave the cache to others
        final = _publish_unique(tmp, dest_dir, target, created, kind, ext, codec)
    fsync_dir(dest_dir)
    return final, stored, source_sha, source_bytes


def _publish_unique(
    tmp: Path, dest: Path, target: str, created: datetime, kind: str, ext: str, codec: str
) -> Path:
    for seq in range(_MAX_SEQ):
        final = dest / artifact_name(target, created, kind, ext, codec, seq=seq)
        if manifest_path_for(final).exists():
            continue  # a stale manifest must never describe our new file
        try:
            publish(tmp, final, overwrite=False)
        except FileExistsError:
            continue
        return final
    raise ArtifactError(f"{_MAX_SEQ} artifacts for {target} in one second; refusing to continue")


def _build_manifest(
    extras: Mapping[str, Any] | None,
    name: str,
    target: str,
    engine: str,
    kind: str,
    compression: str,
    created: datetime,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "plan": None,
        "run_id": None,
        "source": None,
        "integrity_check": None,
        "integrity_result": None,
        "verified": False,
    }
    data.update({k: v for k, v in (extras or {}).items() if k not in _COMPUTED})
    data.update(
        format=MANIFEST_FORMAT,
        artifact=name,
        target=target,
        engine=engine,
        kind=kind,
        compression=compression,
        created_at=iso(created),
        finished_at=iso(datetime.now(UTC)),
        tool_version=__version__,
    )
    return data


def write_manifest(artifact: Path, data: Mapping[str, Any]) -> Path:
    """(Re)write the manifest beside `artifact` atomically (verify uses this to mark verified)."""
    path = manifest_path_for(artifact)
    body = json.dumps(data, indent=2, sort_keys=True, default=str).encode() + b"\n"
    with atomic_write(path, overwrite=True) as fh:
        fh.write(body)
    return path


def resolve_artifact(path: Path) -> Path:
    """Accept the artifact or its manifest path; return the artifact path."""
    if path.name.endswith(MANIFEST_SUFFIX):
        return path.with_name(path.name[: -len(MANIFEST_SUFFIX)])
    return path


def read_manifest(artifact: Path) -> dict[str, Any]:
    """The manifest of `artifact`, checked to be ours and to describe this very file."""
    artifact = resolve_artifact(artifact)
    if not artifact.is_file():
        raise ArtifactError(
            f"artifact not found: {artifact}", hint="Check the path (safesnap list)."
        )
    path = manifest_path_for(artifact)
    if not path.is_file():
        raise ArtifactError(
            f"{artifact} has no manifest ({path.name}); it is not a safesnap backup",
            hint="An artifact without a manifest is an interrupted write; do not rely on it.",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"manifest {path} is unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    # Imported here: building its pydantic models costs ~80 ms, which writing a backup (the
    # SQLite path's startup) never needs; reading one does.
    from safesnap.artifacts.manifest_check import check_manifest

    check_manifest(data, path)
    if data["compression"] not in SUFFIXES:
        raise ArtifactError(f"{path}: unknown compression {data['compression']!r}")
    if data["artifact"] != artifact.name:
        raise ArtifactError(f"{path} describes {data['artifact']!r}, not {artifact.name!r}")
    return data


def _check(manifest: Mapping[str, Any], stored: HashingReader, plain: HashingReader) -> None:
    name = manifest.get("artifact")
    checks = (
        ("stored sha256", manifest.get("sha256"), stored.hash.hexdigest()),
        ("stored size", manifest.get("bytes"), stored.count),
        ("content sha256", manifest.get("source_sha256"), plain.hash.hexdigest()),
        ("content size", manifest.get("source_bytes"), plain.count),
    )
    for what, expected, actual in checks:
        if expected != actual:
            raise IntegrityError(
                f"{name}: {what} mismatch (manifest {expected}, file {actual})",
                hint="The artifact is damaged or was changed; restore from another backup.",
            )


@contextmanager
def open_decompressed(artifact: Path) -> Iterator[BinaryIO]:
    """Stream the artifact's original bytes; raises IntegrityError at the end on a bad sha256.

    On a clean exit, whatever the caller did not read is read (and hashed) too, so the check
    always covers the whole file. Damaged compressed data raises IntegrityError while reading.
    """
    artifact = resolve_artifact(artifact)
    manifest = read_manifest(artifact)
    try:
        opened = artifact.open("rb")
    except OSError as exc:
        raise ArtifactError(f"cannot read {artifact}: {exc.strerror or exc}") from None
    with opened as raw:
        stored = HashingReader(raw)
        inner = decompressing_reader(cast(IO[bytes], stored), str(manifest.get("compression")))
        plain = HashingReader(inner, decode=True)
        reader = io.BufferedReader(plain, CHUNK)
        try:
            yield cast(BinaryIO, reader)
            while reader.read(CHUNK):
                pass
            while stored.read(CHUNK):  # bytes after the end of the compressed stream count too
                pass
        except IntegrityError as exc:  # the codec noticed first: say which file
            raise IntegrityError(f"{artifact.name}: {exc.message}", hint=exc.hint) from None
        _check(manifest, stored, plain)


def decompress_to(artifact: Path, out: Path, progress: Callable[[int], None] | None = None) -> Path:
    """Write the original bytes to `out` (0600) atomically, only after the checksums hold.

    An existing `out` is replaced (callers decide about --force); a damaged artifact leaves
    `out` untouched. Failing to write `out` (full, read-only) is DestinationError; failing to
    read the artifact is ArtifactError.
    """
    try:
        with atomic_write(out, overwrite=True) as dst, open_decompressed(artifact) as src:
            _pump(cast(IO[bytes], GuardedSource(src)), dst, progress)
    except SourceFailed as exc:
        raise ArtifactError(f"cannot read {artifact}: {exc.original.strerror or exc}") from None
    except OSError as exc:
        raise destination_error(exc, out) from None
    return out
