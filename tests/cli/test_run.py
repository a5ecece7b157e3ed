"""`safesnap run` through the real entry point: the demo, the JSON report contract, failure
isolation between targets, dry runs, retention across runs and the run lock."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

SAFESNAP = str(Path(sys.executable).parent / "safesnap")


def safesnap(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def make_db(path: Path, rows: int = 200) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT)")
    conn.executemany(
        "INSERT INTO torrents (info_hash) VALUES (?)", [(f"h{i}",) for i in range(rows)]
    )
    conn.commit()
    conn.close()


def write_plan(tmp_path: Path, targets: str, retention: str = "") -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[destination]\npath = "{tmp_path / "dest"}"\n{retention}\n{targets}')
    return plan


def sqlite_target(name: str, path: Path) -> str:
    return f'[[targets]]\nname = "{name}"\nengine = "sqlite"\npath = "{path}"\n'


def test_demo_runs_end_to_end_and_its_artifact_restores(tmp_path: Path) -> None:
    proc = safesnap("run", "--demo", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    (target,) = report["targets"]
    assert [s["name"] for s in target["steps"]] == ["backup", "verify", "prune"]
    artifact = Path(target["artifact"])
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == target["sha256"]
    restored = tmp_path / "restored.db"
    proc = safesnap("restore", str(artifact), "--to", str(restored), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    source = sqlite3.connect(tmp_path / "safesnap-demo" / "tracker.db")
    copy = sqlite3.connect(restored)
    query = "SELECT count(*), sum(completed) FROM torrents"
    assert source.execute(query).fetchone() == copy.execute(query).fetchone()


def test_one_failing_target_does_not_cost_the_others_their_backup(tmp_path: Path) -> None:
    make_db(tmp_path / "good.db")
    plan = write_plan(
        tmp_path,
        sqlite_target("missing", tmp_path / "nope.db")
        + sqlite_target("good", tmp_path / "good.db"),
    )
    proc = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path)
    assert proc.returncode == 11, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    missing, good = report["targets"]
    assert missing["ok"] is False
    assert missing["steps"][0]["error"]["code"] == "source_unusable"
    assert [s["name"] for s in missing["steps"]] == ["backup"]  # no prune after a failed backup
    assert not (tmp_path / "nope.db").exists()  # never created the missing source
    assert good["ok"] is True
    assert Path(good["artifact"]).is_file()
    leftovers = [p for p in (tmp_path / "dest").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    make_db(tmp_path / "t.db")
    plan = write_plan(tmp_path, sqlite_target("t", tmp_path / "t.db"))
    proc = safesnap("run", "--config", str(plan), "--dry-run", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["dry_run"] is True
    assert "would back up" in report["targets"][0]["steps"][0]["skipped"]
    assert not (tmp_path / "dest").exists()


def test_retention_bounds_the_history_across_runs(tmp_path: Path) -> None:
    make_db(tmp_path / "t.db")
    retention = "[retention]\nkeep_last = 2\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"
    plan = write_plan(tmp_path, sqlite_target("t", tmp_path / "t.db"), retention)
    artifacts = []
    for _ in range(4):
        proc = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        artifacts.append(json.loads(proc.stdout)["targets"][0]["artifact"])
    kept = sorted(p.name for p in (tmp_path / "dest" / "t").glob("*.zst"))
    assert kept == sorted(Path(a).name for a in artifacts[-2:])
    manifests = sorted(p.name for p in (tmp_path / "dest" / "t").glob("*.manifest.json"))
    assert manifests == [f"{name}.manifest.json" for name in kept]


def test_second_overlapping_run_fails_clearly(tmp_path: Path) -> None:
    make_db(tmp_path / "t.db")
    plan = write_plan(tmp_path, sqlite_target("t", tmp_path / "t.db"))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from pathlib import Path; from safesnap.run.lock import run_lock\n"
            "with run_lock(Path(sys.argv[1]), run_id='cron'):\n"
            "    print('locked', flush=True); time.sleep(30)",
            str(tmp_path / "dest"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        proc = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path)
        assert proc.returncode == 8
        error = json.loads(proc.stdout)["error"]
        assert error["code"] == "run_locked"
        assert "run cron" in error["message"]
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_bad_plan_lists_problems_before_anything_runs(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[destination]\npath = "/x"\n[[targets]]\nname = "t"\nengine = "sqlite"\n')
    proc = safesnap("run", "--config", str(plan), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{plan}: targets[0].path: Field required" in proc.stderr
    assert not Path("/x").exists()


def test_no_plan_points_to_the_demo(tmp_path: Path) -> None:
    proc = safesnap("run", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--demo" in proc.stderr
