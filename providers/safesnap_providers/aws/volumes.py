"""EBS volumes made by `Aws.restore_volume`, followed to the end of a drill: wait until the
volume is available, then delete it (only one labelled managed-by=safesnap).

Its own module so the adapter stays one screenful per concern. The adapter passes its EC2
client (botocore `standard` retries: DescribeVolumes and DeleteVolume are safe to repeat), its
pacing and its error classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from safesnap.errors import ProviderError, ProviderTimeoutError
from safesnap_providers.base import MANAGED_BY_KEY, MANAGED_BY_VALUE, labels_match
from safesnap_providers.polling import Pace, PollState, wait_done

Classify = Callable[..., ProviderError]  # aws.adapter.classify(exc, what=, resource_id=)
NOT_FOUND = "InvalidVolume.NotFound"
# EC2 volume states; `in-use` only if someone attached it meanwhile (it is usable).
STATES: dict[str, PollState] = {
    "creating": "pending",
    "available": "completed",
    "in-use": "completed",
    "error": "error",
}


def wait_volume(ec2: Any, pace: Pace, volume_id: str, timeout: float, classify: Classify) -> None:
    def poll() -> tuple[PollState, None]:
        volume = describe_volume(ec2, volume_id, classify)
        state = str((volume or {}).get("State", "creating"))  # not visible yet: creating
        return STATES.get(state, "pending"), None

    wait_done(
        poll,
        pace,
        timeout=timeout,
        on_error=lambda: ProviderError(
            f"volume {volume_id} ended in state error", provider="aws", resource_id=volume_id
        ),
        on_timeout=lambda: ProviderTimeoutError(
            f"volume {volume_id} not available after {timeout:.0f}s",
            provider="aws",
            resource_id=volume_id,
        ),
    )


def delete_volume(ec2: Any, volume_id: str, classify: Classify) -> None:
    volume = describe_volume(ec2, volume_id, classify)
    if volume is None:
        return
    tags = {t["Key"]: t["Value"] for t in volume.get("Tags", [])}
    if not labels_match(tags, {}):
        raise ProviderError(
            f"refusing to delete volume {volume_id}: it is not labelled "
            f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}",
            provider="aws",
            resource_id=volume_id,
        )
    try:
        ec2.delete_volume(VolumeId=volume_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != NOT_FOUND:
            raise classify(exc, what="delete volume", resource_id=volume_id) from None
    except BotoCoreError as exc:
        raise classify(exc, what="delete volume", resource_id=volume_id) from None


def describe_volume(ec2: Any, volume_id: str, classify: Classify) -> Mapping[str, Any] | None:
    """The volume, or None when EC2 does not know it (deleted, or not visible yet)."""
    try:
        answer = ec2.describe_volumes(VolumeIds=[volume_id])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == NOT_FOUND:
            return None
        raise classify(exc, what="describe volume", resource_id=volume_id) from None
    except BotoCoreError as exc:
        raise classify(exc, what="describe volume", resource_id=volume_id) from None
    volumes: list[Mapping[str, Any]] = answer.get("Volumes") or []
    return volumes[0] if volumes else None
