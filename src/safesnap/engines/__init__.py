"""Database engines: how to get a consistent copy out of each kind of database and back in.

One module per engine (sqlite.py, mysql.py), each exposing a module-level `ENGINE` object that
satisfies `Engine`. This file is the one place they are registered. Commands and the pipeline
look engines up by the name stored in a plan target or an artifact's manifest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from safesnap.artifacts.store import ArtifactInfo
from safesnap.errors import ArtifactError

TargetT = TypeVar("TargetT", contravariant=True)


@dataclass(frozen=True)
class BackupContext:
    """Where and how a backup is written, shared by every engine."""

    dest: Path
    compression: str = "zstd"
    level: int | None = None
    threads: int = 1  # zstd compression workers; 0 = one per core; other codecs ignore it
    kind: str = "manual"  # nightly | pre-upgrade | manual
    plan: str = "default"
    run_id: str = ""
    progress: Callable[[int, int | None], None] | None = None  # (bytes done, bytes total)
    # The plan around this target, for what a files tree must leave out (engines/files/scope.py):
    # the other targets (their databases are backed up by their engine) and the destination root.
    others: tuple[Any, ...] = ()
    destination: Path | None = None


@dataclass
class BackupOutcome:
    artifact: ArtifactInfo
    details: dict[str, Any] = field(default_factory=dict)  # engine facts for the run report


class Engine(Protocol[TargetT]):
    """One database engine; `TargetT` is the plan target model it backs up (SqliteTarget,
    MysqlTarget, FilesTarget). Looked up by name (`get_engine`), so callers hold an
    `Engine[Any]`: the name in the plan or manifest is the dispatch, checked at run time."""

    name: str

    def backup(self, target: TargetT, ctx: BackupContext) -> BackupOutcome:
        """Copy the target consistently into one artifact (with manifest) under ctx.dest.
        Raises SourceError / SourceBusyError / IntegrityError / QuiesceError; leaves nothing
        half-written behind on any failure."""
        ...

    def quiesce(self, target: TargetT) -> AbstractContextManager[dict[str, Any]]:
        """Hold the database at a consistent point while a volume snapshot is requested.
        The yielded dict is filled with facts for the report (lock wait/held seconds, binlog
        coordinates, ...). Exit always releases, also on exceptions."""
        ...

    def verify(
        self, artifact: Path, manifest: Mapping[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Check that the artifact's content restores (checksum is checked by the caller).
        `options` carries engine-specific CLI options (e.g. MySQL connection). Raises
        IntegrityError when it does not."""
        ...

    def restore(
        self,
        artifact: Path,
        manifest: Mapping[str, Any],
        to: str,
        *,
        force: bool,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Restore into `to` (a file path for SQLite, a database name for MySQL), atomically
        where the engine allows. Refuses (RefusedError) to overwrite existing data unless
        `force`."""
        ...


_MODULES = {
    "sqlite": "safesnap.engines.sqlite.engine",
    "mysql": "safesnap.engines.mysql.engine",
    "files": "safesnap.engines.files.engine",
}


def get_engine(name: str) -> Engine[Any]:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise ArtifactError(
            f"unknown database engine {name!r}; known: {', '.join(sorted(_MODULES))}"
        )
    engine: Engine[Any] = importlib.import_module(module_name).ENGINE
    return engine
