"""The `snapshot = { provider = ... }` table of a target: which volumes or server to snapshot.

Each built-in provider has its own model, kept beside its adapter
(`safesnap_providers/<name>/config.py`), so a key that provider does not understand is an error
at validation time. A provider name that is not built in is accepted as an
`ExternalSnapshot` (options passed through to a provider registered by an entry point); the
registry rejects names that no installed provider answers to.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Tag

from safesnap_providers.aws.config import AwsSnapshot
from safesnap_providers.command.config import CommandSnapshot
from safesnap_providers.config import ExternalSnapshot
from safesnap_providers.digitalocean.config import DigitalOceanSnapshot
from safesnap_providers.hetzner.config import HetznerSnapshot

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
