"""What a replica bucket holds: backups (an object plus its manifest, checked), orphans and
everything else.

The same rule as on disk (artifacts/catalog.py): only an object whose manifest is ours
(`format`), names this very object, belongs to the directory's target, and whose stored size
matches the listing counts as a backup. Objects of safesnap's naming without a manifest are
orphans (an interrupted upload: the artifact goes up first); anything else under the prefix is
foreign and never touched by anything safesnap does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from safesnap.artifacts.encryption import ENCRYPTED_SUFFIX
from safesnap.artifacts.store import MANIFEST_FORMAT, MANIFEST_SUFFIX, parse_iso
from safesnap.config.plan import ObjectStoreReplica
from safesnap.errors import ArtifactError
from safesnap.replicas.client import s3_errors, s3_failure, target_prefix

# artifact_name's shape (artifacts/store.py), optionally encrypted.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.\d{8}T\d{6}Z(_\d+)?\.[A-Za-z0-9_.-]+?(\.age)?$")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # a files tree's manifest lists every file; cap the read


@dataclass(frozen=True)
class ReplicaEntry:
    key: str  # the stored object (…/name or …/name.age)
    manifest_key: str
    manifest: dict[str, Any]
    created_at: datetime
    stored_bytes: int

    @property
    def target(self) -> str:
        return str(self.manifest.get("target"))

    @property
    def name(self) -> str:
        return str(self.manifest["artifact"])

    @property
    def encrypted(self) -> bool:
        return self.manifest.get("encryption") == "age"

    @property
    def verified(self) -> bool:
        return self.manifest.get("verified") is True

    def summary(self) -> dict[str, Any]:
        """The `safesnap list --replica --json` row."""
        m = self.manifest
        row = {k: m.get(k) for k in ("target", "engine", "kind", "created_at", "bytes")}
        row.update({k: m.get(k) for k in ("source_bytes", "sha256", "compression")})
        row.update(artifact=self.name, key=self.key, stored_bytes=self.stored_bytes)
        row.update(stored_sha256=stored_sha256(m), encrypted=self.encrypted)
        row.update(verified=self.verified)
        return row


@dataclass
class BucketScan:
    entries: list[ReplicaEntry] = field(default_factory=list)  # newest first
    orphans: list[str] = field(default_factory=list)  # safesnap-named, no manifest
    foreign: list[str] = field(default_factory=list)  # not ours: never touched
    problems: list[str] = field(default_factory=list)


def stored_sha256(manifest: dict[str, Any]) -> str:
    """sha256 of the object as stored (the ciphertext when encrypted); manifests uploaded before
    encryption existed stored the artifact itself."""
    return str(manifest.get("stored_sha256") or manifest.get("sha256"))


def _list(client: Any, replica: ObjectStoreReplica, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=replica.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                sizes[item["Key"]] = int(item["Size"])
    except s3_errors() as exc:
        raise s3_failure(exc, replica, "listing", prefix) from None
    return sizes


def read_remote_manifest(client: Any, replica: ObjectStoreReplica, key: str) -> dict[str, Any]:
    """GET and parse one manifest object; ArtifactError when it is not ours."""
    try:
        body = client.get_object(Bucket=replica.bucket, Key=key)["Body"]
        raw = body.read(MAX_MANIFEST_BYTES + 1)
    except s3_errors() as exc:
        raise s3_failure(exc, replica, f"reading {key} from", key) from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"s3://{replica.bucket}/{key}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"s3://{replica.bucket}/{key}: not a {MANIFEST_FORMAT} manifest")
    from safesnap.artifacts.manifest_check import check_manifest

    check_manifest(data, Path(key))  # the key is what a message should name
    return data


def _entry(
    client: Any, replica: ObjectStoreReplica, manifest_key: str, sizes: dict[str, int]
) -> ReplicaEntry:
    manifest = read_remote_manifest(client, replica, manifest_key)
    name = manifest_key.rsplit("/", 1)[-1][: -len(MANIFEST_SUFFIX)]
    where = f"s3://{replica.bucket}/{manifest_key}"
    if manifest.get("artifact") != name:
        raise ArtifactError(f"{where} describes {manifest.get('artifact')!r}, not {name!r}")
    encrypted = manifest.get("encryption") == "age"
    key = manifest_key[: -len(MANIFEST_SUFFIX)] + (ENCRYPTED_SUFFIX if encrypted else "")
    expected = manifest.get("stored_bytes", manifest.get("bytes"))
    if key not in sizes:
        raise ArtifactError(f"{where}: its object {key} is missing")
    if sizes[key] != expected:
        raise ArtifactError(f"{where}: object size {sizes[key]} does not match {expected}")
    if manifest_key.split("/")[-2:-1] != [manifest.get("target")]:
        raise ArtifactError(f"{where}: target {manifest.get('target')!r} is not its directory")
    try:
        created = parse_iso(str(manifest["created_at"]))
    except ValueError:
        raise ArtifactError(f"{where}: created_at is not ISO-8601") from None
    return ReplicaEntry(key, manifest_key, manifest, created, sizes[key])


def scan_replica(client: Any, replica: ObjectStoreReplica, target: str | None = None) -> BucketScan:
    """Every backup in the replica (for one target or all), newest first."""
    sizes = _list(client, replica, target_prefix(replica, target))
    out = BucketScan()
    described: set[str] = set()
    for key in sorted(sizes):
        base = key.rsplit("/", 1)[-1]
        if not key.endswith(MANIFEST_SUFFIX) or not _NAME.match(base[: -len(MANIFEST_SUFFIX)]):
            continue
        try:
            entry = _entry(client, replica, key, sizes)
        except ArtifactError as exc:
            out.problems.append(exc.message)
            continue
        described.update((key, entry.key))
        out.entries.append(entry)
    out.entries.sort(key=lambda e: (e.created_at, e.name), reverse=True)
    for key in sorted(sizes):
        if key in described:
            continue
        base = key.rsplit("/", 1)[-1]
        ours = _NAME.match(base.removesuffix(MANIFEST_SUFFIX)) is not None
        (out.orphans if ours else out.foreign).append(key)
    return out
