"""Where providers are registered: here, and only here.

Built-in adapters are named by "module:factory" strings, so importing the registry imports no
cloud SDK; third-party packages add providers through the entry point group
`safesnap.providers` (e.g. `[project.entry-points."safesnap.providers"] mycloud =
"mycloud_safesnap:from_settings"`). Every factory has one signature:

    def from_settings(config, spec, *, env_file, region) -> SnapshotProvider

where `config` is the provider's `[providers.<name>]` settings model (or None) and `spec` the
target's `snapshot = {...}` table.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from safesnap.errors import ConfigError
from safesnap_providers.base import SnapshotProvider
from safesnap_providers.retry import DEFAULT_POLICY, RetryPolicy
from safesnap_providers.wrappers import Counting, DryRun, Logging, Retrying

log = logging.getLogger("safesnap.providers")

ENTRY_POINT_GROUP = "safesnap.providers"
BUILT_IN: dict[str, str] = {
    "aws": "safesnap_providers.aws.adapter:from_settings",
    "digitalocean": "safesnap_providers.digitalocean.adapter:from_settings",
    "hetzner": "safesnap_providers.hetzner.adapter:from_settings",
    "command": "safesnap_providers.command.adapter:from_settings",
    "memory": "safesnap_providers.testing.memory:from_settings",
}

Factory = Callable[..., SnapshotProvider]


def _third_party() -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILT_IN:
            # A plugin must not silently replace a built-in adapter (and its safety checks).
            log.warning("ignoring entry point %r: a built-in provider has that name", ep.name)
            continue
        found[ep.name] = ep.value
    return found


def known_providers() -> dict[str, str]:
    """name -> "module:factory" for every provider this installation can build."""
    return {**_third_party(), **BUILT_IN}


def load_factory(name: str) -> Factory:
    known = known_providers()
    target = known.get(name)
    if target is None:
        raise ConfigError(
            f"unknown snapshot provider {name!r}; known: {', '.join(sorted(known))}",
            hint="Check `provider = ...` in the target's snapshot table, or install the "
            "package that provides it (entry point group safesnap.providers).",
        )
    module_name, _, attr = target.partition(":")
    try:
        factory: Factory = getattr(importlib.import_module(module_name), attr or "from_settings")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"snapshot provider {name!r} could not be loaded from {target}: {exc}",
            hint="Reinstall safesnap or the package that provides this provider.",
        ) from None
    return factory


def provider_config(plan: Any, name: str) -> object | None:
    """The `[providers.<name>]` settings model, or None when the plan has none."""
    providers = getattr(plan, "providers", None)
    return getattr(providers, name, None) if providers is not None else None


def build_provider(
    spec: Any,
    plan: Any,
    *,
    env_file: Path | None = None,
    region: str | None = None,
    dry_run: bool = False,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> SnapshotProvider:
    """Build the adapter for a target's snapshot spec, wrapped for retries, call counting and
    logging (and dry-run when asked). Raises ConfigError for an unknown or unloadable
    provider, or when the adapter rejects its settings (e.g. a missing token variable)."""
    name = str(spec.provider)
    factory = load_factory(name)
    adapter = factory(provider_config(plan, name), spec, env_file=env_file, region=region)
    wrapped: SnapshotProvider = Logging(Retrying(Counting(adapter), policy))
    if dry_run:
        wrapped = DryRun(wrapped)
    return wrapped
