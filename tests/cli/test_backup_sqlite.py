"""`safesnap backup sqlite` through the real CLI: JSON contract, exit codes, no leftovers."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.sqlite_writer import table_digest

from safesnap.artifacts import store as artifacts

REQUIRED = {"artifact", "sha256", "bytes", "source_bytes", "seconds", "journal_mode",
            "integrity_result", "writer_lockout_seconds", "manifest"}  # fmt: skip


def safesnap(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "safesnap", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # exactly one JSON object on stdout
    data: dict[str, Any] = json.loads(lines[0])
    return data


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_json_contract(tmp_path: Path, sqlite_db: Any, mode: str) -> None:
    db = sqlite_db(mb=1, mode=mode)
    dest = tmp_path / "dest"
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(dest), "--json",
                    "--compress", "gzip", "--integrity", "full", "--name", "tracker")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = _json(proc)
    assert set(out) >= REQUIRED
    assert out["journal_mode"] == mode
    assert out["integrity_result"] == "ok"
    # Which path ran: WAL streams (one pass, no separate copy to time), rollback journal copies.
    if mode == "wal":
        assert (out["method"], out["stream_skipped"], out["copy_seconds"]) == ("stream", None, None)
    else:
        assert out["method"] == "raw" and out["stream_skipped"].startswith("journal_mode=delete")
        assert 0 < out["copy_seconds"] <= out["seconds"]
    artifact = Path(out["artifact"])
    assert artifact.name.startswith("tracker.") and artifact.name.endswith(".sqlite.gz")
    assert out["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert out["bytes"] == artifact.stat().st_size
    assert Path(out["manifest"]).is_file()
    assert _leftovers(dest) == sorted([artifact.name, Path(out["manifest"]).name])
    assert artifact.stat().st_mode & 0o777 == 0o600
    restored = tmp_path / "restored.db"
    artifacts.decompress_to(artifact, restored)
    assert table_digest(restored, "bulk") == table_digest(db, "bulk")


def test_threads_option(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=1)
    dest = tmp_path / "dest"
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(dest), "--json", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    artifact = Path(_json(proc)["artifact"])
    assert artifact.name.endswith(".sqlite.zst")
    restored = tmp_path / "restored.db"
    artifacts.decompress_to(artifact, restored)  # checks both sha256s
    assert table_digest(restored, "bulk") == table_digest(db, "bulk")
    bad = safesnap("backup", "sqlite", str(db), "--dest", str(dest), "--json", "--threads", "17")
    assert bad.returncode == 2, (bad.stdout, bad.stderr)


def test_human_result_goes_to_stdout(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=0.2)
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    [artifact] = [p for p in (tmp_path / "d").iterdir() if p.name.endswith(".zst")]
    assert proc.stdout.splitlines()[0] == f"ok {artifact}"
    assert "journal_mode=wal" in proc.stdout and "journal_mode=wal" not in proc.stderr


def _assert_failed(proc: subprocess.CompletedProcess[str], code: str, exit_code: int) -> None:
    assert proc.returncode == exit_code, (proc.stdout, proc.stderr)
    out = _json(proc)
    assert out["ok"] is False
    assert out["error"]["code"] == code


def test_missing_source(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    db = tmp_path / "nope.db"
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(dest), "--json")
    _assert_failed(proc, "source_unusable", 3)
    assert not db.exists()
    assert _leftovers(dest) == []


def test_not_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("not a database\n" * 100)
    dest = tmp_path / "dest"
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(dest), "--json")
    _assert_failed(proc, "source_unusable", 3)
    assert _leftovers(dest) == []


def test_corrupt_source(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=1, mode="delete")
    with db.open("r+b") as fh:
        fh.seek(4096 * 30)
        fh.write(os.urandom(4096 * 8))
    dest = tmp_path / "dest"
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(dest), "--json",
                    "--integrity", "full")  # fmt: skip
    _assert_failed(proc, "integrity_failed", 5)
    assert _leftovers(dest) == []


def test_locked_beyond_busy_timeout(
    tmp_path: Path, sqlite_db: Any, sqlite_lock_holder: Any
) -> None:
    db = sqlite_db(mb=0.5, mode="delete")
    sqlite_lock_holder(db, "BEGIN EXCLUSIVE")
    dest = tmp_path / "dest"
    started = time.monotonic()
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(dest), "--json",
                    "--busy-timeout", "0.5")  # fmt: skip
    _assert_failed(proc, "source_busy", 4)
    assert time.monotonic() - started < 30
    assert _leftovers(dest) == []


def test_bad_option_is_a_config_error(tmp_path: Path, sqlite_db: Any) -> None:
    db = sqlite_db(mb=0.2)
    proc = safesnap("backup", "sqlite", str(db), "--dest", str(tmp_path / "d"), "--json",
                    "--compress", "lz4")  # fmt: skip
    _assert_failed(proc, "config_invalid", 2)
    assert not (tmp_path / "d").exists()


def _limit_file_size() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed


def test_destination_full(tmp_path: Path, sqlite_db: Any) -> None:
    """A file-size limit makes every write past 256 KiB fail like a full disk would."""
    db = sqlite_db(mb=1)
    dest = tmp_path / "dest"
    proc = subprocess.run(
        [sys.executable, "-m", "safesnap", "backup", "sqlite", str(db), "--dest", str(dest),
         "--json"],
        capture_output=True, text=True, timeout=60, preexec_fn=_limit_file_size,
    )  # fmt: skip
    _assert_failed(proc, "destination_failed", 12)
    assert _leftovers(dest) == []
