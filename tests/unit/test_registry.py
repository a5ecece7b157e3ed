"""The provider registry: built-ins by name, entry-point plugins, wrappers applied."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from safesnap.config.plan import load_plan
from safesnap.errors import ConfigError
from safesnap_providers import registry
from safesnap_providers.base import SnapshotRequest, api_call_count, managed_labels
from safesnap_providers.config import ExternalSnapshot
from safesnap_providers.testing.memory import MemoryProvider
from safesnap_providers.wrappers import DryRun, unwrap


def _plan(tmp_path: Path, snapshot: str) -> object:
    cfg = tmp_path / "plan.toml"
    cfg.write_text(
        textwrap.dedent(f"""
        plan = "p"
        [destination]
        path = "{tmp_path / "out"}"
        [[targets]]
        name = "db"
        path = "{tmp_path / "db.sqlite"}"
        snapshot = {snapshot}
        """)
    )
    return load_plan(cfg, env_file=tmp_path / "none.env")


def test_unknown_provider_lists_known_ones(tmp_path: Path) -> None:
    plan = _plan(tmp_path, '{ provider = "nosuchcloud" }')
    spec = plan.targets[0].snapshot  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as info:
        registry.build_provider(spec, plan)
    for name in ("aws", "command", "digitalocean", "hetzner", "memory"):
        assert name in info.value.message


def test_memory_provider_is_built_and_wrapped(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    plan = _plan(tmp_path, f'{{ provider = "memory", state_file = "{state}" }}')
    provider = registry.build_provider(plan.targets[0].snapshot, plan)  # type: ignore[attr-defined]
    inner = unwrap(provider)
    assert isinstance(inner, MemoryProvider)
    vol = inner.add_volume()
    labels = managed_labels(plan="p", target="db", run_id="r", kind="manual")
    provider.create_snapshot(SnapshotRequest(source_id=vol, name="x", labels=labels))
    assert len(provider.list_snapshots(labels)) == 1
    assert api_call_count(provider) == 2
    assert state.exists()  # state survives for the next CLI invocation


def test_dry_run_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    plan = _plan(tmp_path, f'{{ provider = "memory", state_file = "{state}" }}')
    provider = registry.build_provider(plan.targets[0].snapshot, plan, dry_run=True)  # type: ignore[attr-defined]
    assert isinstance(provider, DryRun)
    inner = unwrap(provider)
    assert isinstance(inner, MemoryProvider)
    vol = inner.add_volume()
    labels = managed_labels(plan="p", target="db", run_id="r", kind="manual")
    snaps = provider.create_snapshot(SnapshotRequest(source_id=vol, name="x", labels=labels))
    assert snaps[0].id.startswith("dry-run-")
    assert snaps[0].state == "completed"
    assert provider.wait(snaps[0], timeout=1) == snaps[0]
    assert provider.list_snapshots(labels) == []
    provider.delete_snapshot(snaps[0])
    assert provider.restore_volume(snaps[0], name="v").startswith("dry-run-")


def test_entry_point_provider_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = tmp_path / "thirdparty_cloud.py"
    module.write_text(
        "from safesnap_providers.testing.memory import MemoryProvider\n"
        "def make(config, spec, *, env_file, region):\n"
        "    p = MemoryProvider(region=region or 'tp-1')\n"
        "    p.name = 'thirdparty'\n"
        "    return p\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        EntryPoint("thirdparty", "thirdparty_cloud:make", registry.ENTRY_POINT_GROUP),
        EntryPoint("aws", "thirdparty_cloud:make", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    assert registry.known_providers()["aws"] == registry.BUILT_IN["aws"]  # no hijacking
    spec = ExternalSnapshot(provider="thirdparty")
    provider = registry.build_provider(spec, object(), region="tp-2")
    assert provider.name == "thirdparty"
    assert provider.region == "tp-2"
    sys.modules.pop("thirdparty_cloud", None)


def test_broken_entry_point_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [EntryPoint("broken", "no_such_module_xyz:make", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    with pytest.raises(ConfigError, match="could not be loaded"):
        registry.build_provider(ExternalSnapshot(provider="broken"), object())


@pytest.mark.parametrize("name", sorted(registry.BUILT_IN))
def test_built_in_targets_name_a_from_settings_factory(name: str) -> None:
    module, _, attr = registry.BUILT_IN[name].partition(":")
    assert attr == "from_settings"
    assert module.startswith("safesnap_providers.")
