"""The AWS provider's plan models: `[providers.aws]` and a target's
`snapshot = { provider = "aws" }`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from safesnap_providers.base import SourceKind
from safesnap_providers.config import SettingsBase, SpecBase


class AwsSettings(SettingsBase):
    region: str | None = Field(
        None,
        description="Home region; unset: boto3's own resolution (AWS_REGION, "
        "AWS_DEFAULT_REGION, the profile's region, then the instance's region from IMDS).",
    )
    endpoint_url: str | None = Field(
        None, description="Override the EC2 API endpoint (tests, moto)."
    )
    profile: str | None = None
    max_attempts: int = Field(
        5, ge=1, description="botocore retry attempts (retry mode 'standard')."
    )
    wait_timeout: float = Field(
        3600, gt=0, description="Seconds to wait for a snapshot to complete."
    )
    copy_wait_timeout: float = Field(6 * 3600, gt=0, description="Seconds to wait for a copy.")
    poll_interval: float = Field(15, gt=0)


class AwsSnapshot(SpecBase):
    provider: Literal["aws"]
    volume_ids: list[str] = Field(default_factory=list)
    instance_id: str | None = Field(
        None, description="Snapshot all volumes of this instance together (CreateSnapshots)."
    )
    copy_to: list[str] = Field(default_factory=list, description="DR regions to copy snapshots to.")
    encrypted: bool = False
    kms_key_id: str | None = None

    def sources(self) -> list[tuple[str, SourceKind]]:
        out: list[tuple[str, SourceKind]] = [(v, "volume") for v in self.volume_ids]
        return out + ([(self.instance_id, "instance")] if self.instance_id else [])

    def copy_regions(self) -> list[str]:
        return list(self.copy_to)

    @model_validator(mode="after")
    def _something_to_snapshot(self) -> AwsSnapshot:
        if not self.volume_ids and not self.instance_id:
            raise ValueError("aws snapshot needs volume_ids or instance_id")
        return self
