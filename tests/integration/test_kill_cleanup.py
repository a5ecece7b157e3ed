"""Nothing big left behind: real `safesnap` processes stopped with real signals mid-backup.

SIGTERM (systemd's stop) and SIGINT (Ctrl-C) must remove every temp file and exit 143 / 130
with one line; SIGKILL cannot be caught, so what it leaves is reported by `list` and removed by
the next `backup`, `run` or `prune`, never while a live writer still holds it.

The backups here use xz on a ~30 MiB database (~4 MiB/s on this machine) so a run is reliably
mid-compression, with the full-size raw copy and the growing artifact temp both on disk, when
the signal arrives; each process is signalled within a second of starting. `big_db` is in
rollback-journal mode, which keeps the copy-then-check path (and its raw copy); the WAL
streamed path, whose only temp file is the artifact's, has its own test at the end.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.sqlite_writer import make_db

from safesnap.artifacts.catalog import temp_rule
from safesnap.artifacts.store import read_manifest

SAFESNAP = [sys.executable, "-m", "safesnap"]
ENV = {**os.environ, "COLUMNS": "200"}


def temps(dest: Path) -> list[Path]:
    """Temp files of safesnap's scheme anywhere under `dest`."""
    return sorted(p for p in dest.rglob("*") if temp_rule(p.name) is not None)


def sizes(dest: Path) -> dict[Path, int]:
    """{temp file: size}, skipping files that vanish meanwhile (SQLite's -shm comes and goes)."""
    out = {}
    for path in temps(dest):
        try:
            out[path] = path.stat().st_size
        except FileNotFoundError:
            continue
    return out


def wait_for(check: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # bounded by time; each pass sleeps 20 ms
        if check():
            return
        assert proc.poll() is None, f"safesnap exited before {what}: {proc.communicate()}"
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def mid_backup(dest: Path) -> Callable[[], bool]:
    """True once the raw copy and the artifact temp both exist: compression is under way."""

    def check() -> bool:
        found = sizes(dest)
        mains = [p for p in found if p.name.endswith(".tmp")]
        return len(mains) >= 2 and any(found[p] > 1 << 20 for p in mains)

    return check


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "big.db"
    make_db(path, 30, journal_mode="delete")  # copy-then-check: the raw copy exists
    return path


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def run(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*SAFESNAP, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=ENV, cwd=tmp_path,
        )  # fmt: skip
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def safesnap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SAFESNAP, *args], capture_output=True, text=True, timeout=60, env=ENV)


def backup_args(db: Path, dest: Path, *extra: str) -> list[str]:
    return ["backup", "sqlite", str(db), "--dest", str(dest), "--name", "big", *extra]


def assert_one_error_line(stderr: str, signal_name: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "interrupted" in line]
    assert lines == [f"error: interrupted by {signal_name}; temporary files removed"], stderr
    assert stderr.rstrip().splitlines()[-1] == lines[0]


@pytest.mark.parametrize(
    ("signum", "exit_code", "json_out"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, False), (signal.SIGTERM, 143, True)],
    ids=["sigterm", "sigint", "sigterm-json"],
)
def test_signal_mid_backup_removes_every_temp_file(
    tmp_path: Path, big_db: Path, start: Callable[..., subprocess.Popen[str]],
    signum: int, exit_code: int, json_out: bool,
) -> None:  # fmt: skip
    dest = tmp_path / "dest"
    proc = start(*backup_args(big_db, dest, "--compress", "xz", *(["--json"] * json_out)))
    wait_for(mid_backup(dest), proc, "the raw copy and the artifact temp")
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10  # did not finish the backup first
    assert proc.returncode == exit_code, (out, err)
    assert list(dest.iterdir()) == []  # no temp, no partial artifact, no manifest
    name = signal.Signals(signum).name
    if json_out:
        error = json.loads(out)["error"]
        assert error["code"] == "interrupted"
        assert error["message"] == f"interrupted by {name}; temporary files removed"
    else:
        assert out == ""
        assert_one_error_line(err, name)


def test_ctrl_c_twice_still_cleans_up(
    tmp_path: Path, big_db: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    """An impatient second Ctrl-C must not cut the cleanup short."""
    dest = tmp_path / "dest"
    proc = start(*backup_args(big_db, dest, "--compress", "xz"))
    wait_for(mid_backup(dest), proc, "the raw copy and the artifact temp")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "error: interrupted by SIGINT; temporary files removed" in err.splitlines()
    assert list(dest.iterdir()) == []


def plan_file(tmp_path: Path, dest: Path, *dbs: Path, compression: str = "xz") -> Path:
    targets = "".join(
        f'[[targets]]\nname = "{db.stem}"\nengine = "sqlite"\npath = "{db}"\n' for db in dbs
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "kill"\n[destination]\npath = "{dest}"\ncompression = "{compression}"\n'
        f'[run]\nreport_file = "{tmp_path / "report.json"}"\n{targets}'
    )
    return plan


def test_sigterm_mid_run_stops_the_whole_run_cleanly(
    tmp_path: Path, big_db: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    """systemd's stop: the target being backed up is cleaned up, no later target starts, the
    run lock is released, exit 143."""
    small = tmp_path / "small.db"
    make_db(small, 0.2)
    dest = tmp_path / "dest"
    proc = start("run", "--config", str(plan_file(tmp_path, dest, big_db, small)))
    wait_for(mid_backup(dest), proc, "the first target's temp files")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, (out, err)
    assert_one_error_line(err, "SIGTERM")
    assert temps(dest) == []
    files = sorted(p.name for p in dest.rglob("*") if p.is_file())
    assert files in ([], [".safesnap.lock"])  # no artifact, manifest or holder file
    assert not (dest / "small").exists()  # the second target never started
    released = safesnap("prune", "--dest", str(dest), "--json")  # takes the run lock, no wait
    assert released.returncode == 0, released.stderr


@pytest.fixture
def killed(
    tmp_path: Path, big_db: Path, start: Callable[..., subprocess.Popen[str]]
) -> tuple[Path, list[Path], int]:
    """A destination where a backup was SIGKILLed mid-compression: (dest, temps, bytes)."""
    dest = tmp_path / "dest"
    proc = start(*backup_args(big_db, dest / "big", "--compress", "xz"))
    wait_for(mid_backup(dest), proc, "the raw copy and the artifact temp")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    left = sizes(dest)
    assert len(left) >= 2
    assert sum(left.values()) >= big_db.stat().st_size  # the full raw copy
    return dest, sorted(left), sum(left.values())


def test_list_reports_leftover_temp_bytes(killed: tuple[Path, list[Path], int]) -> None:
    dest, left, size = killed
    as_json = safesnap("list", "--dest", str(dest), "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["leftover_temp_files"] == len(left), (data, left)
    assert data["leftover_temp_bytes"] == size
    assert sorted(Path(t["path"]) for t in data["temporaries"]) == left
    assert not any(t["in_use"] for t in data["temporaries"])
    human = safesnap("list", "--dest", str(dest))
    assert human.returncode == 0, human.stderr
    shown = human.stdout + human.stderr  # whichever stream the listing goes to
    assert f"leftover temporary files: {len(left)}" in shown
    assert f"({size} bytes)" in shown
    assert temps(dest) == left  # list changes nothing


@pytest.mark.parametrize("command", ["backup", "run", "prune"])
def test_next_command_sweeps_what_sigkill_left(
    tmp_path: Path, killed: tuple[Path, list[Path], int], command: str
) -> None:
    dest, left, size = killed
    small = tmp_path / "big.db"  # same target name as the killed backup, small and quick
    make_db(small, 0.2)
    plan = plan_file(tmp_path, dest, small, compression="zstd")
    args = {
        "backup": backup_args(small, dest / "big", "--json"),
        "run": ["run", "--json", "--config", str(plan)],
        "prune": ["prune", "--dest", str(dest), "--json"],
    }[command]
    proc = safesnap(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["swept_temp_files"] == len(left)
    assert out["swept_temp_bytes"] == size
    paths = out["swept"] if command == "prune" else out["swept_temporaries"]
    assert sorted(Path(p) for p in paths) == left
    assert temps(dest) == []
    assert "removed" in proc.stderr and f"({size} bytes)" in proc.stderr  # the log line


def test_concurrent_prune_never_sweeps_a_live_backup(
    tmp_path: Path, big_db: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    db = big_db  # ~7 s of xz: room for a whole `prune` process beside it on a loaded CI machine
    dest = tmp_path / "dest"
    proc = start(*backup_args(db, dest, "--compress", "xz", "--json"))
    wait_for(mid_backup(dest), proc, "the raw copy and the artifact temp")
    live = {p: p.stat().st_ino for p in temps(dest) if p.name.endswith(".tmp")}
    pruned = safesnap("prune", "--dest", str(dest), "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["swept_temp_files"] == 0
    assert proc.poll() is None, "the backup finished too early for this test to prove anything"
    assert {p: p.stat().st_ino for p in live} == live  # still there, same files
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    artifact = Path(json.loads(out)["artifact"])
    assert temps(dest) == []
    visible = sorted(p.name for p in dest.iterdir() if not p.name.startswith("."))
    assert visible == sorted([artifact.name, artifact.name + ".manifest.json"])
    verified = safesnap("verify", str(artifact), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_sigterm_mid_stream_leaves_nothing(
    tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    """WAL: the streamed path writes only the artifact temp; SIGTERM removes it, the source's
    read transaction ends (the database stays writable and intact)."""
    db = tmp_path / "wal.db"
    make_db(db, 30)
    dest = tmp_path / "dest"
    proc = start(*backup_args(db, dest, "--compress", "xz"))

    def streaming() -> bool:
        found = sizes(dest)
        return len(found) == 1 and any(size > 1 << 20 for size in found.values())

    wait_for(streaming, proc, "the artifact temp, alone, growing")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, (out, err)
    assert list(dest.iterdir()) == []
    # the source: not left locked, not damaged
    with sqlite3.connect(db, timeout=1) as conn:
        conn.execute("INSERT INTO events(at, v) VALUES (0, x'00')")
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    conn.close()


@pytest.fixture(scope="module")
def big_artifact(tmp_path_factory: pytest.TempPathFactory, big_db: Path) -> Path:
    """xz again: decompressing 30 MiB takes long enough to catch verify mid-copy."""
    dest = tmp_path_factory.mktemp("artifact")
    made = safesnap(*backup_args(big_db, dest, "--compress", "xz", "--json"))
    assert made.returncode == 0, made.stderr
    return Path(json.loads(made.stdout)["artifact"])


def scratch_bytes(root: Path) -> int:
    """Bytes of every file under `root` (verify's scratch copy, under its temp name or not)."""
    total = 0
    for path in root.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
    return total


def test_sigkill_mid_verify_leaves_a_copy_the_next_verify_sweeps(
    tmp_path: Path, big_artifact: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    """verify decompresses the whole database to check it; at tracker scale that is 17 GB in
    /tmp, so what a SIGKILL (or the OOM killer) leaves must not stay there for good."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = start("verify", str(big_artifact), "--tmp-dir", str(scratch))
    wait_for(lambda: scratch_bytes(scratch) > 1 << 20, proc, "the scratch copy")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    [left] = list(scratch.iterdir())
    assert left.name.startswith(f".safesnap-verify.{big_artifact.name}.")

    again = safesnap("verify", str(big_artifact), "--tmp-dir", str(scratch), "--json")

    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["checksum_ok"] is True
    assert "removed 1 verify scratch director(ies) left by a killed run" in again.stderr
    assert list(scratch.iterdir()) == []


def test_sigterm_mid_verify_removes_its_copy(
    tmp_path: Path, big_artifact: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = start("verify", str(big_artifact), "--tmp-dir", str(scratch))
    wait_for(lambda: scratch_bytes(scratch) > 1 << 20, proc, "the scratch copy")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert_one_error_line(err, "SIGTERM")
    assert list(scratch.iterdir()) == []
    assert read_manifest(big_artifact).get("verify_error") is None  # interrupted, not damaged
