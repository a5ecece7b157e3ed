"""The command provider's plan model: a target's `snapshot = { provider = "command" }`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from safesnap_providers.config import SpecBase


class CommandSnapshot(SpecBase):
    provider: Literal["command"]
    create: str = Field(
        description="Command run to create a snapshot; {name} is the snapshot name."
    )
    list: str | None = Field(None, description="Command printing one snapshot name per line.")
    delete: str | None = Field(None, description="Command deleting snapshot {name}.")
    restore: str | None = Field(None, description="Command restoring snapshot {name}.")
    timeout: float = Field(300, gt=0, description="Seconds each command may take.")

    def wait_timeout(self) -> float | None:
        return self.timeout
