"""Wrap a contract backend's adapter exactly as the pipeline does: through the registry.

The pipeline never talks to a bare adapter: `registry.build_provider` wraps it (today
Logging(Retrying(Counting(adapter))), and DryRun outermost under --dry-run). So that this
suite follows any change to that stack, the wrapped variant is built by `build_provider`
itself, not by stacking the wrappers here. The backend's adapter (set up against moto or a
fake) reaches `build_provider` the way a third-party provider does: through an entry point in
the `safesnap.providers` group, declared by a throw-away distribution on sys.path whose factory
hands back the adapter carried by the spec.

The retry policy is the pipeline's DEFAULT_POLICY with its (injectable) sleep recorded instead
of slept, so a retried 429 costs no time and the suite can check what the wrapper waited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from safesnap_providers import registry
from safesnap_providers.base import SnapshotProvider
from safesnap_providers.retry import DEFAULT_POLICY
from tests.contract.harness import ProviderHarness

PLUGIN = "contract-adapter"


@dataclass(frozen=True)
class AdapterSpec:
    """A target's `snapshot = {...}` table as build_provider reads it (`provider` names the
    factory), carrying the ready-made adapter for the factory to return."""

    adapter: SnapshotProvider
    provider: str = PLUGIN


def from_spec(
    config: object | None, spec: AdapterSpec, *, env_file: Path | None, region: str | None
) -> SnapshotProvider:
    """The plugin's factory, with the signature every provider factory has."""
    del config, env_file, region
    return spec.adapter


def register_plugin(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    """Declare the `contract-adapter` entry point for this test only (sys.path is restored by
    monkeypatch at teardown)."""
    dist = where / "safesnap_contract_adapter-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: safesnap-contract-adapter\nVersion: 0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\n{PLUGIN} = {__name__}:from_spec\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(where))


class Wrapper:
    """Builds pipeline-wrapped providers around adapters, sharing one recorded-sleep policy."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
        register_plugin(monkeypatch, where)
        self.sleeps: list[float] = []
        self.policy = replace(DEFAULT_POLICY, sleep=self.sleeps.append)

    def wrap(self, adapter: SnapshotProvider, *, dry_run: bool = False) -> SnapshotProvider:
        return registry.build_provider(
            AdapterSpec(adapter), None, policy=self.policy, dry_run=dry_run
        )

    def harness(self, bare: ProviderHarness) -> ProviderHarness:
        """The same backend, with every provider it hands out wrapped for the pipeline."""
        extras = dict(bare.extras)
        unreachable = extras.get("unreachable")
        if callable(unreachable):
            extras["unreachable"] = lambda: self.wrap(unreachable())
        return replace(
            bare,
            provider=self.wrap(bare.provider),
            extras=extras,
            variant="wrapped",
            sleeps=self.sleeps,
        )
