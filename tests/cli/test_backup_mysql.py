"""`safesnap backup mysql` through the real entry point: JSON contract, exit codes, leftovers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mariadb import admin

from safesnap.artifacts import store as artifacts

pytestmark = pytest.mark.mariadb
REQUIRED = {"artifact", "sha256", "bytes", "source_bytes", "seconds", "warnings", "row_counts",
            "manifest"}  # fmt: skip


def safesnap(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safesnap", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def one_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    data: dict[str, Any] = json.loads(lines[0])
    return data


def fill(db: str) -> None:
    conn = admin(db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE peers (id INT PRIMARY KEY, hash CHAR(40)) ENGINE=InnoDB")
        cur.execute("CREATE TABLE stats (n INT) ENGINE=MyISAM")
        cur.execute("INSERT INTO peers SELECT seq, SHA1(seq) FROM seq_1_to_500")
    conn.close()


def test_json_contract(scratch_db: str, tmp_path: Path) -> None:
    fill(scratch_db)
    dest = tmp_path / "dest"
    proc = safesnap("backup", "mysql", "--host", "127.0.0.1", "--port", "3306", "--user", "root",
                    "--database", scratch_db, "--dest", str(dest), "--compress", "gzip",
                    "--name", "tracker", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = one_json(proc)
    assert set(out) >= REQUIRED
    assert out["ok"] is True
    artifact = Path(out["artifact"])
    assert artifact.name.startswith("tracker.") and artifact.name.endswith(".sql.gz")
    assert out["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert out["bytes"] == artifact.stat().st_size
    assert out["row_counts"] == {scratch_db: {"peers": 500, "stats": 0}}
    assert "stats (MyISAM)" in out["warnings"][0]
    manifest = json.loads(Path(out["manifest"]).read_text())
    assert manifest["engine"] == "mysql" and manifest["warnings"] == out["warnings"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [artifact.name, manifest["artifact"] + artifacts.MANIFEST_SUFFIX]
    )


def test_human_result_on_stdout_warnings_on_stderr(scratch_db: str, tmp_path: Path) -> None:
    fill(scratch_db)
    proc = safesnap("backup", "mysql", "--database", scratch_db, "--dest", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    [artifact] = [p for p in tmp_path.iterdir() if p.name.endswith(".sql.zst")]
    assert proc.stdout.splitlines()[0] == f"ok {artifact}"  # the path, whole, for scripts
    assert "500 rows" in proc.stdout and "500 rows" not in proc.stderr
    assert "MyISAM" in proc.stderr and "MyISAM" not in proc.stdout


def test_unknown_database_exit_code_and_json_error(scratch_db: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    proc = safesnap("backup", "mysql", "--database", "sstest_nope_nope", "--dest", str(dest),
                    "--json")  # fmt: skip
    assert proc.returncode == 3
    assert one_json(proc)["error"]["code"] == "source_unusable"
    assert not dest.exists() or not any(dest.iterdir())


def test_missing_password_variable_is_a_config_error(scratch_db: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SST_UNSET_PW"}
    proc = subprocess.run(
        [sys.executable, "-m", "safesnap", "backup", "mysql", "--database", scratch_db,
         "--dest", str(tmp_path), "--password-env", "SST_UNSET_PW", "--json"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    error = one_json(proc)["error"]
    assert error["code"] == "config_invalid" and "SST_UNSET_PW" in error["message"]


def test_wrong_password_never_echoed(scratch_db: str, tmp_path: Path) -> None:
    secret = "Zz-wrong-secret-91"
    proc = safesnap("backup", "mysql", "--database", scratch_db, "--dest", str(tmp_path),
                    "--user", "sst_nobody", "--password-env", "SST_PW", "--json",
                    env={"SST_PW": secret})  # fmt: skip
    assert proc.returncode == 3
    assert secret not in proc.stdout + proc.stderr
    assert one_json(proc)["error"]["code"] == "source_unusable"


def test_backup_verify_restore_through_the_cli(scratch_db: str, tmp_path: Path) -> None:
    fill(scratch_db)
    restored = f"{scratch_db}_restored"
    try:
        out = one_json(safesnap("backup", "mysql", "-d", scratch_db, "--dest", str(tmp_path),
                                "--json"))  # fmt: skip
        verified = one_json(safesnap("verify", out["artifact"], "--json"))
        assert verified["ok"] is True
        assert verified["integrity"]["row_counts"] == out["row_counts"]
        first = safesnap("restore", out["artifact"], "--to", restored, "--json")
        assert first.returncode == 0, first.stdout + first.stderr
        assert one_json(first)["restored"]["row_counts"] == {"peers": 500, "stats": 0}
        again = safesnap("restore", out["artifact"], "--to", restored, "--json")
        assert again.returncode == 7
        assert one_json(again)["error"]["code"] == "refused"
    finally:
        conn = admin()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{restored}`")
        conn.close()
