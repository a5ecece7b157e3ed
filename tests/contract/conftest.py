"""Run the one provider contract suite against every backend in tests/contract/backends/,
each as the bare adapter and as the wrapped provider the pipeline builds.

A backend module exposes `make_harness(tmp_path)`, a generator that sets up the backend
(moto server, fake HTTP server, temp dirs), yields a `ProviderHarness`, and tears down.

Optional `ProviderHarness.extras` the suite uses when a backend offers them:
- "make_foreign_snapshot": () -> str, the id of a snapshot safesnap did not create (no labels);
- "exists": (snapshot_id) -> bool, asks the backend directly (not through the provider);
- "page_size": int, the provider's list page size (the suite creates more than one page);
- "make_instance": () -> str, an instance/server with several volumes (multi-volume sets);
- "unreachable": () -> SnapshotProvider, the same adapter pointed at a dead endpoint;
- "missing_source": (source_id, source_kind) that does not exist in the backend;
- "world": () -> object, everything the backend holds (its state file, the fake's resources and
  mutating requests, moto's snapshots and volumes), read directly, not through the provider:
  equal before and after means nothing was changed (the dry-run contract).
`ProviderHarness.inject(status=..., retry_after=None)` makes the next API call fail with that
HTTP status (429 with Retry-After, 5xx), where the backend can.

The engine contract suite (test_engine_contract.py) has its own backends in engines/.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import tests.contract.backends as backends_pkg
from tests.contract.engines.harness import EngineHarness, engine_backend_params, open_engine
from tests.contract.harness import ProviderHarness, Variant
from tests.contract.wrapped import Wrapper


def _backend_names() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(backends_pkg.__path__):
        module = importlib.import_module(f"tests.contract.backends.{info.name}")
        if hasattr(module, "make_harness"):
            names.append(info.name)
    return sorted(names)


BACKENDS = _backend_names()
VARIANTS: tuple[Variant, ...] = ("bare", "wrapped")


@contextmanager
def open_backend(name: str, tmp_path: Path) -> Iterator[ProviderHarness]:
    module = importlib.import_module(f"tests.contract.backends.{name}")
    gen = module.make_harness(tmp_path)
    value = next(gen)
    try:
        yield value
    except BaseException:
        gen.close()  # teardown only (finally blocks)
        raise
    # Resume rather than close: the code after a backend's `yield` (the fakes' assert_clean,
    # which fails the test on any request the published API would reject) must run too.
    next(gen, None)


@pytest.fixture(
    params=[(b, v) for b in BACKENDS for v in VARIANTS],
    ids=[f"{b}-{v}" for b in BACKENDS for v in VARIANTS],
)
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProviderHarness]:
    name, variant = request.param
    with open_backend(name, tmp_path) as bare:
        if variant == "bare":
            yield bare
        else:
            yield Wrapper(monkeypatch, tmp_path / "plugin").harness(bare)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderHarness]:
    """One backend with its bare adapter (the dry-run suite wraps it itself)."""
    with open_backend(request.param, tmp_path) as bare:
        yield bare


@pytest.fixture
def wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Wrapper:
    return Wrapper(monkeypatch, tmp_path / "plugin")


@pytest.fixture(params=engine_backend_params())
def engine_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHarness]:
    with open_engine(request.param, request, tmp_path) as harness:
        yield harness
