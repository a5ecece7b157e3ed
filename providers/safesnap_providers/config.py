"""What every provider's plan models share: a strict base for `[providers.<name>]` settings and
for a target's `snapshot = { provider = ... }` table, and the pass-through model for third-party
providers. Each provider folder keeps its own models in `config.py`, beside its adapter; the
app's plan (safesnap.config) composes them, so a provider is understood and tested without it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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

    def max_snapshots_per_volume(self) -> int | None:
        """The provider's cap on snapshots of one volume this spec snapshots (None: no cap).
        The plan checks its retention against it before anything runs."""
        return None


class ExternalSnapshot(BaseModel):
    """A provider added by a third-party package (entry point group `safesnap.providers`)."""

    model_config = ConfigDict(extra="allow")
    provider: str
    keep_days: int | None = Field(None, ge=1)

    def max_snapshots_per_volume(self) -> int | None:
        return None  # unknown here; the plugin's adapter declares it in its capabilities
