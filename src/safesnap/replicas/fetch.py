"""Download a backup from a replica into a directory, as a local artifact.

One streaming pass: GET the object, hash what arrives (the stored sha256: of the ciphertext
when encrypted), decrypt on the fly when encrypted, hash and write what comes out (the
artifact's own sha256) into a temp file of the destination's scheme; only when both hashes and
sizes match the manifest is the file published under the artifact's name, and the manifest is
written beside it last. So the engines' verify and restore take the result unchanged, and a
failure (wrong identity, damaged object, full disk, signal) leaves nothing in `dest_dir`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from safesnap.artifacts.atomic import fsync_dir, publish, temp_file
from safesnap.artifacts.codecs import CHUNK
from safesnap.artifacts.destination import destination_error, make_private_dirs
from safesnap.artifacts.encryption import ENCRYPTED_SUFFIX, decrypt_stream, load_identities
from safesnap.artifacts.hashio import HashingReader, HashingWriter
from safesnap.artifacts.store import (
    MANIFEST_SUFFIX,
    manifest_path_for,
    parse_iso,
    write_manifest,
)
from safesnap.config.plan import ObjectStoreReplica
from safesnap.errors import ArtifactError, IntegrityError, RefusedError
from safesnap.replicas.client import object_store_client, s3_errors, s3_failure
from safesnap.replicas.listing import ReplicaEntry, scan_replica, stored_sha256
from safesnap_providers.timestamps import stamp as compact_stamp

_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
Progress = Callable[[int, int | None], None]


def fetch_latest(
    replica: ObjectStoreReplica,
    target: str,
    dest_dir: Path,
    *,
    identity: Path | None = None,
    env_file: Path | None = None,
    at: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download the newest (or `at`) artifact of `target` from the replica into dest_dir,
    check both checksums, decrypt when encrypted, and return the local artifact path with
    its manifest written beside it exactly as a local artifact has (so engines' verify/restore
    take it unchanged). Raises safesnap.errors classes (IntegrityError, DecryptionError,
    ArtifactError, ConfigError, ProviderError) with clear messages; leaves nothing
    half-written in dest_dir on failure.

    `at`: None or "latest", a timestamp (`2026-12-04T03:00:00Z` or `20261204T030000Z`, the
    second the backup was taken) or an artifact name. `identity`: the age identity file
    (else $SAFESNAP_AGE_IDENTITY_FILE); needed only for encrypted artifacts.
    """
    client = object_store_client(replica, env_file=env_file)
    entry = choose(scan_replica(client, replica, target).entries, at, replica, target)
    return fetch_entry(client, replica, entry, dest_dir, identity=identity, progress=progress)


def fetch_key(
    replica: ObjectStoreReplica,
    key: str,
    dest_dir: Path,
    *,
    identity: Path | None = None,
    env_file: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """The same for one object named by its key (the artifact's, `.age` or the manifest's)."""
    manifest_key = key.removesuffix(MANIFEST_SUFFIX).removesuffix(ENCRYPTED_SUFFIX)
    manifest_key += MANIFEST_SUFFIX
    parts = manifest_key.split("/")
    if len(parts) < 2:
        raise ArtifactError(f"s3://{replica.bucket}/{key} is not a safesnap object key")
    client = object_store_client(replica, env_file=env_file)
    found = scan_replica(client, replica, parts[-2])
    for entry in found.entries:
        if entry.manifest_key == manifest_key:
            return fetch_entry(
                client, replica, entry, dest_dir, identity=identity, progress=progress
            )
    detail = f" ({'; '.join(found.problems[:3])})" if found.problems else ""
    raise ArtifactError(
        f"s3://{replica.bucket}/{key} is not a backup in replica {replica.name}{detail}",
        hint=f"safesnap list --replica {replica.name} shows what it holds.",
    )


def choose(
    entries: list[ReplicaEntry], at: str | None, replica: ObjectStoreReplica, target: str
) -> ReplicaEntry:
    """The newest entry, or the newest one taken at `at` (see fetch_latest)."""
    if not entries:
        raise ArtifactError(
            f"replica {replica.name} holds no backup of target {target}",
            hint=f"safesnap list --replica {replica.name} shows what it holds.",
        )
    if at is None or at == "latest":
        return entries[0]
    wanted = at
    if not _STAMP.match(at):
        try:
            wanted = compact_stamp(parse_iso(at.replace("Z", "+00:00")))
        except ValueError:
            wanted = ""
    for entry in entries:
        if entry.name == at or (wanted and compact_stamp(entry.created_at) == wanted):
            return entry
    raise ArtifactError(
        f"replica {replica.name} has no backup of {target} taken at {at}",
        hint="Use `latest`, a timestamp or an artifact name from "
        f"`safesnap list --replica {replica.name} --target {target}`.",
    )


def fetch_entry(
    client: Any,
    replica: ObjectStoreReplica,
    entry: ReplicaEntry,
    dest_dir: Path,
    *,
    identity: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download, check, decrypt and publish one entry; then its manifest (see module doc)."""
    identities = load_identities(identity, artifact=entry.name) if entry.encrypted else None
    make_private_dirs(dest_dir)
    final = dest_dir / entry.name
    if final.exists() or manifest_path_for(final).exists():
        raise RefusedError(f"{final} already exists", hint="Fetch into an empty directory.")
    try:
        with temp_file(dest_dir, entry.name) as (tmp, fh):
            plain = HashingWriter(fh)
            stored = _download(client, replica, entry, plain, identities, progress)
            _check(entry, stored, plain)
            fh.flush()
            os.fsync(fh.fileno())
            publish(tmp, final, overwrite=False)
        fsync_dir(dest_dir)
    except OSError as exc:
        raise destination_error(exc, dest_dir, doing="write the downloaded artifact into") from None
    local = dict(entry.manifest)
    local["fetched_from"] = f"s3://{replica.bucket}/{entry.key}"
    try:
        write_manifest(final, local)
    except BaseException:
        final.unlink(missing_ok=True)  # without its manifest it is not a backup
        raise
    return final


class _Counting(HashingReader):
    """HashingReader that also reports progress as bytes arrive."""

    def __init__(self, raw: IO[bytes], total: int, progress: Progress | None) -> None:
        super().__init__(raw)
        self._total, self._progress = total, progress

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        if self._progress is not None:
            self._progress(self.count, self._total)
        return n


def _download(
    client: Any,
    replica: ObjectStoreReplica,
    entry: ReplicaEntry,
    sink: HashingWriter,
    identities: list[Any] | None,
    progress: Progress | None,
) -> HashingReader:
    try:
        body = client.get_object(Bucket=replica.bucket, Key=entry.key)["Body"]
        stored = _Counting(body, entry.stored_bytes, progress)
        if identities is not None:
            decrypt_stream(
                cast(IO[bytes], stored), cast(IO[bytes], sink), identities, artifact=entry.name
            )
        else:
            while chunk := stored.read(CHUNK):
                sink.write(chunk)
        while stored.read(CHUNK):  # bytes after the end of the age stream count too
            pass
    except s3_errors() as exc:
        raise s3_failure(exc, replica, f"downloading {entry.key} from", entry.key) from None
    return stored


def _check(entry: ReplicaEntry, stored: HashingReader, plain: HashingWriter) -> None:
    m = entry.manifest
    checks = (
        ("stored size", entry.stored_bytes, stored.count),
        ("stored sha256", stored_sha256(m), stored.hash.hexdigest()),
        ("artifact size", m.get("bytes"), plain.count),
        ("artifact sha256", m.get("sha256"), plain.hash.hexdigest()),
    )
    for what, expected, actual in checks:
        if expected != actual:
            raise IntegrityError(
                f"{entry.key}: {what} mismatch (manifest {expected}, downloaded {actual})",
                hint="The replica's object is damaged or was changed; fetch another backup.",
            )
