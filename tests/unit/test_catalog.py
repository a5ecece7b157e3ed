"""Catalog and pruning on real directories: what counts as a backup, what gets deleted."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fixtures.artifacts import MakeArtifact, visible

from safesnap.artifacts.atomic import temp_file, temp_name
from safesnap.artifacts.catalog import (
    TempFile,
    find_temporaries,
    scan,
    sweep_temporaries,
    temp_rule,
)
from safesnap.artifacts.prune import prune_destination
from safesnap.artifacts.store import write_manifest
from safesnap.config.plan import Retention
from safesnap.errors import ArtifactError
from safesnap.retention import Policy

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def test_scan_is_recursive_newest_first_and_filters_by_target(
    tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    a = make_artifact(dest=tmp_path / "a", target="a", created_at=days_ago(2))
    b = make_artifact(dest=tmp_path / "b" / "deep", target="b", created_at=days_ago(1))
    a2 = make_artifact(dest=tmp_path / "a", target="a", created_at=days_ago(0))
    assert [e.path for e in scan(tmp_path).entries] == [a2.path, b.path, a.path]
    assert [e.path for e in scan(tmp_path, target="a").entries] == [a2.path, a.path]
    assert scan(tmp_path, target="zzz").entries == []


def test_only_checked_manifests_count(tmp_path: Path, make_artifact: MakeArtifact) -> None:
    good = make_artifact(dest=tmp_path)
    resized = make_artifact(dest=tmp_path, target="resized")
    resized.path.write_bytes(resized.path.read_bytes() + b"junk")
    gone = make_artifact(dest=tmp_path, target="gone")
    gone.path.unlink()  # a manifest describing a missing file is not a backup
    foreign = make_artifact(dest=tmp_path, target="foreign")
    write_manifest(foreign.path, {**foreign.manifest, "format": "someone-else/2"})
    orphan = tmp_path / "orphan.20260101T000000Z.manual.sqlite.zst"
    orphan.write_bytes(b"half a backup")
    (tmp_path / "notes.txt").write_text("not ours, not an orphan")
    (tmp_path / ".safesnap.lock").write_text("")
    found = scan(tmp_path)
    assert [e.path for e in found.entries] == [good.path]
    assert found.orphans == [orphan]
    assert len(found.problems) == 3
    assert any("does not match manifest" in p for p in found.problems)


def test_scan_missing_destination_is_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        scan(tmp_path / "missing")


def _temp(directory: Path, label: str = "db.sqlite", data: bytes = b"partial") -> Path:
    """A temp file of the scheme whose writer is gone (nobody holds its flock)."""
    path = directory / temp_name(label)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """What a live writer does: an exclusive flock on its own open file description."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def test_sweep_removes_dead_writers_temps_at_once_and_counts_bytes(tmp_path: Path) -> None:
    dead = _temp(tmp_path / "sub", data=b"x" * 3000)  # fresh: no age guess for our scheme
    wal = Path(f"{dead}-wal")
    wal.write_bytes(b"w" * 500)
    swept = sweep_temporaries(tmp_path)
    assert sorted(swept.removed) == sorted([dead, wal])
    assert swept.bytes == 3500
    assert swept.report()["swept_temp_files"] == 2
    assert list((tmp_path / "sub").iterdir()) == []
    assert sweep_temporaries(tmp_path / "missing").removed == []


def test_sweep_never_touches_a_live_writers_temp_or_its_sidecars(tmp_path: Path) -> None:
    live = _temp(tmp_path)
    _age(live, 86400)  # however old: the lock decides
    shm = Path(f"{live}-shm")
    shm.write_bytes(b"s")
    with _held(live):
        assert sweep_temporaries(tmp_path).removed == []
        found = {t.path: t.in_use for t in find_temporaries(tmp_path)}
        assert found == {live: True, shm: True}
    assert live.exists() and shm.exists()
    assert sorted(sweep_temporaries(tmp_path).removed) == sorted([live, shm])


def test_sweep_touches_nothing_but_our_names(tmp_path: Path) -> None:
    keep = [
        tmp_path / ".my-editor-file.tmp",
        tmp_path / ".safesnap.lock",
        tmp_path / ".safesnap-tmp.db.0123.tmp",  # not 16 hex
        tmp_path / "safesnap-tmp.db.0123456789abcdef.tmp",  # not hidden
        tmp_path / "db.20260101T000000Z.manual.sqlite.zst",
    ]
    for path in keep:
        path.write_bytes(b"keep")
        _age(path, 86400)
    as_dir = tmp_path / temp_name("dir")
    as_dir.mkdir()
    link = tmp_path / temp_name("link")
    link.symlink_to(keep[0])
    assert sweep_temporaries(tmp_path).removed == []
    assert all(p.exists() for p in [*keep, as_dir, link])


def test_orphaned_sidecar_goes_claim_and_legacy_names_wait_for_their_age(tmp_path: Path) -> None:
    orphan_wal = tmp_path / (temp_name("x") + "-wal")  # its owner is gone already
    orphan_wal.write_bytes(b"w")
    claim = tmp_path / (temp_name("c")[: -len(".tmp")] + ".new")
    claim.write_bytes(b"")
    legacy = tmp_path / ".db.20260101T000000Z.manual.sqlite.zst.0a1b2c3d.tmp"
    legacy.write_bytes(b"old scheme")
    legacy_copy = tmp_path / ".safesnap-tmp-big-0123456789ab.sqlite"
    legacy_copy.write_bytes(b"c" * 100)
    legacy_wal = Path(f"{legacy_copy}-wal")
    legacy_wal.write_bytes(b"w")
    assert sweep_temporaries(tmp_path).removed == [orphan_wal]
    for path, age in ((claim, 61), (legacy, 11), (legacy_copy, 601)):
        _age(path, age)
    swept = sweep_temporaries(tmp_path)
    assert sorted(swept.removed) == sorted([claim, legacy, legacy_copy, legacy_wal])
    assert swept.bytes == len(b"old scheme") + 101
    assert list(tmp_path.iterdir()) == []


def test_find_temporaries_changes_nothing(tmp_path: Path) -> None:
    dead = _temp(tmp_path, data=b"d" * 10)
    assert find_temporaries(tmp_path) == [TempFile(dead, 10, in_use=False)]
    assert dead.exists()


def test_temp_names_are_ours_and_sanitised() -> None:
    name = temp_name("weird name/../x" * 20)
    assert name.startswith(".safesnap-tmp.") and name.endswith(".tmp")
    assert "/" not in name and " " not in name and len(name) < 200
    assert temp_rule(name) is not None
    assert temp_rule(name[1:]) is None


def test_temp_files_are_private_locked_and_removed(tmp_path: Path) -> None:
    with temp_file(tmp_path, "db") as (path, fh):
        fh.write(b"data")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert temp_rule(path.name) is not None
        assert sweep_temporaries(tmp_path).removed == []  # our own lock protects it too
        Path(f"{path}-journal").write_bytes(b"j")
    assert list(tmp_path.iterdir()) == []


def _history(make_artifact: MakeArtifact, dest: Path, target: str, ages: list[float]) -> list[Path]:
    return [make_artifact(dest=dest, target=target, created_at=days_ago(a)).path for a in ages]


def test_prune_deletes_manifest_and_artifact(tmp_path: Path, make_artifact: MakeArtifact) -> None:
    paths = _history(make_artifact, tmp_path, "db", [0, 1, 2, 3, 4])
    result = prune_destination(tmp_path, Policy(keep_last=2), now=NOW)
    assert result["kept"] == [str(p) for p in paths[:2]]
    assert result["deleted"] == [str(p) for p in paths[2:]]
    assert result["reasons"][str(paths[0])] == ["last 2", "newest"]
    assert visible(tmp_path) == sorted(
        n for p in paths[:2] for n in (p.name, p.name + ".manifest.json")
    )


def test_prune_dry_run_deletes_nothing(tmp_path: Path, make_artifact: MakeArtifact) -> None:
    _history(make_artifact, tmp_path, "db", [0, 1, 2])
    before = visible(tmp_path)
    result = prune_destination(tmp_path, Policy(keep_last=1), dry_run=True, now=NOW)
    assert result["dry_run"] is True
    assert len(result["deleted"]) == 2
    assert visible(tmp_path) == before


def test_prune_is_per_target_and_leaves_orphans(
    tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    a = _history(make_artifact, tmp_path, "a", [0, 1, 2])
    b = _history(make_artifact, tmp_path, "b", [5, 6])
    orphan = tmp_path / "a.20200101T000000Z.manual.sqlite.zst"
    orphan.write_bytes(b"x")
    result = prune_destination(tmp_path, Policy(keep_last=1), now=NOW)
    assert set(result["kept"]) == {str(a[0]), str(b[0])}
    assert orphan.exists()
    assert result["orphans"] == [str(orphan)]
    only_a = prune_destination(tmp_path, Policy(), target="a", now=NOW)
    assert only_a["kept"] == [str(a[0])]


def test_prune_keeps_newest_verified_and_protected(
    tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    newest = make_artifact(dest=tmp_path, created_at=days_ago(0))
    verified = make_artifact(dest=tmp_path, created_at=days_ago(3), verified=True)
    protected = make_artifact(
        dest=tmp_path, created_at=days_ago(9), protected_until=(NOW + timedelta(days=1)).isoformat()
    )
    doomed = make_artifact(dest=tmp_path, created_at=days_ago(5))
    result = prune_destination(tmp_path, Policy(), now=NOW)
    assert set(result["kept"]) == {str(newest.path), str(verified.path), str(protected.path)}
    assert result["deleted"] == [str(doomed.path)]
    assert not doomed.path.exists()


def test_prune_accepts_plan_retention_and_is_idempotent(
    tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    _history(make_artifact, tmp_path, "db", [i * 0.5 for i in range(40)])
    first = prune_destination(tmp_path, Retention(), now=NOW)
    assert first["deleted"]
    again = prune_destination(tmp_path, Retention(), now=NOW)
    assert again["deleted"] == []
    assert again["kept"] == first["kept"]
    json.dumps(first)  # the runner and --json print it as is
