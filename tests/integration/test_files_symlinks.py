"""Files engine and symlinks, as tar and borg do it: a symlink named in `paths` is followed and
stored under the configured name; symlinks inside a tree are stored as links and restored as
links, never followed; sockets and FIFOs are skipped and counted. Artifacts written before this
behaviour (tests/fixtures/legacy, made by the previous release's code) still verify and restore."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.faults import (
    error_line,
    listing,
    safesnap_cli,
    safesnap_cli_without_dac,
    safesnap_main,
)

from safesnap.artifacts.store import read_manifest
from safesnap.config.plan import FilesTarget
from safesnap.engines import BackupContext, get_engine

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy"
Cli = Callable[..., Any]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return lambda *args: safesnap_main(capsys, *args)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """src/real/conf with every kind of entry; src/listed-dir and src/listed.env are symlinks
    (to conf and to a file outside) that a plan names."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    conf = src / "real" / "conf"
    (conf / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "s.env").write_text("TOKEN=outside\n")
    (conf / "a.toml").write_text("a = 1\n")
    (conf / "run.sh").write_text("#!/bin/sh\n")
    (conf / "run.sh").chmod(0o750)
    (conf / "sub" / "b.toml").write_text("b = 2\n")
    links = {"rel": "a.toml", "abs": str(outside / "s.env"), "escape": "../../../outside",
             "dirlink": "sub", "dangling": "nowhere", "loop": "loop"}  # fmt: skip
    for name, target in links.items():
        (conf / name).symlink_to(target)
    os.mkfifo(conf / "fifo")
    monkeypatch.chdir(conf)  # AF_UNIX paths are limited to 108 bytes: bind a relative one
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("sock")
    (src / "listed-dir").symlink_to("real/conf")
    (src / "listed.env").symlink_to(outside / "s.env")
    return src


def _entries(root: Path) -> dict[str, tuple[str, Any]]:
    """Every entry below `root`, symlinks not followed: name -> ("file", bytes) | ("link", text)."""
    out: dict[str, tuple[str, Any]] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            out[name] = ("link", os.readlink(path))
        elif stat.S_ISREG(mode):
            out[name] = ("file", path.read_bytes())
    return out


def _expected(src: Path) -> dict[str, tuple[str, Any]]:
    """What the plan stores: the listed dir's entries under its configured name, and the
    listed file link's content under its own name."""
    base = str(src / "listed-dir").lstrip("/")
    out = {f"{base}/{k}": v for k, v in _entries(src / "real" / "conf").items()}
    out[str(src / "listed.env").lstrip("/")] = ("file", b"TOKEN=outside\n")
    return out


def test_round_trip_keeps_links_as_links(tmp_path: Path, tree: Path, cli: Cli) -> None:
    outside_before = listing(tmp_path / "outside")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n[[targets]]\nname = "conf"\n'
        f'engine = "files"\npaths = ["{tree / "listed-dir"}", "{tree / "listed.env"}"]\n'
    )
    proc = safesnap_cli("run", "--config", str(plan), "--json")
    assert proc.returncode == 0, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    backup = target["steps"][0]
    assert (backup["files"], backup["symlinks"]) == (4, 6)
    assert (backup["skipped"], backup["skipped_fifo"], backup["skipped_socket"]) == (2, 1, 1)
    artifact = Path(target["artifact"])
    reasons = {Path(s["path"]).name: s["reason"] for s in read_manifest(artifact)["skipped"]}
    assert reasons == {"fifo": "fifo", "sock": "socket"}

    assert cli("verify", str(artifact)).returncode == 0
    out = tmp_path / "restored"
    proc = cli("restore", str(artifact), "--to", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["restored"]["symlinks"] == 6
    expected = {k: v for k, v in _expected(tree).items() if not k.endswith(("fifo", "sock"))}
    assert _entries(out) == expected  # every file's bytes and every link's text
    assert listing(tmp_path / "outside") == outside_before  # no link was followed on restore
    run_sh = out / str(tree / "listed-dir" / "run.sh").lstrip("/")
    assert stat.S_IMODE(run_sh.stat().st_mode) == 0o750


def test_a_path_below_a_stored_link_wins_over_the_link(tmp_path: Path, tree: Path) -> None:
    """paths = [dir, dir/dirlink/b.toml]: the listed file is stored (followed); the link it lies
    below is skipped with the reason, so the archive stays restorable."""
    conf = tree / "real" / "conf"
    target = FilesTarget(name="conf", paths=[conf, conf / "dirlink" / "b.toml"])
    outcome = get_engine("files").backup(target, BackupContext(dest=tmp_path / "dest"))
    assert outcome.details["skipped_link"] == 1
    manifest = read_manifest(outcome.artifact.path)
    base = str(conf).lstrip("/")
    assert f"{base}/dirlink" not in manifest["links"]
    assert f"{base}/dirlink/b.toml" in manifest["files"]
    out = tmp_path / "out"
    get_engine("files").restore(outcome.artifact.path, manifest, str(out), force=False, options={})
    assert (out / base / "dirlink" / "b.toml").read_text() == "b = 2\n"


# --- artifacts written before this change -----------------------------------------------------


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A copy: verify rewrites the manifest (verified: true), the fixtures must stay as made."""
    return Path(shutil.copytree(LEGACY, tmp_path / "legacy"))


def test_legacy_files_artifact_verifies_and_restores(
    legacy: Path, tmp_path: Path, cli: Cli
) -> None:
    (artifact,) = legacy.glob("config.*.tar.zst")
    assert cli("verify", str(artifact)).returncode == 0
    out = tmp_path / "out"
    assert cli("restore", str(artifact), "--to", str(out)).returncode == 0
    base = out / "tmp/art_legacy/tree/etc/torrust"
    assert (base / "tracker" / "tracker.toml").read_text() == '[core]\nmode = "public"\n'
    assert (base / "compose.env").read_text() == "DB_PASSWORD=x\n"


def test_legacy_sqlite_artifact_verifies_and_restores(
    legacy: Path, tmp_path: Path, cli: Cli
) -> None:
    (artifact,) = legacy.glob("tracker.*.sqlite.zst")
    assert cli("verify", str(artifact)).returncode == 0
    db = tmp_path / "restored.db"
    assert cli("restore", str(artifact), "--to", str(db)).returncode == 0
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 20
    finally:
        conn.close()


def test_legacy_artifact_of_a_listed_symlink_fails_cleanly(legacy: Path, cli: Cli) -> None:
    """The old engine stored a listed symlink as an empty link entry with its target's hash:
    it never could be restored. Now it is one clear integrity failure, not a traceback."""
    (artifact,) = legacy.glob("linked.*.tar.zst")
    line = error_line(cli("verify", str(artifact)), 5)
    assert "differ from the manifest" in line


# --- unreadable entries (root without CAP_DAC_OVERRIDE, so chmod 000 stops it) -----------------


def _files_plan(tmp_path: Path, *paths: Path) -> Path:
    plan = tmp_path / "plan.toml"
    listed = ", ".join(f'"{p}"' for p in paths)
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n[[targets]]\nname = "conf"\n'
        f'engine = "files"\npaths = [{listed}]\n'
    )
    return plan


def test_unreadable_entries_inside_a_tree_are_skipped(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "locked-dir").mkdir(parents=True)
    (conf / "a.toml").write_text("a = 1\n")
    (conf / "locked.env").write_text("SECRET=1\n")
    (conf / "locked-dir" / "x").write_text("x")
    (conf / "locked.env").chmod(0)
    (conf / "locked-dir").chmod(0)
    proc = safesnap_cli_without_dac("run", "--config", str(_files_plan(tmp_path, conf)), "--json")
    assert proc.returncode == 0, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    backup = target["steps"][0]
    assert (backup["files"], backup["skipped"], backup["skipped_unreadable"]) == (1, 2, 2)
    skipped = read_manifest(Path(target["artifact"]))["skipped"]
    assert {Path(s["path"]).name: s["reason"] for s in skipped} == {
        "locked.env": "unreadable: Permission denied",
        "locked-dir": "unreadable: Permission denied",
    }


def test_an_unreadable_listed_file_fails_the_target(tmp_path: Path) -> None:
    secret = tmp_path / "secret.env"
    secret.write_text("SECRET=1\n")
    secret.chmod(0)
    proc = safesnap_cli_without_dac("run", "--config", str(_files_plan(tmp_path, secret)), "--json")
    assert proc.returncode == 11, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    error = target["steps"][0]["error"]
    assert error["code"] == "source_unusable"
    assert str(secret) in error["message"]
    assert "Permission denied" in error["message"]
    assert [p for p in listing(tmp_path / "dest") if not p.startswith(".")] in ([], ["conf"])
