"""`safesnap drill` through the real entry point, on real SQLite files and files trees.

A drill restores each target's newest artifact into a scratch directory and checks it; these
tests hold it to "proves the backup, changes nothing, leaves nothing": the artifacts and their
manifests are byte-identical afterwards, no `.safesnap-drill.*` directory is left (on success,
on failure and on SIGTERM), and a damaged artifact fails the drill with the documented codes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fixtures.artifacts import flip_byte
from tests.fixtures.sqlite_writer import make_db

SAFESNAP = [sys.executable, "-m", "safesnap"]
ENV = {**os.environ, "COLUMNS": "200"}


def safesnap(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SAFESNAP, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=ENV,
        check=False,
    )  # fmt: skip


def small_db(path: Path, rows: int = 300) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT)")
    conn.executemany(
        "INSERT INTO torrents (info_hash) VALUES (?)", [(f"h{i}",) for i in range(rows)]
    )
    conn.commit()
    conn.close()


def plan_for(tmp_path: Path, *, run: str = "", destination: str = "") -> Path:
    """A plan with a SQLite target `db` and a files target `conf` (a file and a symlink)."""
    small_db(tmp_path / "tracker.db")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "tracker.toml").write_text('[core]\ndriver = "sqlite3"\n')
    (conf / "current.toml").symlink_to("tracker.toml")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n{destination}\n'
        f'[run]\nmetrics_file = "{tmp_path / "safesnap.prom"}"\n'
        f'drill_report_file = "{tmp_path / "drill.json"}"\n{run}\n'
        f'[[targets]]\nname = "db"\npath = "{tmp_path / "tracker.db"}"\n'
        f'[[targets]]\nname = "conf"\nengine = "files"\npaths = ["{conf}"]\n'
    )
    return plan


def backed_up(tmp_path: Path, **plan_kw: str) -> Path:
    plan = plan_for(tmp_path, **plan_kw)
    proc = safesnap("run", "--config", str(plan), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return plan


def snapshot_of(dest: Path) -> dict[str, bytes]:
    """Every visible file under the destination, with its bytes (artifacts and manifests)."""
    return {
        str(p.relative_to(dest)): p.read_bytes()
        for p in sorted(dest.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(dest).parts)
    }


def scratch_left(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob(".safesnap-drill.*")]


def metric(prom: str, name: str, target: str) -> str | None:
    prefix = f'{name}{{plan="default",target="{target}"}} '
    found = [line[len(prefix) :] for line in prom.splitlines() if line.startswith(prefix)]
    return found[0] if found else None


def steps(target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in target["steps"]}


def test_drill_restores_every_target_and_changes_nothing(tmp_path: Path) -> None:
    plan = backed_up(tmp_path)
    dest = tmp_path / "dest"
    before = snapshot_of(dest)

    proc = safesnap("drill", "--config", str(plan), "--json", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["kind"] == "drill"
    db, conf = report["targets"]
    assert [s["name"] for s in db["steps"]] == ["fetch", "checksum", "restore"]
    assert steps(db)["restore"]["integrity_result"] == "ok"
    assert db["row_counts"] == {"torrents": 300}
    assert db["restored_bytes"] == (tmp_path / "tracker.db").stat().st_size
    assert steps(conf)["restore"]["files"] == 1 and steps(conf)["restore"]["symlinks"] == 1
    assert conf["restored_bytes"] == len('[core]\ndriver = "sqlite3"\n')
    assert db["scratch_removed"] is True and conf["scratch_removed"] is True
    assert scratch_left(dest) == []
    assert snapshot_of(dest) == before  # no manifest rewritten, nothing added
    assert json.loads((tmp_path / "drill.json").read_text())["run_id"] == report["run_id"]
    prom = (tmp_path / "safesnap.prom").read_text()
    assert metric(prom, "safesnap_drill_success", "db") == "1"
    assert metric(prom, "safesnap_drill_restored_bytes", "db") == str(db["restored_bytes"])
    assert metric(prom, "safesnap_run_success", "db") == "1"  # the run's lines stay


def test_a_corrupted_artifact_fails_its_target_and_the_other_still_drills(
    tmp_path: Path,
) -> None:
    plan = backed_up(tmp_path)
    dest = tmp_path / "dest"
    (artifact,) = [p for p in (dest / "db").iterdir() if p.name.endswith(".zst")]
    flip_byte(artifact, artifact.stat().st_size // 2)
    before = snapshot_of(dest)

    proc = safesnap("drill", "--config", str(plan), "--json", cwd=tmp_path)

    assert proc.returncode == 15, proc.stderr
    report = json.loads(proc.stdout)
    db, conf = report["targets"]
    assert db["ok"] is False
    assert steps(db)["checksum"]["error"]["code"] == "integrity_failed"
    assert "restore" not in steps(db)  # nothing restored from a damaged artifact
    assert conf["ok"] is True
    assert scratch_left(dest) == []
    assert snapshot_of(dest) == before
    prom = (tmp_path / "safesnap.prom").read_text()
    assert metric(prom, "safesnap_drill_success", "db") == "0"
    assert metric(prom, "safesnap_drill_last_success_timestamp_seconds", "db") is None
    assert metric(prom, "safesnap_drill_success", "conf") == "1"


def test_row_counts_that_differ_fail_after_the_restore_and_the_copy_is_removed(
    tmp_path: Path,
) -> None:
    plan = backed_up(tmp_path)
    dest = tmp_path / "dest"
    (manifest,) = (dest / "db").glob("*.manifest.json")
    data = json.loads(manifest.read_text())
    data["row_counts"] = {"torrents": 301}  # the manifest promises a row the copy lacks
    manifest.write_text(json.dumps(data))
    scratch = tmp_path / "scratch"

    proc = safesnap(
        "drill", "--config", str(plan), "--target", "db", "--scratch-dir", str(scratch),
        "--json", cwd=tmp_path,
    )  # fmt: skip

    assert proc.returncode == 15, proc.stderr
    (db,) = json.loads(proc.stdout)["targets"]
    assert steps(db)["checksum"]["ok"] is True
    error = steps(db)["restore"]["error"]
    assert error["code"] == "integrity_failed" and "torrents: 301 != 300" in error["message"]
    assert db["scratch_removed"] is True
    assert list(scratch.iterdir()) == []


def test_a_target_without_artifacts_fails_clearly(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)

    proc = safesnap("drill", "--config", str(plan), "--target", "db", cwd=tmp_path)

    assert proc.returncode == 15
    assert "Traceback" not in proc.stderr
    assert "no artifact of target db" in proc.stdout
    assert proc.stderr.rstrip().splitlines()[-1].startswith("error: drill ")


def test_an_unknown_target_or_replica_is_a_usage_error(tmp_path: Path) -> None:
    plan = backed_up(tmp_path)
    for args in (["--target", "nope"], ["--replica", "nope"]):
        proc = safesnap("drill", "--config", str(plan), *args, "--json", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert json.loads(proc.stdout)["error"]["code"] == "config_invalid"


def test_the_next_drill_sweeps_what_a_killed_drill_left(tmp_path: Path) -> None:
    plan = backed_up(tmp_path)
    dest = tmp_path / "dest"
    leftover = dest / ".safesnap-drill.db.abc123"
    leftover.mkdir()
    (leftover / ".lock").write_text("")
    (leftover / "restored.sqlite").write_bytes(b"x" * 4096)

    proc = safesnap("drill", "--config", str(plan), "--json", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["swept_scratch"] == [str(leftover)]
    assert scratch_left(dest) == []


def test_sigterm_mid_restore_removes_the_scratch_copy(tmp_path: Path) -> None:
    """xz at level 0 on a ~40 MiB database: the restore decompresses for about a second, so the
    signal lands while the scratch copy is being written."""
    make_db(tmp_path / "big.db", 40)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\ncompression = "xz"\n'
        f"compression_level = 0\n[run]\nverify = false\n"
        f'[[targets]]\nname = "big"\npath = "{tmp_path / "big.db"}"\n'
    )
    assert safesnap("run", "--config", str(plan), cwd=tmp_path).returncode == 0
    before = snapshot_of(tmp_path / "dest")
    proc = subprocess.Popen(
        [*SAFESNAP, "drill", "--config", str(plan), "--json"], cwd=tmp_path, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not any(
            p.stat().st_size > 1 << 20 for d in scratch_left(tmp_path / "dest") for p in d.iterdir()
        ):  # bounded by the deadline; each pass sleeps 10 ms
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the restore never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    assert proc.returncode == 143, err
    assert json.loads(out)["error"]["code"] == "interrupted"
    assert scratch_left(tmp_path / "dest") == []
    assert snapshot_of(tmp_path / "dest") == before


def test_a_run_drills_on_its_cadence_only(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, run='drill = "weekly"')

    first = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path)
    second = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    for target in report["targets"]:
        assert steps(target)["drill"]["ok"] is True
        assert steps(target)["drill"]["restored_bytes"] > 0
    assert report["drill"]["ok"] is True
    drilled = [t["artifact"] for t in report["drill"]["targets"]]
    assert drilled == [t["artifact"] for t in report["targets"]]  # tonight's artifacts
    assert (tmp_path / "dest" / ".safesnap-drill-state.json").is_file()
    prom = (tmp_path / "safesnap.prom").read_text()
    assert metric(prom, "safesnap_drill_success", "db") == "1"  # the run kept the drill's lines
    report2 = json.loads(second.stdout)
    assert second.returncode == 0, second.stderr
    assert "drill" not in report2
    assert all("drill" not in steps(t) for t in report2["targets"])
    assert metric((tmp_path / "safesnap.prom").read_text(), "safesnap_drill_success", "db") == "1"


def test_a_bad_cadence_is_a_plan_error(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, run='drill = "fortnightly"')

    proc = safesnap("config", "check", "--config", str(plan), "--json", cwd=tmp_path)

    assert proc.returncode == 2
    assert "not a drill cadence" in proc.stdout


def test_a_failed_drill_notifies_drill_failure(tmp_path: Path) -> None:
    """`[[notify]] on = ["drill_failure"]` through apprise `json://` to a server on 127.0.0.1."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append(self.rfile.read(length).decode())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f'[[notify]]\nurl = "json://127.0.0.1:{server.server_address[1]}/hook"\n'
        plan = backed_up(tmp_path, destination=hook + 'on = ["drill_failure"]\n')
        (artifact,) = [p for p in (tmp_path / "dest" / "db").iterdir() if p.name.endswith(".zst")]
        flip_byte(artifact, artifact.stat().st_size // 2)

        proc = safesnap("drill", "--config", str(plan), "--json", cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()

    assert proc.returncode == 15, proc.stderr
    (delivery,) = json.loads(proc.stdout)["notifications"]
    assert delivery["event"] == "drill_failure" and delivery["ok"] is True
    (body,) = received
    assert "db: checksum failed [integrity_failed]" in body
