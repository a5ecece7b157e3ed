"""The S3 client of a replica and the layout of its objects.

Layout: `<prefix>/<target>/<artifact name>[.age]` and `<prefix>/<target>/<artifact
name>.manifest.json`: the same names as on the local destination, plus `.age` for an encrypted
object, so a bucket listing reads like `ls` of the destination.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safesnap.config.plan import ObjectStoreReplica, resolve_secret
from safesnap.errors import ConfigError, ProviderError

_PERMANENT_S3_ERRORS = (
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchKey",
    "(404)",
    "(403)",
)
# Multipart pieces: 16 MiB x 4 threads bounds the upload's buffers to ~64 MiB whatever the
# artifact's size (boto3 reads a file by ranges, a non-seekable stream one part at a time).
# 16 MiB parts also keep a 17 GB artifact at ~1,040 parts, far below S3's 10,000-part limit
# (reached at ~160 GB).
PART_BYTES = 16 * 1024 * 1024
CONCURRENCY = 4


def object_store_client(replica: ObjectStoreReplica, *, env_file: Path | None = None) -> Any:
    """An S3 client for the replica, credentials by variable name (never in the plan)."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        "region_name": replica.region,
        "config": Config(
            retries={"mode": "standard", "max_attempts": 5},
            s3={"addressing_style": replica.addressing_style},
        ),
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


def transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=PART_BYTES,
        multipart_chunksize=PART_BYTES,
        max_concurrency=CONCURRENCY,
    )
    # A non-seekable stream (the encryption pipe) is read into memory a part at a time;
    # s3transfer's default allows 10 such parts queued (160 MiB here): bound it to the parts
    # in flight. Not a constructor argument of boto3's TransferConfig, an attribute of
    # s3transfer's (its base class).
    config.max_in_memory_upload_chunks = CONCURRENCY
    return config


def target_prefix(replica: ObjectStoreReplica, target: str | None = None) -> str:
    """`<prefix>/<target>/`, or `<prefix>/` for every target."""
    prefix = replica.prefix.strip("/")
    parts = [p for p in (prefix, target) if p]
    return "/".join(parts) + "/" if parts else ""


def object_key(replica: ObjectStoreReplica, target: str, filename: str) -> str:
    return target_prefix(replica, target) + filename


def s3_failure(exc: Exception, replica: ObjectStoreReplica, doing: str, key: str) -> ProviderError:
    """A boto3/botocore error as ProviderError; permanent when retrying cannot help."""
    # boto3's upload_file wraps ClientError in S3UploadFailedError, so classify by text.
    permanent = any(code in str(exc) for code in _PERMANENT_S3_ERRORS)
    return ProviderError(
        f"replica {replica.name}: {doing} bucket {replica.bucket} failed: {exc}",
        provider="s3",
        resource_id=key,
        transient=not permanent,
    )


def s3_errors() -> tuple[type[Exception], ...]:
    """The exception types boto3 raises for a failed request (imported on use)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, Boto3Error)


def replica_named(replicas: list[ObjectStoreReplica], name: str) -> ObjectStoreReplica:
    """The plan's replica called `name`; ConfigError listing the ones there are."""
    for replica in replicas:
        if replica.name == name:
            return replica
    known = ", ".join(r.name for r in replicas) or "none"
    raise ConfigError(
        f"no replica named {name!r} in the plan (replicas: {known})",
        hint="Name one of the plan's [[replicas]] (its `name` key).",
    )


def replica_for_url(replicas: list[ObjectStoreReplica], url: str) -> tuple[ObjectStoreReplica, str]:
    """`s3://bucket/key` -> (the plan's replica for that bucket, key). The plan supplies the
    endpoint, region and credentials variables; the URL only says which object."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    matches = [r for r in replicas if r.bucket == bucket]
    prefixed = [r for r in matches if key.startswith(target_prefix(r))]
    if not key or not (prefixed or matches):
        raise ConfigError(
            f"{url}: no replica of the plan uses bucket {bucket!r} (or no key given)",
            hint="s3://BUCKET/KEY needs --config with that bucket in [[replicas]].",
        )
    return (prefixed or matches)[0], key
