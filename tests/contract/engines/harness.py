"""What the engine contract suite needs from each engine backend.

Each module beside this one (sqlite.py, mysql.py, files.py) defines
`make_harness(request, tmp_path) -> Iterator[EngineHarness]` (a generator: set up a source with
known content, yield, tear down) and may set `MARKS` (e.g. `pytest.mark.mariadb`) and
`KNOWN_BUGS`: {(test name, damage id or None): (reason, the exception the test fails with)},
promises the engine breaks today, run as strict xfails so that the fix turns them red. The suite
in tests/contract/test_engine_contract.py runs unchanged against every one of them, through the
Engine protocol only (safesnap.engines.get_engine), the way restic runs one suite against
every backend.

Contents are compared as plain values: rows per table for databases, bytes and permission
bits per file for the files engine. A destination is a string, as `Engine.restore(to=...)`
takes it: a file path for SQLite, a database name for MySQL, a directory for files.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from safesnap.engines import Engine

ENGINE_BACKENDS = "tests.contract.engines"


@dataclass
class EngineHarness:
    engine: Engine
    target: Any  # a plan target model (safesnap.config.plan) whose source holds known content
    missing: Any  # the same kind of target, naming a source that does not exist
    artifacts: Path  # BackupContext.dest: where backups are written (absent or empty at first)
    source_content: Callable[[], object]  # the source's content, read directly
    content_at: Callable[[str], object]  # what a destination holds; None when nothing is there
    new_destination: Callable[[], str]  # a destination where nothing exists yet
    occupied_destination: Callable[[], str]  # a destination holding other data
    # Everything in the area where destinations live (files, temp files, databases), named as
    # destinations are: a failed or refused restore leaves it as it was, a restore adds only
    # its destination.
    residue: Callable[[], set[str]]
    options: Mapping[str, Any] = field(default_factory=dict)  # for verify / restore


def engine_backend_names() -> list[str]:
    package = importlib.import_module(ENGINE_BACKENDS)
    names = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{ENGINE_BACKENDS}.{info.name}")
        if hasattr(module, "make_harness"):
            names.append(info.name)
    return sorted(names)


def engine_backend_params() -> list[Any]:
    """One pytest param per engine backend, carrying the backend's marks (mariadb...)."""
    params = []
    for name in engine_backend_names():
        module = importlib.import_module(f"{ENGINE_BACKENDS}.{name}")
        params.append(pytest.param(name, marks=list(getattr(module, "MARKS", [])), id=name))
    return params


KnownBugs = Mapping[tuple[str, str | None], tuple[str, type[BaseException]]]


def _mark_known_bug(request: pytest.FixtureRequest, bugs: KnownBugs) -> None:
    node = request.node
    test = getattr(node, "originalname", node.name)
    callspec = getattr(node, "callspec", None)
    damage = callspec.params.get("damaged") if callspec is not None else None
    bug = bugs.get((test, damage))
    if bug is not None:
        reason, raises = bug
        node.add_marker(pytest.mark.xfail(reason=reason, raises=raises, strict=True))


@contextmanager
def open_engine(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[EngineHarness]:
    module = importlib.import_module(f"{ENGINE_BACKENDS}.{name}")
    _mark_known_bug(request, getattr(module, "KNOWN_BUGS", {}))
    gen = module.make_harness(request, tmp_path)
    value = next(gen)
    try:
        yield value
    except BaseException:
        gen.close()
        raise
    next(gen, None)  # resume: checks after the backend's `yield` run too
