"""Cross-region copies of artifacts in S3-compatible object storage.

Used where the cloud cannot move a snapshot across regions (DigitalOcean volume snapshots,
Hetzner volumes) and for plain off-site copies. The artifact goes up first and the manifest
last, so a listing of the bucket never shows a manifest without its artifact (the same rule as
on disk). Each object carries the sha256 in its metadata, and the upload is checked with a
HEAD before the manifest is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from safesnap.artifacts.store import ArtifactInfo
from safesnap.config.plan import ObjectStoreReplica, resolve_secret
from safesnap.errors import ProviderError

_PERMANENT_S3_ERRORS = (
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
)


def object_store_client(replica: ObjectStoreReplica, *, env_file: Path | None = None) -> Any:
    """An S3 client for the replica, credentials by variable name (never in the plan)."""
    kwargs: dict[str, Any] = {
        "region_name": replica.region,
        "config": Config(retries={"mode": "standard", "max_attempts": 5}),
    }
    if replica.endpoint_url:
        kwargs["endpoint_url"] = replica.endpoint_url
    if replica.access_key_env and replica.secret_key_env:
        key = resolve_secret(replica.access_key_env, env_file=env_file)
        secret = resolve_secret(replica.secret_key_env, env_file=env_file)
        if key is None or secret is None:
            raise ProviderError(
                f"replica {replica.name}: credentials variables {replica.access_key_env} / "
                f"{replica.secret_key_env} are not set",
                provider="s3",
            )
        kwargs["aws_access_key_id"] = key.get_secret_value()
        kwargs["aws_secret_access_key"] = secret.get_secret_value()
    return boto3.client("s3", **kwargs)


def object_key(replica: ObjectStoreReplica, target: str, filename: str) -> str:
    prefix = replica.prefix.strip("/")
    return f"{prefix}/{target}/{filename}" if prefix else f"{target}/{filename}"


def replicate_artifact(
    artifact: ArtifactInfo,
    replica: ObjectStoreReplica,
    *,
    target: str,
    env_file: Path | None = None,
) -> dict[str, Any]:
    client = object_store_client(replica, env_file=env_file)
    key = object_key(replica, target, artifact.path.name)
    manifest_key = object_key(replica, target, artifact.manifest_path.name)
    try:
        client.upload_file(
            str(artifact.path),
            replica.bucket,
            key,
            ExtraArgs={"Metadata": {"sha256": artifact.sha256}},
        )
        head = client.head_object(Bucket=replica.bucket, Key=key)
        if (
            head["ContentLength"] != artifact.bytes
            or head["Metadata"].get("sha256") != artifact.sha256
        ):
            raise ProviderError(
                f"replica {replica.name}: uploaded object {key} does not match the artifact",
                provider="s3",
                resource_id=key,
            )
        client.upload_file(str(artifact.manifest_path), replica.bucket, manifest_key)
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        # boto3's upload_file wraps ClientError in S3UploadFailedError, so classify by text.
        permanent = any(code in str(exc) for code in _PERMANENT_S3_ERRORS)
        raise ProviderError(
            f"replica {replica.name}: upload to bucket {replica.bucket} failed: {exc}",
            provider="s3",
            resource_id=key,
            transient=not permanent,
        ) from None
    return {"replica": replica.name, "bucket": replica.bucket, "key": key, "bytes": artifact.bytes}
