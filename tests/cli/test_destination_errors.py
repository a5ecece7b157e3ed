"""A destination that cannot be written ends as `destination_failed` (exit 12): one line with the
path and the OS reason, no traceback, and nothing half-written left behind. Real faults only
(see tests/fixtures/faults.py): a regular file in the way, `chattr +i`, a read-only or full
tmpfs, RLIMIT_FSIZE."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.artifacts import small_sqlite_db
from tests.fixtures.faults import (
    error_line,
    limit_file_size,
    listing,
    safesnap_cli,
    safesnap_cli_without_dac,
)


def _backup(db: Path, dest: Path, **kw: Any) -> Any:
    return safesnap_cli("backup", "sqlite", str(db), "--dest", str(dest), **kw)


def test_destination_is_a_regular_file(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=0.2)
    dest = tmp_path / "dest"
    dest.write_text("not a directory")
    line = error_line(_backup(db, dest), 12)
    assert str(dest) in line
    assert "Not a directory" in line
    assert dest.read_text() == "not a directory"


def test_destination_below_a_regular_file(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=0.2)
    (tmp_path / "file").write_text("x")
    line = error_line(_backup(db, tmp_path / "file" / "sub"), 12)
    assert str(tmp_path / "file") in line
    assert "Not a directory" in line
    assert (tmp_path / "file").read_text() == "x"


def test_immutable_destination(
    tmp_path: Path, sqlite_db: Any, immutable_dir: Callable[[Path], Path]
) -> None:
    db = sqlite_db(mb=0.2)
    dest = immutable_dir(tmp_path / "dest")
    line = error_line(_backup(db, dest), 12)
    assert str(dest) in line
    assert "Operation not permitted" in line
    assert listing(dest) == []


def test_destination_without_write_permission(tmp_path: Path, sqlite_db: Any) -> None:
    """chmod 0500 stops root once CAP_DAC_OVERRIDE is gone (EACCES)."""
    db = sqlite_db(mb=0.2)
    dest = tmp_path / "dest"
    dest.mkdir()
    dest.chmod(0o500)
    proc = safesnap_cli_without_dac("backup", "sqlite", str(db), "--dest", str(dest))
    line = error_line(proc, 12)
    assert str(dest) in line
    assert "Permission denied" in line
    assert listing(dest) == []


def test_read_only_mount(sqlite_db: Any, tiny_tmpfs: Callable[..., Path]) -> None:
    db = sqlite_db(mb=0.2)
    mount = tiny_tmpfs(readonly=True)
    line = error_line(_backup(db, mount / "backups"), 12)
    assert str(mount / "backups") in line
    assert "Read-only file system" in line


def test_full_tmpfs_during_the_raw_copy(sqlite_db: Any, tiny_tmpfs: Callable[..., Path]) -> None:
    """The copy hits ENOSPC midway (write(2) first returns short on a filling tmpfs): before,
    the short write went unnoticed and the truncated copy was reported as damage (exit 5)."""
    db = sqlite_db(mb=1, mode="delete")
    mount = tiny_tmpfs(size="256k")
    line = error_line(_backup(db, mount / "dest"), 12)
    assert str(mount / "dest") in line
    assert "No space left on device" in line
    assert listing(mount / "dest") == []


def test_file_size_limit_during_the_raw_copy(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=1)
    dest = tmp_path / "dest"
    line = error_line(_backup(db, dest, preexec_fn=limit_file_size()), 12)
    assert str(dest) in line
    assert "File too large" in line
    assert listing(dest) == []


def test_run_with_immutable_destination(
    tmp_path: Path, immutable_dir: Callable[[Path], Path]
) -> None:
    """The run lock is the first write of a run: it fails cleanly, before any target runs."""
    dest = immutable_dir(tmp_path / "dest")
    plan = _plan(tmp_path, dest, small_sqlite_db(tmp_path / "live.db"))
    line = error_line(safesnap_cli("run", "--config", str(plan)), 12)
    assert str(dest / ".safesnap.lock") in line
    assert listing(dest) == []


def test_run_with_a_file_where_the_target_directory_goes(tmp_path: Path) -> None:
    """A per-target directory that cannot be made fails that target's backup step only."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "live").write_text("in the way")
    plan = _plan(tmp_path, dest, small_sqlite_db(tmp_path / "live.db"))
    proc = safesnap_cli("run", "--config", str(plan), "--json")
    assert proc.returncode == 11, proc.stderr
    assert "Traceback" not in proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    error = target["steps"][0]["error"]
    assert error["code"] == "destination_failed"
    assert str(dest / "live") in error["message"]
    assert (dest / "live").read_text() == "in the way"
    assert listing(dest) == [".safesnap.lock", "live"]  # nothing else was written


def test_files_target_on_a_full_tmpfs(tmp_path: Path, tiny_tmpfs: Callable[..., Path]) -> None:
    tree = tmp_path / "conf"
    tree.mkdir()
    (tree / "big.bin").write_bytes(os.urandom(600 * 1024))  # incompressible
    mount = tiny_tmpfs(size="256k")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{mount}"\ncompression = "none"\n'
        f'[[targets]]\nname = "conf"\nengine = "files"\npaths = ["{tree}"]\n'
    )
    proc = safesnap_cli("run", "--config", str(plan), "--json")
    assert proc.returncode == 11, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    error = target["steps"][0]["error"]
    assert (error["code"], target["steps"][0]["name"]) == ("destination_failed", "backup")
    assert "No space left on device" in error["message"]
    assert listing(mount / "conf") == []  # no artifact, no temp file, claim or sidecar


def test_sqlite_restore_into_an_immutable_directory(
    tmp_path: Path, sqlite_artifact: Any, immutable_dir: Callable[[Path], Path]
) -> None:
    target_dir = immutable_dir(tmp_path / "restore")
    proc = safesnap_cli("restore", str(sqlite_artifact.path), "--to", str(target_dir / "t.db"))
    line = error_line(proc, 12)
    assert str(target_dir) in line
    assert listing(target_dir) == []


def test_files_restore_into_an_immutable_directory(
    tmp_path: Path, immutable_dir: Callable[[Path], Path]
) -> None:
    tree = tmp_path / "conf"
    tree.mkdir()
    (tree / "a.toml").write_text("a = 1\n")
    artifact = _files_artifact(tmp_path, tree)
    parent = immutable_dir(tmp_path / "restore")
    line = error_line(safesnap_cli("restore", str(artifact), "--to", str(parent / "out")), 12)
    assert str(parent) in line
    assert listing(parent) == []


def test_created_directories_are_private(tmp_path: Path, sqlite_db: Any) -> None:
    """Every directory safesnap creates is 0700, missing parents included."""
    db = sqlite_db(mb=0.2)
    dest = tmp_path / "a" / "b" / "dest"
    proc = _backup(db, dest)
    assert proc.returncode == 0, proc.stderr
    for made in (tmp_path / "a", tmp_path / "a" / "b", dest):
        assert made.stat().st_mode & 0o777 == 0o700, made
    run_dest = tmp_path / "r" / "dest"
    plan = _plan(tmp_path, run_dest, small_sqlite_db(tmp_path / "live.db"))
    assert safesnap_cli("run", "--config", str(plan)).returncode == 0
    for made in (tmp_path / "r", run_dest, run_dest / "live"):
        assert made.stat().st_mode & 0o777 == 0o700, made
    restored = tmp_path / "x" / "y" / "t.db"
    (artifact,) = run_dest.glob("live/*.zst")
    assert safesnap_cli("restore", str(artifact), "--to", str(restored)).returncode == 0
    for made in (tmp_path / "x", restored.parent):
        assert made.stat().st_mode & 0o777 == 0o700, made


def _plan(tmp_path: Path, dest: Path, db: Path) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[destination]\npath = "{dest}"\n[[targets]]\nname = "live"\npath = "{db}"\n')
    return plan


def _files_artifact(tmp_path: Path, tree: Path) -> Path:
    from safesnap.config.plan import FilesTarget
    from safesnap.engines import BackupContext, get_engine

    target = FilesTarget(name="conf", paths=[tree])
    outcome = get_engine("files").backup(target, BackupContext(dest=tmp_path / "backups"))
    return outcome.artifact.path
