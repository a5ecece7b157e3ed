"""`safesnap drill --snapshots`: a volume from each target's newest cloud snapshot."""

from __future__ import annotations

from typing import Any

from safesnap.errors import ConfigError


def volume_drill(plan: Any, target: Any, request: Any) -> dict[str, Any]:  # noqa: ARG001
    raise ConfigError(f"target {target.name}: snapshot drills are not available yet")
