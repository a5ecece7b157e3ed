"""Config files as an artifact: backup, verify, restore into a new directory; a file that
vanishes mid-plan, a tampered archive and an occupied restore target are handled safely."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from safesnap.artifacts.store import open_decompressed, read_manifest, write_artifact
from safesnap.config.plan import FilesTarget
from safesnap.engines import BackupContext, get_engine
from safesnap.errors import IntegrityError, RefusedError, SourceError

SAFESNAP = str(Path(sys.executable).parent / "safesnap")


@pytest.fixture
def config_tree(tmp_path: Path) -> Path:
    root = tmp_path / "etc" / "torrust"
    (root / "tracker").mkdir(parents=True)
    (root / "tracker" / "tracker.toml").write_text('[core]\nmode = "public"\n')
    (root / "compose.env").write_bytes(b"\x00binary\xff" * 1000)
    return root


def test_backup_verify_restore_round_trip(tmp_path: Path, config_tree: Path) -> None:
    engine = get_engine("files")
    target = FilesTarget(name="config", paths=[config_tree])
    outcome = engine.backup(target, BackupContext(dest=tmp_path / "dest"))
    manifest = read_manifest(outcome.artifact.path)
    assert len(manifest["files"]) == 2
    assert engine.verify(outcome.artifact.path, manifest, {}) == {"files": 2, "symlinks": 0}
    out = tmp_path / "restored"
    engine.restore(outcome.artifact.path, manifest, str(out), force=False, options={})
    rel = str(config_tree.resolve()).lstrip("/")
    for name in ("tracker/tracker.toml", "compose.env"):
        assert (out / rel / name).read_bytes() == (config_tree / name).read_bytes()
    with pytest.raises(RefusedError):
        engine.restore(outcome.artifact.path, manifest, str(out), force=False, options={})


def test_missing_path_is_a_source_error_and_writes_nothing(tmp_path: Path) -> None:
    target = FilesTarget(name="config", paths=[tmp_path / "gone.toml"])
    with pytest.raises(SourceError, match=r"gone\.toml"):
        get_engine("files").backup(target, BackupContext(dest=tmp_path / "dest"))
    assert not (tmp_path / "dest").exists() or list((tmp_path / "dest").iterdir()) == []


def test_tampered_archive_fails_verification(tmp_path: Path, config_tree: Path) -> None:
    engine = get_engine("files")
    outcome = engine.backup(
        FilesTarget(name="config", paths=[config_tree]), BackupContext(dest=tmp_path / "a")
    )
    manifest = read_manifest(outcome.artifact.path)
    # Re-pack the same names with one changed file, under a correctly checksummed artifact:
    # only the per-file hashes in the manifest can notice.
    buf = io.BytesIO()
    with (
        open_decompressed(outcome.artifact.path) as src,
        tarfile.open(fileobj=src, mode="r|") as tar_in,
        tarfile.open(fileobj=buf, mode="w") as tar_out,
    ):
        for member in tar_in:
            data = tar_in.extractfile(member)
            payload = b"evil" if member.name.endswith(".toml") else (data.read() if data else b"")
            member.size = len(payload)
            tar_out.addfile(member, io.BytesIO(payload))
    buf.seek(0)
    forged = write_artifact(buf, tmp_path / "b", target="config", engine="files", ext="tar")
    with pytest.raises(IntegrityError, match=r"tracker\.toml"):
        engine.verify(forged.path, manifest, {})


def test_files_target_in_a_plan_run(tmp_path: Path, config_tree: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[[targets]]\nname = "config"\nengine = "files"\npaths = ["{config_tree}"]\n'
    )
    proc = subprocess.run(
        [SAFESNAP, "run", "--config", str(plan), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    assert [s["name"] for s in target["steps"]] == ["backup", "verify", "prune"]
    assert target["steps"][0]["files"] == 2
