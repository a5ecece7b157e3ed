"""Replicas against the moto S3 server: upload (plain and age-encrypted), fetch back as a local
artifact the engines restore, retention on the bucket, and every failure leaving nothing."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fixtures.artifacts import MakeArtifact, flip_byte, small_sqlite_db
from tests.fixtures.replicas import AgeKey, Bucket, make_age_key

from safesnap.artifacts.encryption import AGE_MAGIC
from safesnap.artifacts.store import ArtifactInfo, read_manifest
from safesnap.config.plan import Retention, SqliteTarget
from safesnap.engines import BackupContext
from safesnap.engines.sqlite.engine import ENGINE
from safesnap.errors import ArtifactError, DecryptionError, IntegrityError, ProviderError
from safesnap.replicas.fetch import fetch_latest
from safesnap.replicas.listing import scan_replica
from safesnap.replicas.prune import prune_replica
from safesnap.replicas.upload import replicate_artifact


def _backup(tmp_path: Path, rows: int = 300, compression: str = "zstd") -> ArtifactInfo:
    db = small_sqlite_db(tmp_path / f"live-{rows}.db", rows=rows)
    ctx = BackupContext(dest=tmp_path / "dest", compression=compression)
    return ENGINE.backup(SqliteTarget(name="tracker", path=db), ctx).artifact


def _rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


def test_restore_from_replica_after_local_destination_is_lost(
    tmp_path: Path, replica_bucket: Bucket
) -> None:
    artifact = _backup(tmp_path)
    local_bytes = artifact.path.read_bytes()
    replicate_artifact(artifact, replica_bucket.replica, target="tracker")
    for path in (artifact.path, artifact.manifest_path):
        path.unlink()  # the volume is gone with the region
    fetched = fetch_latest(replica_bucket.replica, "tracker", tmp_path / "fetched")
    assert fetched.name == artifact.path.name
    assert fetched.read_bytes() == local_bytes
    manifest = read_manifest(fetched)
    assert manifest["fetched_from"].startswith(f"s3://{replica_bucket.name}/safesnap/tracker/")
    ENGINE.restore(fetched, manifest, str(tmp_path / "restored.db"), force=False, options={})
    assert _rows(tmp_path / "restored.db") == 300


def test_encrypted_object_is_age_and_holds_no_plaintext(
    tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey
) -> None:
    artifact = _backup(tmp_path, compression="none")  # plaintext pages would be visible as is
    assert b"SQLite format 3\x00" in artifact.path.read_bytes()
    result = replicate_artifact(
        artifact, replica_bucket.replica, target="tracker", recipients=[age_key.recipient]
    )
    assert result["key"].endswith(".sqlite.age")
    stored = replica_bucket.body(result["key"])
    assert stored.startswith(AGE_MAGIC)
    assert b"SQLite format 3" not in stored
    assert b"row 12" not in stored
    manifest_key = result["key"].removesuffix(".age") + ".manifest.json"
    manifest = json.loads(replica_bucket.body(manifest_key))
    assert manifest["encryption"] == "age"
    assert manifest["sha256"] == artifact.sha256  # the plaintext artifact's
    assert manifest["stored_bytes"] == len(stored)
    assert manifest["recipients"] == [age_key.recipient]
    assert "AGE-SECRET-KEY" not in json.dumps(manifest)

    fetched = fetch_latest(
        replica_bucket.replica, "tracker", tmp_path / "f", identity=age_key.identity_file
    )
    assert fetched.read_bytes() == artifact.path.read_bytes()


@pytest.mark.parametrize("which", ["none", "wrong"])
def test_restore_without_the_right_identity_fails_and_leaves_nothing(
    tmp_path: Path,
    replica_bucket: Bucket,
    age_key: AgeKey,
    which: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SAFESNAP_AGE_IDENTITY_FILE", raising=False)
    artifact = _backup(tmp_path)
    replicate_artifact(
        artifact, replica_bucket.replica, target="tracker", recipients=[age_key.recipient]
    )
    identity = None if which == "none" else make_age_key(tmp_path / "other.key").identity_file
    dest = tmp_path / "fetched"
    with pytest.raises(DecryptionError) as info:
        fetch_latest(replica_bucket.replica, "tracker", dest, identity=identity)
    assert info.value.exit_code == 5
    assert ("no identity" if which == "none" else "does not match") in info.value.message
    assert not dest.exists() or list(dest.iterdir()) == []


def test_identity_from_the_environment(
    tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = _backup(tmp_path)
    replicate_artifact(
        artifact, replica_bucket.replica, target="tracker", recipients=[age_key.recipient]
    )
    monkeypatch.setenv("SAFESNAP_AGE_IDENTITY_FILE", str(age_key.identity_file))
    fetched = fetch_latest(replica_bucket.replica, "tracker", tmp_path / "f")
    assert fetched.read_bytes() == artifact.path.read_bytes()


@pytest.mark.parametrize("encrypted", [False, True])
def test_damaged_replica_object_fails_the_checksum_and_leaves_nothing(
    tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey, encrypted: bool
) -> None:
    artifact = _backup(tmp_path)
    recipients = [age_key.recipient] if encrypted else []
    result = replicate_artifact(
        artifact, replica_bucket.replica, target="tracker", recipients=recipients
    )
    data = bytearray(replica_bucket.body(result["key"]))
    data[-100] ^= 0xFF  # same size: only a hash can tell
    replica_bucket.s3.put_object(Bucket=replica_bucket.name, Key=result["key"], Body=bytes(data))
    dest = tmp_path / "fetched"
    with pytest.raises(IntegrityError):
        fetch_latest(replica_bucket.replica, "tracker", dest, identity=age_key.identity_file)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_at_picks_a_backup_by_timestamp_or_name(
    make_artifact: MakeArtifact, tmp_path: Path, replica_bucket: Bucket
) -> None:
    day = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    made = [
        make_artifact(
            f"night {i}".encode() * 100, target="tracker", created_at=day + timedelta(days=i)
        )
        for i in range(3)
    ]
    for artifact in made:
        replicate_artifact(artifact, replica_bucket.replica, target="tracker")
    replica = replica_bucket.replica
    assert fetch_latest(replica, "tracker", tmp_path / "a").name == made[2].path.name
    assert fetch_latest(replica, "tracker", tmp_path / "b", at="2026-11-02T03:00:00Z").name == (
        made[1].path.name
    )
    assert fetch_latest(replica, "tracker", tmp_path / "c", at=made[0].path.name).name == (
        made[0].path.name
    )
    with pytest.raises(ArtifactError, match="taken at 2025"):
        fetch_latest(replica, "tracker", tmp_path / "d", at="2025-01-01T00:00:00Z")
    with pytest.raises(ArtifactError, match="no backup of target other"):
        fetch_latest(replica, "other", tmp_path / "e")


def test_retention_keeps_exactly_the_kept_and_never_a_foreign_object(
    make_artifact: MakeArtifact, replica_bucket: Bucket
) -> None:
    bucket, replica = replica_bucket, replica_bucket.replica
    foreign = [
        "safesnap/tracker/notes.txt",  # not safesnap's naming
        "safesnap/tracker/tracker.20200101T000000Z.manual.sqlite.zst",  # ours, no manifest
        "elsewhere/tracker.20200101T000000Z.manual.sqlite.zst.manifest.json",  # other prefix
    ]
    for key in foreign:
        bucket.s3.put_object(Bucket=bucket.name, Key=key, Body=b"not a backup")
    day = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    keep_two = Retention(keep_last=2, keep_daily=0, keep_weekly=0, keep_monthly=0)
    uploaded = []
    for i in range(5):  # five nightly runs, each uploads then prunes
        artifact = make_artifact(
            f"night {i}".encode() * 100, target="tracker", created_at=day + timedelta(days=i)
        )
        uploaded.append(replicate_artifact(artifact, replica, target="tracker")["key"])
        pruned = prune_replica(replica, keep_two, target="tracker")
        assert len(pruned.kept) == min(i + 1, 2)
    expected = sorted([*uploaded[-2:], *(k + ".manifest.json" for k in uploaded[-2:]), *foreign])
    assert bucket.object_keys() == expected
    found = scan_replica(bucket.s3, replica, "tracker")
    assert [e.key for e in found.entries] == uploaded[-1:-3:-1]
    assert found.foreign == ["safesnap/tracker/notes.txt"]


def test_newest_verified_backup_stays_whatever_the_counts(
    make_artifact: MakeArtifact, replica_bucket: Bucket
) -> None:
    replica = replica_bucket.replica
    day = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    old = make_artifact(b"old", target="tracker", created_at=day, verified=True)
    new = make_artifact(b"new", target="tracker", created_at=day + timedelta(days=1))
    for artifact in (old, new):
        replicate_artifact(artifact, replica, target="tracker")
    one = Retention(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    result = prune_replica(replica, one, target="tracker")
    assert result.deleted == []
    assert len(result.kept) == 2


def test_replica_retention_overrides_the_plan(
    make_artifact: MakeArtifact, replica_bucket: Bucket
) -> None:
    replica = replica_bucket.replica.model_copy(
        update={"retention": Retention(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)}
    )
    day = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    for i in range(3):
        artifact = make_artifact(
            b"x" * i, target="tracker", created_at=day + timedelta(days=i), verified=True
        )
        replicate_artifact(artifact, replica, target="tracker")
    result = prune_replica(replica, Retention(keep_last=5), target="tracker")
    assert len(result.kept) == 1
    assert len(result.deleted) == 2
    assert len(replica_bucket.object_keys()) == 2


def test_encrypted_upload_to_a_missing_bucket_fails_cleanly(
    tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey
) -> None:
    artifact = _backup(tmp_path)
    replica = replica_bucket.replica.model_copy(update={"bucket": "no-such-bucket"})
    with pytest.raises(ProviderError) as info:
        replicate_artifact(artifact, replica, target="tracker", recipients=[age_key.recipient])
    assert info.value.transient is False
    assert "no-such-bucket" in info.value.message
    assert not [t for t in threading.enumerate() if t.name == "safesnap-encrypt"]
    assert artifact.path.is_file()
    assert artifact.manifest_path.is_file()


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_local_artifact_changed_since_backup_is_not_uploaded(
    tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey, encrypted: bool
) -> None:
    artifact = _backup(tmp_path)
    flip_byte(artifact.path, -200)  # bit rot after the backup was verified
    recipients = [age_key.recipient] if encrypted else []
    with pytest.raises(IntegrityError, match="does not match its manifest"):
        replicate_artifact(
            artifact, replica_bucket.replica, target="tracker", recipients=recipients
        )
    assert replica_bucket.object_keys() == []  # neither the object nor a manifest


def test_path_style_addressing_reaches_the_client(replica_bucket: Bucket) -> None:
    from safesnap.replicas.client import object_store_client

    client = object_store_client(replica_bucket.replica)
    assert client.meta.config.s3["addressing_style"] == "path"
    virtual = replica_bucket.replica.model_copy(update={"addressing_style": "virtual"})
    assert object_store_client(virtual).meta.config.s3["addressing_style"] == "virtual"


def test_a_failing_replica_does_not_stop_the_next_one(
    tmp_path: Path, replica_bucket: Bucket
) -> None:
    from safesnap.config.plan import load_plan
    from safesnap.run.replicate import replicate_to_all

    artifact = _backup(tmp_path)
    endpoint = replica_bucket.replica.endpoint_url
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[[targets]]\nname = "tracker"\nengine = "sqlite"\npath = "{tmp_path / "x.db"}"\n'
        f'[[replicas]]\nname = "broken"\nbucket = "no-such-bucket"\nendpoint_url = "{endpoint}"\n'
        f'[[replicas]]\nname = "dr"\nbucket = "{replica_bucket.name}"\n'
        f'endpoint_url = "{endpoint}"\nregion = "eu-central-1"\n'
    )
    with pytest.raises(ProviderError, match="no-such-bucket"):
        replicate_to_all(load_plan(plan_file), artifact, target="tracker")
    assert f"safesnap/tracker/{artifact.path.name}" in replica_bucket.object_keys()
