"""What the provider contract suite needs from each backend under test.

Each module in tests/contract/backends/ defines a pytest fixture-like factory
`make_harness(tmp_path) -> Iterator[ProviderHarness]` (a generator: setup, yield, teardown)
and is picked up by tests/contract/conftest.py. The suite in test_provider_contract.py runs
unchanged against every backend: in-memory, command, moto (AWS), and the spec-validated
DigitalOcean and Hetzner fakes; each one twice, as the bare adapter and as the wrapped provider
the pipeline builds (tests/contract/wrapped.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from safesnap_providers.base import SnapshotProvider

Variant = Literal["bare", "wrapped"]


@dataclass
class ProviderHarness:
    provider: SnapshotProvider
    # Create a fresh source the provider can snapshot (volume id, or server/droplet id) in the
    # backend (moto, fake), returning (source_id, source_kind).
    make_source: Callable[[], tuple[str, str]]
    region: str
    other_region: str | None = None  # a second region, where cross-region copy is tested
    wait_timeout: float = 20.0  # seconds; the fakes and moto finish quickly
    # Knobs a fake exposes to inject failures (429 with retry-after, 5xx, slow actions...);
    # None where the backend cannot (moto, in-memory).
    inject: Callable[..., None] | None = None
    extras: dict[str, object] = field(default_factory=dict)
    # "bare": `provider` is the adapter itself; "wrapped": it is what registry.build_provider
    # makes of the adapter (retry, call counting, logging), the object the pipeline talks to.
    variant: Variant = "bare"
    # What the retry policy of a wrapped provider slept, in seconds (it never really sleeps).
    sleeps: list[float] = field(default_factory=list)
