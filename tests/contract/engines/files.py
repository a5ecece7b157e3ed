"""The files engine as a contract backend: a config tree (text, secrets at 0600, an executable,
an empty file, incompressible bytes, a nested directory) plus one file outside it."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from safesnap.config.plan import FilesTarget
from safesnap.engines import get_engine
from tests.contract.engines.harness import EngineHarness

TREE: dict[str, tuple[bytes, int]] = {
    "tracker/tracker.toml": (b'[core]\nmode = "public"\n', 0o644),
    "compose.env": (b"TRACKER_ADMIN_TOKEN=not-a-real-secret\n", 0o600),
    "bin/healthcheck.sh": (b"#!/bin/sh\nexit 0\n", 0o755),
    "empty.conf": (b"", 0o644),
    "blobs/state.bin": (os.urandom(64 * 1024), 0o640),  # incompressible: stored zstd blocks
}


def content(files: list[Path], under: Path = Path("/")) -> dict[str, tuple[bytes, int]]:
    """{absolute path as backed up: (bytes, permission bits)}; `under` is where a restore put
    the tree (the engine recreates absolute paths below its destination)."""
    out = {}
    for path in files:
        name = "/" + str(path.relative_to(under))
        out[name] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return out


def regular_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _populate(root: Path) -> Path:
    for name, (data, mode) in TREE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    single = root.parent / "docker-compose.yml"
    single.write_text("services: {tracker: {image: torrust/tracker}}\n")
    return single


def make_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHarness]:
    del request
    root = (tmp_path / "source" / "torrust").resolve()
    single = _populate(root)
    area = tmp_path / "restore-area"
    area.mkdir()

    def content_at(to: str) -> object:
        dest = Path(to)
        return content(regular_files(dest), under=dest) if dest.exists() else None

    def occupied() -> str:
        dest = area / f"occupied-{uuid.uuid4().hex[:8]}"
        dest.mkdir()
        (dest / "stale.toml").write_text("left from last time\n")
        return str(dest)

    yield EngineHarness(
        engine=get_engine("files"),
        target=FilesTarget(name="config", paths=[root, single]),
        missing=FilesTarget(name="config", paths=[root, tmp_path / "source" / "gone.toml"]),
        artifacts=tmp_path / "artifacts",
        source_content=lambda: content([*regular_files(root), single]),
        content_at=content_at,
        new_destination=lambda: str(area / f"new-{uuid.uuid4().hex[:8]}"),
        occupied_destination=occupied,
        residue=lambda: {str(p) for p in area.iterdir()},
    )
