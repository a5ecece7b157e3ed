"""The Hetzner Cloud provider's plan models: `[providers.hetzner]` and a target's
`snapshot = { provider = "hetzner" }`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from safesnap_providers.base import SourceKind
from safesnap_providers.config import SettingsBase, SpecBase


class HetznerSettings(SettingsBase):
    token_env: str = "HCLOUD_TOKEN"  # noqa: S105 (a variable name)
    endpoint_url: str | None = None
    wait_timeout: float = Field(3600, gt=0)
    poll_interval: float = Field(5, gt=0)


class HetznerSnapshot(SpecBase):
    provider: Literal["hetzner"]
    server_id: int | None = None
    volume_ids: list[str] = Field(default_factory=list)
    protect: bool = Field(False, description="Enable delete protection (pre-upgrade snapshots).")
    restore_server_type: str | None = Field(
        None,
        description="Server type for restores (default: the cheapest whose disk fits).",
    )

    def sources(self) -> list[tuple[str, SourceKind]]:
        return [(str(self.server_id), "server")] if self.server_id is not None else []

    @model_validator(mode="after")
    def _check(self) -> HetznerSnapshot:
        if self.volume_ids:
            raise ValueError(
                "Hetzner Cloud has no volume snapshot API, and server snapshots do not include "
                "attached volumes; snapshot the server (server_id) and let safesnap copy the "
                "database as an artifact to the destination and [[replicas]] instead"
            )
        if self.server_id is None:
            raise ValueError("hetzner snapshot needs server_id")
        return self
