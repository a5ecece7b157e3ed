"""Crafted or odd artifacts through the real CLI: exit 5/6/7 with one line, never a traceback,
nothing written outside the --to directory, and nothing left at --to when a restore fails.

The crafted archives come with a manifest that matches them (checksums and per-file hashes):
whoever can write the destination can write both, so only the content checks stand between
such an archive and the restore target."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.faults import error_line, listing, safesnap_cli, safesnap_main

from safesnap.artifacts.store import manifest_path_for, write_artifact
from safesnap.engines.mysql.engine import LAYOUT

Member = tuple[tarfile.TarInfo, bytes]
Cli = Callable[..., Any]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """In-process CLI for the many parametrized cases; a few tests below use a real process."""
    return lambda *args: safesnap_main(capsys, *args)


def _file(name: str, data: bytes = b"pwned\n") -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, b""


def _craft(dest: Path, members: list[Member]) -> Path:
    """A files artifact holding exactly `members`, with a manifest that matches them."""
    buf = io.BytesIO()
    files: dict[str, Any] = {}
    links: dict[str, str] = {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
            if info.isreg():
                files[info.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            elif info.issym():
                links[info.name] = info.linkname
    buf.seek(0)
    info = write_artifact(
        buf,
        dest,
        target="conf",
        engine="files",
        ext="tar",
        manifest={"files": files, "links": links},
    )
    return info.path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory a crafted archive aims at; it must stay empty."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


CRAFTED: dict[str, Callable[[Path], list[Member]]] = {
    "dotdot": lambda out: [_file("../outside/evil")],
    "dotdot-inside": lambda out: [_file("a/../../outside/evil")],
    "absolute": lambda out: [_file(f"{out}/evil")],
    "link-out-then-file": lambda out: [
        _special("esc", tarfile.SYMTYPE, str(out)),
        _file("esc/evil"),
    ],
    "relative-link-out-then-file": lambda out: [
        _special("esc", tarfile.SYMTYPE, "../../outside"),
        _file("esc/evil"),
    ],
    "link-out-then-link": lambda out: [
        _special("esc", tarfile.SYMTYPE, str(out)),
        _special("esc/evil", tarfile.SYMTYPE, "/etc/passwd"),
    ],
    "hardlink": lambda out: [_special("hl", tarfile.LNKTYPE, "/etc/passwd")],
    "char-device": lambda out: [_special("null", tarfile.CHRTYPE)],
    "block-device": lambda out: [_special("sda", tarfile.BLKTYPE)],
    "fifo": lambda out: [_special("fifo", tarfile.FIFOTYPE)],
    "directory": lambda out: [_special("dir", tarfile.DIRTYPE)],
    "duplicate": lambda out: [_file("a.toml", b"one"), _file("a.toml", b"two")],
    "file-below-file": lambda out: [_file("a", b"x"), _file("a/b", b"y")],
}


def _work(tmp_path: Path) -> Path:
    """An empty directory to restore into, so a test sees anything a failed restore left."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return work


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_archive_is_refused(cli: Cli, tmp_path: Path, outside: Path, case: str) -> None:
    artifact = _craft(tmp_path / "backups", CRAFTED[case](outside))
    line = error_line(cli("verify", str(artifact)), 5)
    assert artifact.name in line
    work = tmp_path / "work"
    work.mkdir()
    error_line(cli("restore", str(artifact), "--to", str(work / "out")), 5)
    assert listing(work) == []  # no --to, no staging directory left
    assert listing(outside) == []
    assert not (tmp_path / "evil").exists()
    assert json.loads(manifest_path_for(artifact).read_text())["verified"] is False


def test_crafted_archive_through_the_real_process(tmp_path: Path, outside: Path) -> None:
    artifact = _craft(tmp_path / "backups", CRAFTED["link-out-then-file"](outside))
    work = tmp_path / "work"
    work.mkdir()
    line = error_line(safesnap_cli("restore", str(artifact), "--to", str(work / "out")), 5)
    assert "esc/evil" in line
    assert listing(work) == []
    assert listing(outside) == []


def test_archive_that_is_not_a_tar(cli: Cli, tmp_path: Path) -> None:
    info = write_artifact(
        io.BytesIO(b"no tar here" * 100), tmp_path / "b", target="conf", engine="files", ext="tar"
    )
    line = error_line(cli("verify", str(info.path)), 5)
    assert "tar" in line
    proc = cli("restore", str(info.path), "--to", str(_work(tmp_path) / "out"))
    error_line(proc, 5)
    assert listing(tmp_path / "work") == []  # no --to, no staging or temp file beside it


def test_truncated_tar(cli: Cli, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"x" * 5000
        info = tarfile.TarInfo("a.toml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    cut = buf.getvalue()[:3000]  # the header and part of the data
    manifest = {"files": {"a.toml": {"bytes": 5000, "sha256": hashlib.sha256(data).hexdigest()}}}
    art = write_artifact(
        io.BytesIO(cut), tmp_path / "b", target="conf", engine="files", ext="tar", manifest=manifest
    )
    error_line(cli("verify", str(art.path)), 5)
    error_line(cli("restore", str(art.path), "--to", str(_work(tmp_path) / "out")), 5)
    assert listing(tmp_path / "work") == []  # no --to, no staging or temp file beside it


def test_links_pointing_outside_are_restored_as_links_only(
    cli: Cli, tmp_path: Path, outside: Path
) -> None:
    """A link may point anywhere (as tar and borg store it); restore recreates the link text
    and writes nothing through it."""
    artifact = _craft(
        tmp_path / "backups",
        [
            _file("etc/app.toml", b"a = 1\n"),
            _special("etc/abs", tarfile.SYMTYPE, str(outside)),
            _special("etc/rel", tarfile.SYMTYPE, "../../../outside"),
        ],
    )
    assert cli("verify", str(artifact)).returncode == 0
    out = tmp_path / "restored"
    proc = cli("restore", str(artifact), "--to", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "etc" / "app.toml").read_bytes() == b"a = 1\n"
    assert (out / "etc" / "abs").is_symlink()
    assert (out / "etc" / "abs").readlink() == outside
    assert (out / "etc" / "rel").readlink() == Path("../../../outside")
    assert listing(outside) == []


# --- manifests with fields of the wrong type --------------------------------------------------


def _edit(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


MANIFEST_EDITS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "bytes-string": lambda m: m.update(bytes="abc"),
    "bytes-bool": lambda m: m.update(bytes=True),
    "sha256-int": lambda m: m.update(sha256=5),
    "source-bytes-negative": lambda m: m.update(source_bytes=-1),
    "missing-sha256": lambda m: m.pop("sha256"),
    "missing-source-sha256": lambda m: m.pop("source_sha256"),
    "compression-list": lambda m: m.update(compression=["zstd"]),
    "files-list": lambda m: m.update(files=["etc/app.toml"]),
    "file-record-bytes": lambda m: m.update(files={"etc/app.toml": {"bytes": "6", "sha256": 1}}),
    "links-list": lambda m: m.update(links=[1]),
    "verified-string": lambda m: m.update(verified="yes"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_EDITS))
def test_manifest_with_wrong_types(cli: Cli, tmp_path: Path, case: str) -> None:
    artifact = _craft(tmp_path / "backups", [_file("etc/app.toml", b"a = 1\n")])
    _edit(manifest_path_for(artifact), MANIFEST_EDITS[case])
    line = error_line(cli("verify", str(artifact)), 6)
    assert "manifest" in line
    proc = cli("restore", str(artifact), "--to", str(_work(tmp_path) / "out"))
    error_line(proc, 6)
    assert listing(tmp_path / "work") == []  # no --to, no staging or temp file beside it
    proc = cli("list", "--dest", str(tmp_path / "backups"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["artifacts"] == []  # reported as a problem, not listed


@pytest.mark.parametrize("body", ["{not json", "[1, 2, 3]", '"a string"', ""])
def test_manifest_that_is_not_an_object(cli: Cli, tmp_path: Path, body: str) -> None:
    artifact = _craft(tmp_path / "backups", [_file("etc/app.toml")])
    manifest_path_for(artifact).write_text(body)
    error_line(cli("verify", str(artifact)), 6)
    error_line(cli("restore", str(artifact), "--to", str(_work(tmp_path) / "out")), 6)
    assert listing(tmp_path / "work") == []  # no --to, no staging or temp file beside it


SQLITE_EDITS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "row-counts-string": lambda m: m.update(row_counts="t=50"),
    "row-counts-values": lambda m: m.update(row_counts={"t": "50"}),
}


@pytest.mark.parametrize("case", sorted(SQLITE_EDITS))
def test_sqlite_manifest_with_wrong_types(
    cli: Cli, tmp_path: Path, sqlite_artifact: Any, case: str
) -> None:
    _edit(sqlite_artifact.manifest_path, SQLITE_EDITS[case])
    error_line(cli("verify", str(sqlite_artifact.path)), 6)
    error_line(cli("restore", str(sqlite_artifact.path), "--to", str(_work(tmp_path) / "r.db")), 6)
    assert listing(tmp_path / "work") == []  # no --to, no staging or temp file beside it


def test_mysql_manifest_with_wrong_types(cli: Cli, make_artifact: Any) -> None:
    # The right layout, so only the type check stands between this and a server connection.
    meta = {"layout": LAYOUT, "databases": "tracker", "row_counts": {}, "connection": None}
    info = make_artifact(b"-- dump\n", engine="mysql", mysql=meta)
    error_line(cli("verify", str(info.path)), 6)
    error_line(cli("restore", str(info.path), "--to", "tracker_restore"), 6)


# --- restore targets that are not an empty directory -------------------------------------------


def test_files_restore_to_an_existing_file_is_refused(tmp_path: Path) -> None:
    artifact = _craft(tmp_path / "backups", [_file("etc/app.toml", b"a = 1\n")])
    existing = tmp_path / "existing.toml"
    existing.write_text("keep me")
    line = error_line(safesnap_cli("restore", str(artifact), "--to", str(existing)), 7)
    assert str(existing) in line
    assert existing.read_text() == "keep me"
    assert listing(tmp_path) == sorted(
        ["backups", *(f"backups/{p}" for p in listing(tmp_path / "backups")), "existing.toml"]
    )
    proc = safesnap_cli("restore", str(artifact), "--to", str(existing), "--force")
    assert proc.returncode == 0, proc.stderr
    assert (existing / "etc" / "app.toml").read_bytes() == b"a = 1\n"
    assert not [p for p in listing(tmp_path) if p.startswith(".")]


def test_files_restore_to_a_non_empty_directory_is_refused(cli: Cli, tmp_path: Path) -> None:
    artifact = _craft(tmp_path / "backups", [_file("etc/app.toml", b"a = 1\n")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine").write_text("keep")
    error_line(cli("restore", str(artifact), "--to", str(out)), 7)
    assert listing(out) == ["mine"]
