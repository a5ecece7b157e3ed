"""`safesnap run` with an encrypted replica, then `list --replica` and `restore --replica` /
`restore s3://...` after the local destination is gone, through the real entry point."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from tests.cli.test_list_prune_verify_restore import cli
from tests.fixtures.artifacts import small_sqlite_db
from tests.fixtures.replicas import AgeKey, Bucket, make_age_key

from safesnap.artifacts.encryption import AGE_MAGIC


def _plan(tmp_path: Path, bucket: Bucket, key: AgeKey, db: Path) -> Path:
    replica = bucket.replica
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[encryption]\nrecipients = ["{key.recipient}"]\n'
        f'[[targets]]\nname = "tracker"\nengine = "sqlite"\npath = "{db}"\n'
        f'[[replicas]]\nname = "dr"\nbucket = "{replica.bucket}"\nregion = "{replica.region}"\n'
        f'endpoint_url = "{replica.endpoint_url}"\naddressing_style = "path"\n'
        "retention = { keep_last = 2, keep_daily = 0, keep_weekly = 0, keep_monthly = 0 }\n"
    )
    return plan


def _rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def ran(
    tmp_path: Path,
    replica_bucket: Bucket,
    age_key: AgeKey,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Three runs of a plan with an encrypted replica keeping 2; then the volume is lost."""
    monkeypatch.delenv("SAFESNAP_AGE_IDENTITY_FILE", raising=False)
    db = small_sqlite_db(tmp_path / "tracker.db", rows=120)
    plan = _plan(tmp_path, replica_bucket, age_key, db)
    for _ in range(3):
        code, report, err = cli(capsys, "run", "--config", str(plan), "--json")
        assert code == 0, err
        step = next(s for s in report["targets"][0]["steps"] if s["name"] == "replicate")
        (copy,) = step["replicas"]
        assert copy["encrypted"] is True
    assert len(copy["pruned"]) == 1  # the third run dropped the first
    shutil.rmtree(tmp_path / "dest")
    return plan


def test_list_replica_newest_first_with_state(
    ran: Path, replica_bucket: Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "list", "--config", str(ran), "--replica", "dr", "--json")
    assert code == 0, err
    rows = out["artifacts"]
    assert len(rows) == 2
    assert rows[0]["created_at"] > rows[1]["created_at"]
    assert all(r["verified"] and r["encrypted"] for r in rows)
    assert all(replica_bucket.body(r["key"]).startswith(AGE_MAGIC) for r in rows)
    assert len(replica_bucket.object_keys()) == 4  # two objects, two manifests


def test_restore_from_replica_with_identity(
    ran: Path, age_key: AgeKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    to = tmp_path / "restored.db"
    args = ["restore", "--config", str(ran), "--replica", "dr", "--target", "tracker"]
    args += ["--to", str(to), "--identity", str(age_key.identity_file), "--json"]
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert out["artifact"].startswith("s3://")
    assert _rows(to) == 120


def test_restore_from_replica_sweeps_the_download_a_killed_restore_left(
    ran: Path, age_key: AgeKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The download is the whole artifact; a SIGKILLed restore leaves it, the next one removes
    it (its flocked .lock is free), and its own download is gone at the end too."""
    scratch = tmp_path / "scratch"
    left = scratch / ".safesnap-fetch.replica.k1ll3d"
    left.mkdir(parents=True)
    (left / ".lock").write_bytes(b"")
    (left / "tracker.sqlite.zst.age").write_bytes(b"x" * 65536)
    args = ["restore", "--config", str(ran), "--replica", "dr", "--target", "tracker"]
    args += ["--to", str(tmp_path / "restored.db"), "--identity", str(age_key.identity_file)]
    code, _, err = cli(capsys, *args, "--tmp-dir", str(scratch), "--json")
    assert code == 0, err
    assert _rows(tmp_path / "restored.db") == 120
    assert list(scratch.iterdir()) == []


def test_restore_s3_url_alias(
    ran: Path,
    replica_bucket: Bucket,
    age_key: AgeKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAFESNAP_AGE_IDENTITY_FILE", str(age_key.identity_file))
    oldest = next(k for k in replica_bucket.object_keys() if k.endswith(".age"))
    to = tmp_path / "old.db"
    url = f"s3://{replica_bucket.name}/{oldest}"
    code, out, err = cli(capsys, "restore", url, "--config", str(ran), "--to", str(to), "--json")
    assert code == 0, err
    assert out["artifact"] == url
    assert _rows(to) == 120


@pytest.mark.parametrize("which", ["missing", "wrong"])
def test_restore_without_the_identity_fails_cleanly(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    to = tmp_path / "restored.db"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    args = ["restore", "--config", str(ran), "--replica", "dr", "--target", "tracker"]
    args += ["--to", str(to), "--tmp-dir", str(scratch), "--json"]
    if which == "wrong":
        args += ["--identity", str(make_age_key(tmp_path / "other.key").identity_file)]
    code, out, _ = cli(capsys, *args)
    assert code == 5
    assert out["error"]["code"] == "decryption_failed"
    assert not to.exists()
    assert list(scratch.iterdir()) == []  # the download was removed too


def test_unknown_replica_is_a_config_error(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list", "--config", str(ran), "--replica", "nope", "--json")
    assert code == 2
    assert "replicas: dr" in out["error"]["message"]


def test_list_replica_lines_for_cron(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list", "--config", str(ran), "--replica", "dr")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert all(" verified encrypted safesnap/tracker/" in line for line in lines)
