"""A backup fetched from an (encrypted) replica restores like a local one, for the files and
MySQL engines too (the SQLite round trip is in test_replicas_s3.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fixtures.mariadb import run_sql
from tests.fixtures.replicas import AgeKey, Bucket

from safesnap.artifacts.store import read_manifest
from safesnap.config.plan import FilesTarget, MysqlTarget
from safesnap.engines import BackupContext, get_engine
from safesnap.replicas.fetch import fetch_latest
from safesnap.replicas.upload import replicate_artifact


def _through_replica(
    engine: str, target: object, name: str, tmp_path: Path, bucket: Bucket, key: AgeKey
) -> Path:
    outcome = get_engine(engine).backup(target, BackupContext(dest=tmp_path / "dest"))
    replicate_artifact(outcome.artifact, bucket.replica, target=name, recipients=[key.recipient])
    outcome.artifact.path.unlink()  # the local copy is gone
    return fetch_latest(bucket.replica, name, tmp_path / "fetched", identity=key.identity_file)


def test_files_tree_from_replica(tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey) -> None:
    tree = tmp_path / "etc-tracker"
    (tree / "sub").mkdir(parents=True)
    (tree / "tracker.toml").write_text('[core]\ndb = "sqlite3"\n')
    (tree / "sub" / "secret.env").write_bytes(b"TOKEN=abc\n" * 100)
    target = FilesTarget(name="config", paths=[tree])
    fetched = _through_replica("files", target, "config", tmp_path, replica_bucket, age_key)
    to = tmp_path / "restored"
    get_engine("files").restore(fetched, read_manifest(fetched), str(to), force=False, options={})
    restored = sorted(p.relative_to(to) for p in to.rglob("*") if p.is_file())
    assert len(restored) == 2
    for rel in restored:
        original = next(p for p in tree.rglob(rel.name))
        assert (to / rel).read_bytes() == original.read_bytes()


@pytest.fixture
def other_db(mariadb_server: None) -> Iterator[str]:
    name = f"sstest_rr_{uuid.uuid4().hex[:10]}"
    yield name
    run_sql(None, f"DROP DATABASE IF EXISTS `{name}`")


@pytest.mark.mariadb
def test_mysql_database_from_replica(
    scratch_db: str, other_db: str, tmp_path: Path, replica_bucket: Bucket, age_key: AgeKey
) -> None:
    run_sql(
        scratch_db,
        "CREATE TABLE peers (id INT PRIMARY KEY, info_hash CHAR(40)) ENGINE=InnoDB",
        "INSERT INTO peers SELECT seq, SHA1(seq) FROM seq_1_to_500",
    )
    target = MysqlTarget(name="db", databases=[scratch_db])
    fetched = _through_replica("mysql", target, "db", tmp_path, replica_bucket, age_key)
    result = get_engine("mysql").restore(
        fetched, read_manifest(fetched), other_db, force=False, options={}
    )
    assert result["row_counts"] == {"peers": 500}
    assert run_sql(other_db, "SELECT SUM(id) FROM peers") == [(125250,)]
