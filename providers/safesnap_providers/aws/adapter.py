"""AWS EBS snapshots through boto3 (EC2 API).

Documented facts this adapter is built on (AWS EC2 API reference / EBS user guide):
- CreateSnapshot / CreateSnapshots fix the point in time at request; writes may resume once the
  snapshot is `pending`. CreateSnapshots snapshots all volumes of one instance at one instant.
- At most 5 concurrent snapshots per gp2/gp3 volume (ConcurrentSnapshotLimitExceeded) and 15 s
  between snapshots of one volume (SnapshotCreationPerVolumeRateExceeded).
- CopySnapshot is called in the DESTINATION region; copies can take hours.
- Neither CreateSnapshot(s) nor CopySnapshot take a ClientToken, so a retried request can make a
  second snapshot. Those calls therefore go through a client with botocore retries OFF
  (max_attempts=1) and `safesnap_providers.retry` retries them after listing for the run's
  labels first.
  Idempotent calls (describe, delete, CreateVolume with a ClientToken) use botocore's `standard`
  retry mode with `max_attempts` from the plan, and are listed in `client_retries` so
  `wrappers.Retrying` does not retry them a second time.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.utils import IMDSRegionProvider

from safesnap.errors import ProviderError, ProviderInUseError, ProviderTimeoutError
from safesnap_providers.aws import volumes
from safesnap_providers.aws.config import AwsSettings, AwsSnapshot
from safesnap_providers.base import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    Capabilities,
    Snapshot,
    SnapshotRequest,
    SnapshotState,
    http_date,
    labels_match,
)
from safesnap_providers.polling import Pace, PollState, wait_done
from safesnap_providers.timestamps import as_utc

log = logging.getLogger("safesnap.providers.aws")

TRANSIENT_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ConcurrentSnapshotLimitExceeded",
        "SnapshotCreationPerVolumeRateExceeded",
        "InternalError",
        "InternalFailure",
        "Unavailable",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "InsufficientInstanceCapacity",
    }
)
# Seconds AWS asks for before the next try: one snapshot per volume per 15 s (EBS user guide,
# "Snapshot creation rate"); concurrent copies (20 per destination region) free up as copies
# finish, which takes minutes, so asking again within seconds only fails again.
MIN_WAITS = {"SnapshotCreationPerVolumeRateExceeded": 15.0, "ResourceLimitExceeded": 30.0}
COPY_TRANSIENT = frozenset({"ResourceLimitExceeded"})
IN_USE_CODES = frozenset({"InvalidSnapshot.InUse"})
NOT_FOUND_CODES = frozenset({"InvalidSnapshot.NotFound", "InvalidSnapshotID.NotFound"})
COPIED_FROM_TAG = "copied-from"
_STATES: dict[str, SnapshotState] = {
    "pending": "pending",
    "completed": "completed",
    "error": "error",
    "recoverable": "pending",
    "recovering": "pending",
}

CAPABILITIES = Capabilities(
    volume_snapshots=True,
    server_snapshots=False,
    cross_region_copy=True,
    point_in_time_at_request=True,
    max_snapshots_per_volume=None,  # EBS caps per region (100,000), not per volume
    min_interval_seconds=15.0,
    multi_volume_consistent=True,
    restore_to_volume=True,
    drill_volumes=True,
    notes=(
        "at most 5 concurrent snapshots per gp2/gp3 volume",
        "20 concurrent copies per destination region",
    ),
)


def classify(
    exc: Exception,
    *,
    what: str,
    resource_id: str | None = None,
    also_transient: frozenset[str] = frozenset(),
) -> ProviderError:
    """Turn a botocore exception into a ProviderError that says whether a retry may help.
    `also_transient`: codes transient for this call only (CopySnapshot's ResourceLimitExceeded
    is the concurrent-copy limit; elsewhere the code means a quota that will not pass)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(err.get("Code", "Unknown"))
        status = int(meta.get("HTTPStatusCode", 0) or 0) or None
        transient = code in TRANSIENT_CODES | also_transient or (
            status is not None and status >= 500
        )
        # EC2 sends no Retry-After today; honour it if a proxy or a future API version does.
        header = str(meta.get("HTTPHeaders", {}).get("retry-after", ""))
        retry_after = float(header) if header.isdigit() else None
        if code in MIN_WAITS:
            retry_after = max(retry_after or 0.0, MIN_WAITS[code])
        kind = ProviderInUseError if code in IN_USE_CODES else ProviderError
        return kind(
            f"{what}: {code}: {err.get('Message', '')}".strip(),
            transient=transient or status == 429,
            status=status,
            provider="aws",
            resource_id=resource_id,
            request_id=meta.get("RequestId"),
            retry_after=retry_after,
        )
    if isinstance(exc, NoCredentialsError):
        return ProviderError(
            f"{what}: no AWS credentials found",
            provider="aws",
            hint="Use an instance role, AWS_PROFILE or the AWS_* variables.",
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError):  # timeouts, refused, closed
        return ProviderError(
            f"{what}: {type(exc).__name__}", transient=True, provider="aws", resource_id=resource_id
        )
    return ProviderError(
        f"{what}: {type(exc).__name__}: {exc}", provider="aws", resource_id=resource_id
    )


def _tags(labels: Mapping[str, str], **extra: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {**labels, **extra}.items()]


def _to_snapshot(item: Mapping[str, Any], region: str) -> Snapshot:
    tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
    name = tags.pop("Name", "")
    copied_from = tags.pop(COPIED_FROM_TAG, None)
    started = item.get("StartTime") or datetime.now(UTC)
    return Snapshot(
        id=item["SnapshotId"],
        source_id=str(item.get("VolumeId", "")),
        region=region,
        state=_STATES.get(str(item.get("State", "pending")), "pending"),
        created_at=as_utc(started),
        labels=tags,
        size_gb=float(item["VolumeSize"]) if item.get("VolumeSize") is not None else None,
        name=name,
        copied_from=copied_from,
    )


class Aws:
    name = "aws"
    client_retries = frozenset(
        {"wait", "list_snapshots", "delete_snapshot", "restore_volume", "delete_volume"}
    )

    def __init__(
        self,
        *,
        region: str,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        poll_interval: float = 15.0,
        encrypted: bool = False,
        kms_key_id: str | None = None,
        page_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.region = region
        self.session = session or boto3.Session()
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        # 2 s after the first check, doubling up to `poll_interval` (15 s by default): a
        # snapshot pending for minutes costs about one describe per 15 s (docs/benchmarks.md).
        self.pace = Pace(min(2.0, poll_interval), poll_interval, factor=2.0, sleep=sleep)
        self.encrypted = encrypted
        self.kms_key_id = kms_key_id
        self.page_size = page_size
        self._clients: dict[tuple[str, bool], Any] = {}
        self._last_date: str | None = None  # HTTP Date of the last describe: AWS's clock
        self._messages: dict[str, str] = {}  # snapshot id -> EC2 StateMessage

    def client(self, region: str | None = None, *, retries: bool = True) -> Any:
        """An EC2 client; `retries=False` for calls that must not be repeated blindly."""
        key = (region or self.region, retries)
        if key not in self._clients:
            # `total_max_attempts` counts the first request too; botocore's `max_attempts` key
            # counts retries only (max_attempts=1 was observed to send 2 requests).
            attempts = self.max_attempts if retries else 1
            config = Config(
                retries={"mode": "standard", "total_max_attempts": attempts},
                connect_timeout=10,
                read_timeout=60,
            )
            self._clients[key] = self.session.client(
                "ec2", region_name=key[0], endpoint_url=self.endpoint_url, config=config
            )
        return self._clients[key]

    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def provider_now(self) -> datetime | None:
        return http_date(self._last_date)

    def add_labels(self, snapshot: Snapshot, labels: Mapping[str, str]) -> None:
        try:
            self.client(snapshot.region or self.region).create_tags(
                Resources=[snapshot.id], Tags=_tags(labels)
            )
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, what="tag snapshot", resource_id=snapshot.id) from None

    def _remember_date(self, answer: Mapping[str, Any]) -> None:
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        self._last_date = headers.get("date") or self._last_date

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        labels = {**request.labels, "source": request.source_id}
        spec = [{"ResourceType": "snapshot", "Tags": _tags(labels, Name=request.name)}]
        description = request.description or f"safesnap {request.name}"
        ec2 = self.client(retries=False)
        try:
            if request.source_kind == "instance":
                answer = ec2.create_snapshots(
                    InstanceSpecification={
                        "InstanceId": request.source_id,
                        "ExcludeBootVolume": False,
                    },
                    Description=description,
                    TagSpecifications=spec,
                )
                items = answer["Snapshots"]
            else:
                items = [
                    ec2.create_snapshot(
                        VolumeId=request.source_id, Description=description, TagSpecifications=spec
                    )
                ]
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, what="create snapshot", resource_id=request.source_id) from None
        return [_to_snapshot(item, self.region) for item in items]

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        """Snapshots and cross-region copies alike: a copy is a snapshot in its region."""
        region = snapshot.region or self.region

        def poll() -> tuple[PollState, Snapshot]:
            current = self._describe_one(snapshot.id, region)
            if current is None:  # not visible yet: EC2 is eventually consistent after a create
                return "pending", snapshot
            return current.state, current

        return wait_done(
            poll,
            self.pace,
            timeout=timeout,
            on_error=lambda: ProviderError(
                f"snapshot {snapshot.id} ended in state error"
                + (f": {self._messages[snapshot.id]}" if self._messages.get(snapshot.id) else ""),
                provider=self.name,
                resource_id=snapshot.id,
            ),
            on_timeout=lambda: ProviderTimeoutError(
                f"snapshot {snapshot.id} not completed after {timeout:.0f}s",
                provider=self.name,
                resource_id=snapshot.id,
                hint="EBS snapshots and copies can take hours; raise wait_timeout.",
            ),
        )

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        where = region or self.region
        want = {**labels, MANAGED_BY_KEY: MANAGED_BY_VALUE}
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in want.items()]
        out = [_to_snapshot(item, where) for item in self._describe(where, Filters=filters)]
        return [s for s in out if labels_match(s.labels, labels)]

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        region = snapshot.region or self.region
        current = self._describe_one(snapshot.id, region)
        if current is None:
            return  # already gone: deleting is idempotent
        if not current.managed:  # check AWS's tags, not the caller's copy of them
            raise ProviderError(
                f"refusing to delete snapshot {snapshot.id}: not tagged managed-by=safesnap",
                provider=self.name,
                resource_id=snapshot.id,
            )
        try:
            self.client(region).delete_snapshot(SnapshotId=snapshot.id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                return
            raise classify(exc, what="delete snapshot", resource_id=snapshot.id) from None
        except BotoCoreError as exc:
            raise classify(exc, what="delete snapshot", resource_id=snapshot.id) from None

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        tags = _tags(labels, Name=snapshot.name or snapshot.id, **{COPIED_FROM_TAG: snapshot.id})
        params: dict[str, Any] = {
            "SourceRegion": snapshot.region or self.region,
            "SourceSnapshotId": snapshot.id,
            "Description": f"safesnap copy of {snapshot.id}",
            "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tags}],
        }
        if self.encrypted or self.kms_key_id:
            params["Encrypted"] = True
        if self.kms_key_id:
            params["KmsKeyId"] = self.kms_key_id
        try:
            answer = self.client(region, retries=False).copy_snapshot(**params)
        except (ClientError, BotoCoreError) as exc:
            raise classify(
                exc,
                what=f"copy snapshot to {region}",
                resource_id=snapshot.id,
                also_transient=COPY_TRANSIENT,
            ) from None
        return Snapshot(
            id=answer["SnapshotId"],
            source_id=snapshot.source_id,
            region=region,
            state="pending",
            created_at=datetime.now(UTC),
            labels=dict(labels),
            size_gb=snapshot.size_gb,
            name=snapshot.name,
            copied_from=snapshot.id,
        )

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        del size  # EBS restores a volume at the snapshot's own size
        if not zone:
            raise ProviderError(
                "restoring an EBS snapshot needs an availability zone",
                provider=self.name,
                hint="Pass --zone, e.g. --zone us-east-1a.",
            )
        tags = _tags(
            {MANAGED_BY_KEY: MANAGED_BY_VALUE}, Name=name, **{"restored-from": snapshot.id}
        )
        try:
            answer = self.client(snapshot.region or self.region).create_volume(
                SnapshotId=snapshot.id,
                AvailabilityZone=zone,
                VolumeType="gp3",
                ClientToken=uuid.uuid4().hex,  # makes botocore's retries of this call safe
                TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
            )
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, what="create volume", resource_id=snapshot.id) from None
        return str(answer["VolumeId"])

    def wait_volume(self, volume_id: str, *, region: str | None = None, timeout: float) -> None:
        client = self.client(region or self.region)
        volumes.wait_volume(client, self.pace, volume_id, timeout, classify)

    def delete_volume(self, volume_id: str, *, region: str | None = None) -> None:
        volumes.delete_volume(self.client(region or self.region), volume_id, classify)

    # -- internals ----------------------------------------------------------------------------

    def _describe(self, region: str, **params: Any) -> Iterator[Mapping[str, Any]]:
        paginator = self.client(region).get_paginator("describe_snapshots")
        pages = paginator.paginate(
            OwnerIds=["self"], **params, PaginationConfig={"PageSize": self.page_size}
        )
        try:
            for page in pages:
                self._remember_date(page)
                yield from page.get("Snapshots", [])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, what="describe snapshots") from None

    def _describe_one(self, snapshot_id: str, region: str) -> Snapshot | None:
        """The snapshot as EC2 sees it now, or None when it does not exist (or not yet)."""
        try:
            answer = self.client(region).describe_snapshots(SnapshotIds=[snapshot_id])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                return None
            raise classify(exc, what="describe snapshot", resource_id=snapshot_id) from None
        except BotoCoreError as exc:
            raise classify(exc, what="describe snapshot", resource_id=snapshot_id) from None
        self._remember_date(answer)
        items = answer.get("Snapshots", [])
        if items and items[0].get("StateMessage"):
            # EC2's own reason for a failed snapshot or copy (e.g. a KMS key it cannot use).
            self._messages[snapshot_id] = str(items[0]["StateMessage"])[:300]
        return _to_snapshot(items[0], region) if items else None


def from_settings(
    config: AwsSettings | None,
    spec: AwsSnapshot | None,
    *,
    env_file: Path | None = None,
    region: str | None = None,
) -> Aws:
    """Credentials come from boto3's own chain (instance role, AWS_PROFILE, AWS_* variables):
    safesnap never reads or stores AWS keys itself. So does the region when the plan names
    none (see `resolve_region`)."""
    del env_file
    config = config or AwsSettings()
    session = _session(config.profile)
    return Aws(
        region=region or config.region or resolve_region(session),
        session=session,
        endpoint_url=config.endpoint_url,
        max_attempts=config.max_attempts,
        poll_interval=config.poll_interval,
        encrypted=spec is not None and spec.encrypted,
        kms_key_id=spec.kms_key_id if spec is not None else None,
    )


def resolve_region(session: boto3.Session) -> str:
    """AWS_REGION, else the region boto3 finds (AWS_DEFAULT_REGION, the profile's), else
    the instance's own region from the instance metadata service (IMDSv2; botocore's fetcher,
    which honours AWS_EC2_METADATA_DISABLED and AWS_EC2_METADATA_SERVICE_ENDPOINT). A
    hard-coded default would snapshot and prune in the wrong region without a word."""
    # AWS_REGION is the variable the AWS SDKs and CLI v2 read first; botocore reads only
    # AWS_DEFAULT_REGION (and the profile) into session.region_name.
    named = os.environ.get("AWS_REGION") or session.region_name
    if named:
        return str(named)
    core = session._session  # boto3 exposes no public accessor for its botocore session
    found = IMDSRegionProvider(core).provide()
    if found:
        return str(found)
    raise ProviderError(
        "no AWS region: the plan names none, and neither AWS_REGION, AWS_DEFAULT_REGION, "
        "the profile nor the instance metadata service gave one",
        provider="aws",
        hint="Set region in [providers.aws] (or AWS_REGION).",
    )


def _session(profile: str | None) -> boto3.Session:
    """boto3's credential chain, or the named profile (the plan's, else AWS_PROFILE's). A
    profile that does not exist is a clear provider error, not a library traceback."""
    try:
        return boto3.Session(profile_name=profile) if profile else boto3.Session()
    except ProfileNotFound:
        name = profile or os.environ.get("AWS_PROFILE", "")
        raise ProviderError(
            f"AWS profile {name!r} not found in the AWS config files",
            provider="aws",
            hint="Name a profile from ~/.aws/config (or $AWS_CONFIG_FILE) in [providers.aws] "
            "profile or AWS_PROFILE, or unset both to use the instance role or AWS_* "
            "variables.",
        ) from None
