"""What every provider's plan models share: a strict base for `[providers.<name>]` settings and
for a target's `snapshot = { provider = ... }` table, and the pass-through model for third-party
providers. Each provider folder keeps its own models in `config.py`, beside its adapter; the
app's plan (safesnap.config) composes them, so a provider is understood and tested without it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safesnap_providers.base import SourceKind

SnapshotKind = Literal["nightly", "pre-upgrade", "manual"]


class SettingsBase(BaseModel):
    """`[providers.<name>]`: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class SpecBase(BaseModel):
    """A target's `snapshot = {...}` table for one built-in provider."""

    model_config = ConfigDict(extra="forbid")

    keep_days: int | None = Field(
        None, ge=1, description="Snapshots expire after N days (label 'expires-at')."
    )
    max_interval_wait: float = Field(
        60,
        ge=0,
        description="Seconds a run may wait, before quiescing, for the provider's minimum "
        "interval between snapshots of one volume; a longer wait fails the step at once.",
    )
    hold_until_done: bool = Field(
        False,
        description="Keep the database quiesced until the snapshot has finished, not just "
        "until the request returns (bounded by the target's max_lock_hold_seconds).",
    )

    def sources(self) -> list[tuple[str, SourceKind]]:
        """What this spec snapshots, in request order: (id, kind) pairs. Empty: the provider
        covers the target as a whole (the command provider)."""
        return []

    def copy_regions(self) -> list[str]:
        """DR regions the snapshots are copied to after they complete."""
        return []

    def wait_timeout(self) -> float | None:
        """Seconds to wait for a snapshot when `[providers.<name>]` does not say (None: 1 h)."""
        return None

    def max_snapshots_per_volume(self) -> int | None:
        """The provider's cap on snapshots of one volume this spec snapshots (None: no cap).
        The plan checks its retention against it before anything runs."""
        return None


class ExternalSnapshot(SpecBase):
    """A provider added by a third-party package (entry point group `safesnap.providers`).
    No cap or timeout is known here; the plugin's adapter declares them in its capabilities."""

    model_config = ConfigDict(extra="allow")
    provider: str

    # A plug-in's table is free-form; these read the conventional keys when it uses them.
    def sources(self) -> list[tuple[str, SourceKind]]:
        extra = self.model_extra or {}
        out: list[tuple[str, SourceKind]] = [
            (str(v), "volume") for v in extra.get("volume_ids", [])
        ]
        for key, kind in (("instance_id", "instance"), ("server_id", "server")):
            if extra.get(key) is not None:
                out.append((str(extra[key]), kind))  # type: ignore[arg-type]
        return out

    def copy_regions(self) -> list[str]:
        return [str(r) for r in (self.model_extra or {}).get("copy_to", [])]
