"""The `snapshot = { provider = ... }` table of a target: which volumes or server to snapshot.

Each built-in provider has its own model, so a key that provider does not understand is an
error at validation time. A provider name that is not built in is accepted as an
`ExternalSnapshot` (options passed through to a provider registered by an entry point); the
registry rejects names that no installed provider answers to.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

SnapshotKind = Literal["nightly", "pre-upgrade", "manual"]
DO_VOLUME_CAP = 25  # DigitalOcean: snapshots per volume (specs/README.md)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_days: int | None = Field(
        None, ge=1, description="Snapshots expire after N days (label 'expires-at')."
    )


class AwsSnapshot(_Spec):
    provider: Literal["aws"]
    volume_ids: list[str] = Field(default_factory=list)
    instance_id: str | None = Field(
        None, description="Snapshot all volumes of this instance together (CreateSnapshots)."
    )
    copy_to: list[str] = Field(default_factory=list, description="DR regions to copy snapshots to.")
    encrypted: bool = False
    kms_key_id: str | None = None

    @model_validator(mode="after")
    def _something_to_snapshot(self) -> AwsSnapshot:
        if not self.volume_ids and not self.instance_id:
            raise ValueError("aws snapshot needs volume_ids or instance_id")
        return self


class DigitalOceanSnapshot(_Spec):
    provider: Literal["digitalocean"]
    volume_ids: list[str] = Field(default_factory=list)
    droplet_id: int | None = None
    copy_to: list[str] = Field(
        default_factory=list,
        description="Regions for droplet snapshots only; volume snapshots cannot change region.",
    )

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


class HetznerSnapshot(_Spec):
    provider: Literal["hetzner"]
    server_id: int | None = None
    volume_ids: list[str] = Field(default_factory=list)
    protect: bool = Field(False, description="Enable delete protection (pre-upgrade snapshots).")

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


class CommandSnapshot(_Spec):
    provider: Literal["command"]
    create: str = Field(
        description="Command run to create a snapshot; {name} is the snapshot name."
    )
    list: str | None = Field(None, description="Command printing one snapshot name per line.")
    delete: str | None = Field(None, description="Command deleting snapshot {name}.")
    restore: str | None = Field(None, description="Command restoring snapshot {name}.")
    timeout: float = Field(300, gt=0, description="Seconds each command may take.")


class ExternalSnapshot(BaseModel):
    """A provider added by a third-party package (entry point group `safesnap.providers`)."""

    model_config = ConfigDict(extra="allow")
    provider: str
    keep_days: int | None = Field(None, ge=1)


_BUILT_IN = {"aws", "digitalocean", "hetzner", "command"}


def _provider_tag(value: Any) -> str:
    name = value.get("provider") if isinstance(value, dict) else getattr(value, "provider", None)
    return str(name) if name in _BUILT_IN else "external"


SnapshotSpec = Annotated[
    Annotated[AwsSnapshot, Tag("aws")]
    | Annotated[DigitalOceanSnapshot, Tag("digitalocean")]
    | Annotated[HetznerSnapshot, Tag("hetzner")]
    | Annotated[CommandSnapshot, Tag("command")]
    | Annotated[ExternalSnapshot, Tag("external")],
    Discriminator(_provider_tag),
]
