"""Upload one artifact to a replica: the object first, the manifest last.

A listing of the bucket never shows a manifest without its object (the same rule as on disk).
Memory is bounded whatever the artifact's size: boto3's multipart transfer reads the file (or
the encryption pipe) one part at a time (client.PART_BYTES x client.CONCURRENCY).

Encrypted (plan `[encryption] recipients`): a thread encrypts the artifact with age into a pipe
and boto3 uploads from the other end, so the ciphertext never exists on disk (no second copy)
or whole in memory. Its sha256 and size are computed as it streams past and go into the
replica's manifest (`stored_sha256`, `stored_bytes`) beside the artifact's own (`sha256`, the
plaintext artifact, and `source_sha256`, the content), so a download checks both.

After the upload a HEAD checks the size and the artifact sha256 carried in the object's
metadata; on any failure the partial object is removed (best effort: it has no manifest, so it
never counts as a backup either way).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safesnap.artifacts.encryption import ENCRYPTED_SUFFIX, encrypt_stream, parse_recipients
from safesnap.artifacts.hashio import HashingReader
from safesnap.artifacts.store import ArtifactInfo, read_manifest
from safesnap.config.plan import ObjectStoreReplica
from safesnap.errors import ArtifactError, ProviderError
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
            stored_sha, stored_bytes = _upload_encrypted(client, replica, artifact, key, parsed)
        else:
            _upload_file(client, replica, artifact, key)
            stored_sha, stored_bytes = artifact.sha256, artifact.bytes
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


def _upload_file(
    client: Any, replica: ObjectStoreReplica, artifact: ArtifactInfo, key: str
) -> None:
    try:
        client.upload_file(
            str(artifact.path),
            replica.bucket,
            key,
            ExtraArgs={"Metadata": {"sha256": artifact.sha256}},
            Config=transfer_config(),
        )
    except s3_errors() as exc:
        raise s3_failure(exc, replica, "upload to", key) from None


class _FullReads(HashingReader):
    """Hash the pipe's bytes; `read(n)` returns n bytes unless at EOF. boto3 takes each read
    of a non-seekable stream as one multipart part, and S3 refuses parts below 5 MiB."""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        out = bytearray()
        while len(out) < size:
            piece = super().read(size - len(out))
            if not piece:
                break
            out += piece
        return bytes(out)


def _upload_encrypted(
    client: Any, replica: ObjectStoreReplica, artifact: ArtifactInfo, key: str, recipients: Any
) -> tuple[str, int]:
    read_fd, write_fd = os.pipe()
    failed: list[BaseException] = []

    def encrypt() -> None:
        try:
            with artifact.path.open("rb") as src, open(write_fd, "wb") as sink:
                encrypt_stream(src, sink, recipients)
        except BaseException as exc:  # reported by the uploading thread
            failed.append(exc)

    worker = threading.Thread(target=encrypt, name="safesnap-encrypt", daemon=True)
    with open(read_fd, "rb") as pipe:
        stream = _FullReads(pipe)
        worker.start()
        try:
            client.upload_fileobj(
                stream,
                replica.bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": artifact.sha256, "encryption": "age"}},
                Config=transfer_config(),
            )
        except s3_errors() as exc:
            raise s3_failure(exc, replica, "upload to", key) from None
        finally:
            pipe.close()  # an upload that stopped early unblocks the writer (EPIPE)
            worker.join()
    if failed:
        raise ArtifactError(f"cannot encrypt {artifact.path}: {failed[0]}") from None
    return stream.hash.hexdigest(), stream.count


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
