"""Run the one provider contract suite against every backend in tests/contract/backends/.

A backend module exposes `make_harness(tmp_path)`, a generator that sets up the backend
(moto server, fake HTTP server, temp dirs), yields a `ProviderHarness`, and tears down.

Optional `ProviderHarness.extras` the suite uses when a backend offers them:
- "make_foreign_snapshot": () -> str, the id of a snapshot safesnap did not create (no labels);
- "exists": (snapshot_id) -> bool, asks the backend directly (not through the provider);
- "page_size": int, the provider's list page size (the suite creates more than one page);
- "make_instance": () -> str, an instance/server with several volumes (multi-volume sets);
- "unreachable": () -> SnapshotProvider, the same adapter pointed at a dead endpoint;
- "missing_source": (source_id, source_kind) that does not exist in the backend.
`ProviderHarness.inject(status=..., retry_after=None)` makes the next API call fail with that
HTTP status (429 with Retry-After, 5xx), where the backend can.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.contract.backends as backends_pkg
from tests.contract.harness import ProviderHarness


def _backend_names() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(backends_pkg.__path__):
        module = importlib.import_module(f"tests.contract.backends.{info.name}")
        if hasattr(module, "make_harness"):
            names.append(info.name)
    return sorted(names)


@pytest.fixture(params=_backend_names())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderHarness]:
    module = importlib.import_module(f"tests.contract.backends.{request.param}")
    gen = module.make_harness(tmp_path)
    yield next(gen)
    # Resume rather than close: close() raises GeneratorExit at the backend's `yield`, so the
    # code after it (the fakes' assert_clean, which fails the test on any request the
    # published API would reject) never ran. Its `finally` still stops the fake if that fails.
    next(gen, None)
