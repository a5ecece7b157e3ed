"""The engine contract (safesnap.engines.Engine), one suite for every engine: sqlite, mysql
(the real MariaDB) and files, each a backend in tests/contract/engines/.

Each test states one promise of the Engine protocol's docstrings, driven only through
`get_engine(name).backup / verify / restore`: what is restored equals what was backed up;
existing data is refused without force and replaced with it; a damaged artifact fails with
IntegrityError and nothing is written at the destination; a missing source is a SourceError
that leaves nothing half-written among the artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from safesnap.artifacts.store import read_manifest
from safesnap.engines import BackupContext, BackupOutcome
from safesnap.errors import IntegrityError, RefusedError, SourceError
from tests.contract.engines.harness import EngineHarness


def _backup(h: EngineHarness, compression: str = "zstd") -> tuple[BackupOutcome, dict[str, Any]]:
    ctx = BackupContext(dest=h.artifacts, plan="contract", compression=compression)
    outcome = h.engine.backup(h.target, ctx)
    return outcome, read_manifest(outcome.artifact.path)


def _listing(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


@dataclass(frozen=True)
class Damage:
    compression: str
    where: float  # fraction of the stored file's length; the byte there has every bit flipped


DAMAGES = {
    # The default codec: zstd's frame checksum and the manifest's sha256 catch it.
    "zstd-middle-byte": Damage("zstd", 0.5),
    # No codec to notice: the engine's own reading (tar headers, the SQL client) meets the
    # damage before the sha256 over the whole file is known, and must still call it damage.
    "plain-first-byte": Damage("none", 0.0),
}


@pytest.fixture(params=list(DAMAGES))
def damaged(
    request: pytest.FixtureRequest, engine_harness: EngineHarness
) -> tuple[Path, dict[str, Any]]:
    """A backup of the harness's source whose stored file then lost one byte."""
    damage = DAMAGES[request.param]
    outcome, manifest = _backup(engine_harness, damage.compression)
    artifact = outcome.artifact.path
    data = bytearray(artifact.read_bytes())
    data[min(len(data) - 1, int(len(data) * damage.where))] ^= 0xFF
    artifact.write_bytes(bytes(data))
    return artifact, manifest


def test_backup_verify_restore_round_trip(engine_harness: EngineHarness) -> None:
    h = engine_harness
    outcome, manifest = _backup(h)
    artifact = outcome.artifact.path
    assert _listing(h.artifacts) == {artifact.name, outcome.artifact.manifest_path.name}
    h.engine.verify(artifact, manifest, h.options)
    to, before = h.new_destination(), h.residue()
    h.engine.restore(artifact, manifest, to, force=False, options=h.options)
    assert h.content_at(to) == h.source_content()
    assert h.residue() == before | {to}  # the destination, and no temp file beside it


def test_restore_refuses_existing_data_without_force(engine_harness: EngineHarness) -> None:
    h = engine_harness
    outcome, manifest = _backup(h)
    to = h.occupied_destination()
    held, before = h.content_at(to), h.residue()
    with pytest.raises(RefusedError):
        h.engine.restore(outcome.artifact.path, manifest, to, force=False, options=h.options)
    assert h.content_at(to) == held
    assert h.residue() == before


def test_restore_with_force_replaces_existing_data(engine_harness: EngineHarness) -> None:
    h = engine_harness
    outcome, manifest = _backup(h)
    to = h.occupied_destination()
    before = h.residue()
    h.engine.restore(outcome.artifact.path, manifest, to, force=True, options=h.options)
    assert h.content_at(to) == h.source_content()  # nothing of the old data survives
    assert h.residue() == before


def test_damaged_artifact_fails_verify(
    engine_harness: EngineHarness, damaged: tuple[Path, dict[str, Any]]
) -> None:
    h, (artifact, manifest) = engine_harness, damaged
    before = h.residue()
    with pytest.raises(IntegrityError):
        h.engine.verify(artifact, manifest, h.options)
    assert h.residue() == before


def test_damaged_artifact_restores_nothing(
    engine_harness: EngineHarness, damaged: tuple[Path, dict[str, Any]]
) -> None:
    h, (artifact, manifest) = engine_harness, damaged
    to, before = h.new_destination(), h.residue()
    with pytest.raises(IntegrityError):
        h.engine.restore(artifact, manifest, to, force=False, options=h.options)
    assert h.content_at(to) is None
    assert h.residue() == before


def test_damaged_artifact_leaves_existing_data_even_with_force(
    engine_harness: EngineHarness, damaged: tuple[Path, dict[str, Any]]
) -> None:
    """--force allows replacing the data with the backup, not losing it to a bad backup."""
    h, (artifact, manifest) = engine_harness, damaged
    to = h.occupied_destination()
    held, before = h.content_at(to), h.residue()
    with pytest.raises(IntegrityError):
        h.engine.restore(artifact, manifest, to, force=True, options=h.options)
    assert h.content_at(to) == held
    assert h.residue() == before


def test_missing_source_is_a_source_error_and_writes_nothing(
    engine_harness: EngineHarness,
) -> None:
    h = engine_harness
    with pytest.raises(SourceError):
        h.engine.backup(h.missing, BackupContext(dest=h.artifacts, plan="contract"))
    assert _listing(h.artifacts) == set()  # no artifact, no manifest, no temp file
