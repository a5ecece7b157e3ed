"""The DigitalOcean provider's plan models: `[providers.digitalocean]` and a target's
`snapshot = { provider = "digitalocean" }`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from safesnap_providers.base import SourceKind
from safesnap_providers.config import SettingsBase, SpecBase

DO_VOLUME_CAP = 25  # DigitalOcean: snapshots per volume (tests/specs/README.md)


class DigitalOceanSettings(SettingsBase):
    token_env: str = "DIGITALOCEAN_TOKEN"  # noqa: S105 (a variable name)
    endpoint_url: str | None = None
    wait_timeout: float = Field(1800, gt=0)
    poll_interval: float = Field(10, gt=0)


class DigitalOceanSnapshot(SpecBase):
    provider: Literal["digitalocean"]
    volume_ids: list[str] = Field(default_factory=list)
    droplet_id: int | None = None
    copy_to: list[str] = Field(
        default_factory=list,
        description="Regions for droplet snapshots only; volume snapshots cannot change region.",
    )
    restore_size: str | None = Field(
        None,
        description="Droplet size slug for restores (default: the cheapest whose disk fits).",
    )

    def max_snapshots_per_volume(self) -> int | None:
        return DO_VOLUME_CAP if self.volume_ids else None

    def sources(self) -> list[tuple[str, SourceKind]]:
        out: list[tuple[str, SourceKind]] = [(v, "volume") for v in self.volume_ids]
        return out + ([(str(self.droplet_id), "server")] if self.droplet_id is not None else [])

    def copy_regions(self) -> list[str]:
        return list(self.copy_to)

    @model_validator(mode="after")
    def _check(self) -> DigitalOceanSnapshot:
        if not self.volume_ids and self.droplet_id is None:
            raise ValueError("digitalocean snapshot needs volume_ids or droplet_id")
        if self.copy_to and self.volume_ids and self.droplet_id is None:
            raise ValueError(
                "DigitalOcean volume snapshots cannot change region (no API for it); drop copy_to "
                "and add a [[replicas]] object store to carry the artifacts across regions instead"
            )
        return self
