"""Catalog and pruning on real directories: what counts as a backup, what gets deleted."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fixtures.artifacts import MakeArtifact, visible

from safesnap.artifacts import write_manifest
from safesnap.catalog import prune_destination, scan, sweep_temporaries
from safesnap.errors import ArtifactError
from safesnap.retention import Policy
from safesnap.settings import Retention

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


def test_sweep_only_touches_our_stale_temps(tmp_path: Path) -> None:
    ours = tmp_path / "sub" / ".db.20260101T000000Z.manual.sqlite.zst.0a1b2c3d.tmp"
    ours.parent.mkdir()
    ours.write_bytes(b"partial")
    lookalike = tmp_path / ".my-editor-file.tmp"
    lookalike.write_bytes(b"keep")
    lock = tmp_path / ".safesnap.lock"
    lock.write_bytes(b"")
    assert sweep_temporaries(tmp_path) == []  # fresh: might be a live writer on another FS
    old = time.time() - 60
    os.utime(ours, (old, old))
    assert sweep_temporaries(tmp_path) == [ours]
    assert lookalike.exists()
    assert lock.exists()
    assert sweep_temporaries(tmp_path / "missing") == []


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
