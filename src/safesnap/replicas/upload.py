"""Upload one artifact to a replica: the object first, the manifest last.

A listing of the bucket never shows a manifest without its object (the same rule as on disk).
Memory is bounded whatever the artifact's size: the artifact is read once, in order, as a
non-seekable stream, and boto3's multipart transfer holds at most client.CONCURRENCY parts of
client.PART_BYTES. The bytes read are hashed on the way: if they are not the ones the manifest
describes (the file changed since backup and verify), the upload fails and is removed.

Encrypted (plan `[encryption] recipients`): a thread encrypts the artifact with age into a pipe
and boto3 uploads from the other end, so the ciphertext never exists on disk (no second copy)
or whole in memory. Its sha256 and size are computed as it streams past and go into the
replica's manifest (`stored_sha256`, `stored_bytes`) beside the artifact's own (`sha256`, the
plaintext artifact, and `source_sha256`, the content), so a download checks both.

After the upload a HEAD checks the stored size and the artifact sha256 carried in the object's
metadata; on any failure the partial object is removed (best effort: it has no manifest, so it
never counts as a backup either way).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast

from safesnap.artifacts.encryption import ENCRYPTED_SUFFIX, encrypt_stream, parse_recipients
from safesnap.artifacts.store import ArtifactInfo, read_manifest
from safesnap.config.plan import ObjectStoreReplica
from safesnap.errors import ArtifactError, IntegrityError, ProviderError
from safesnap.replicas.client import (
    object_key,
    object_store_client,
    s3_errors,
    s3_failure,
    transfer_config,
)


def replicate_artifact(
    artifact: ArtifactInfo,
    replica: ObjectStoreReplica,
    *,
    target: str,
    env_file: Path | None = None,
    recipients: Sequence[str] = (),
) -> dict[str, Any]:
    """Upload `artifact` (encrypted for `recipients` when given) and then its manifest."""
    parsed = parse_recipients(recipients) if recipients else None
    client = object_store_client(replica, env_file=env_file)
    name = artifact.path.name + (ENCRYPTED_SUFFIX if parsed else "")
    key = object_key(replica, target, name)
    manifest = read_manifest(artifact.path)  # now, not at backup time: verify marked it
    try:
        if parsed is not None:
            sent, stored = _upload_encrypted(client, replica, artifact, key, parsed)
        else:
            sent = stored = _upload_plain(client, replica, artifact, key)
        _check_sent(artifact, sent)
        stored_sha, stored_bytes = stored.hash.hexdigest(), stored.count
        _check_uploaded(client, replica, key, stored_bytes, artifact.sha256)
        manifest.update(stored_sha256=stored_sha, stored_bytes=stored_bytes)
        manifest["encryption"] = "age" if parsed else None
        manifest["recipients"] = list(recipients)  # public keys: which identity opens it
        manifest_key = object_key(replica, target, artifact.manifest_path.name)
        _put_manifest(client, replica, manifest_key, manifest)
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_object(Bucket=replica.bucket, Key=key)
        raise
    return {
        "replica": replica.name,
        "bucket": replica.bucket,
        "key": key,
        "bytes": stored_bytes,
        "encrypted": parsed is not None,
    }


def _upload(client: Any, replica: ObjectStoreReplica, key: str, stream: Any, meta: Any) -> None:
    try:
        client.upload_fileobj(
            stream, replica.bucket, key, ExtraArgs={"Metadata": meta}, Config=transfer_config()
        )
    except s3_errors() as exc:
        raise s3_failure(exc, replica, "upload to", key) from None


def _upload_plain(
    client: Any, replica: ObjectStoreReplica, artifact: ArtifactInfo, key: str
) -> _Hashing:
    """Stream the file through a hash into the upload: what went up is what was checked."""
    with artifact.path.open("rb") as fh:
        stream = _Hashing(fh)
        _upload(client, replica, key, stream, {"sha256": artifact.sha256})
    return stream


def _check_sent(artifact: ArtifactInfo, sent: _Hashing) -> None:
    """The bytes read from the artifact while uploading are the ones its manifest describes
    (a file damaged or changed since its backup and verify must not become the DR copy)."""
    if (sent.hash.hexdigest(), sent.count) != (artifact.sha256, artifact.bytes):
        raise IntegrityError(
            f"{artifact.path.name}: the file read for the upload does not match its manifest "
            f"({sent.count} bytes, expected {artifact.bytes}); nothing was kept in the bucket",
            hint="The local artifact changed after it was written; run safesnap verify on it.",
        )


class _Hashing(io.RawIOBase):
    """Hash and count what is read through it. Over a BufferedReader (a file, a blocking pipe)
    `read(n)` returns n bytes unless at EOF: boto3 takes each read of a non-seekable stream as
    one multipart part, and S3 refuses parts below 5 MiB. Not seekable on purpose: boto3 then
    reads it once, in order, so the hash covers exactly what was uploaded."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._pipe.read(-1 if size is None else size)
        self.hash.update(data)
        self.count += len(data)
        return data


def _upload_encrypted(
    client: Any, replica: ObjectStoreReplica, artifact: ArtifactInfo, key: str, recipients: Any
) -> tuple[_Hashing, _Hashing]:
    """(what was read from the artifact, what was uploaded: the ciphertext)."""
    read_fd, write_fd = os.pipe()
    failed: list[BaseException] = []
    sent = _Hashing(io.BytesIO())  # replaced once the file is open

    def encrypt() -> None:
        nonlocal sent
        try:
            with artifact.path.open("rb") as src, open(write_fd, "wb") as sink:
                sent = _Hashing(src)
                encrypt_stream(cast(IO[bytes], sent), sink, recipients)
        except BaseException as exc:  # reported by the uploading thread
            failed.append(exc)

    worker = threading.Thread(target=encrypt, name="safesnap-encrypt", daemon=True)
    with open(read_fd, "rb") as pipe:
        stored = _Hashing(pipe)
        worker.start()
        try:
            _upload(client, replica, key, stored, {"sha256": artifact.sha256, "encryption": "age"})
        finally:
            pipe.close()  # an upload that stopped early unblocks the writer (EPIPE)
            worker.join()
    if failed:
        raise ArtifactError(f"cannot encrypt {artifact.path}: {failed[0]}") from None
    return sent, stored


def _check_uploaded(
    client: Any, replica: ObjectStoreReplica, key: str, size: int, sha256: str
) -> None:
    try:
        head = client.head_object(Bucket=replica.bucket, Key=key)
    except s3_errors() as exc:
        raise s3_failure(exc, replica, f"checking {key} in", key) from None
    if head["ContentLength"] != size or head["Metadata"].get("sha256") != sha256:
        raise ProviderError(
            f"replica {replica.name}: uploaded object {key} does not match the artifact "
            f"({head['ContentLength']} bytes, expected {size})",
            provider="s3",
            resource_id=key,
        )


def _put_manifest(
    client: Any, replica: ObjectStoreReplica, key: str, manifest: dict[str, Any]
) -> None:
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode() + b"\n"
    try:
        client.put_object(Bucket=replica.bucket, Key=key, Body=body, ContentType="application/json")
    except s3_errors() as exc:
        raise s3_failure(exc, replica, "upload to", key) from None
