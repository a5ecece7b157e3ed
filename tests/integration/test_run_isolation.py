"""One target's failure never takes the others down (issue #7), through the real CLI.

Real faults only: a plan naming an AWS profile that does not exist (an isolated AWS config, no
network; the plan's mistake, config_invalid), botocore's ValueError for a replica endpoint that
is not a URL (an error safesnap does not anticipate: internal_error), a files target listing a
symlink, a report directory that does not exist, and a real
SIGINT sent to the running process. Each test checks the healthy target's artifact on disk, the
report on stdout, `report_file`, the metrics textfile and the exit code.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fixtures.faults import alive

from safesnap.artifacts.catalog import temp_rule

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
RETENTION = "[retention]\nkeep_last = 1\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"


def aws_isolated_env(tmp_path: Path) -> dict[str, str]:
    """boto3 reads only these empty-ish files: the plan's profile cannot come from the machine."""
    config = tmp_path / "aws-config"
    config.write_text("[profile someone-else]\nregion = us-east-1\n")
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def safesnap(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def make_db(path: Path, rows: int = 50) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT)")
    conn.executemany(
        "INSERT INTO torrents (info_hash) VALUES (?)", [(f"h{i}",) for i in range(rows)]
    )
    conn.commit()
    conn.close()


def write_plan(tmp_path: Path, body: str) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "isolation"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[run]\nreport_file = "{tmp_path / "last-run.json"}"\n'
        f'metrics_file = "{tmp_path / "safesnap.prom"}"\n{RETENTION}{body}'
    )
    return plan


def sqlite_target(name: str, path: Path, extra: str = "") -> str:
    return f'[[targets]]\nname = "{name}"\nengine = "sqlite"\npath = "{path}"\n{extra}'


BAD_PROFILE = '[providers.aws]\nprofile = "no-such-profile"\nendpoint_url = "http://127.0.0.1:9"\n'
AWS_SNAPSHOT = 'snapshot = { provider = "aws", volume_ids = ["vol-0123456789abcdef0"] }\n'


def profile_plan(tmp_path: Path) -> Path:
    make_db(tmp_path / "cloud.db")
    make_db(tmp_path / "good.db")
    return write_plan(
        tmp_path,
        BAD_PROFILE
        + sqlite_target("cloud", tmp_path / "cloud.db", AWS_SNAPSHOT)
        + sqlite_target("good", tmp_path / "good.db"),
    )


def steps(target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in target["steps"]}


def metric(text: str, name: str, target: str) -> str:
    prefix = f'{name}{{plan="isolation",target="{target}"}} '
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return line.removeprefix(prefix)


def manifest(artifact: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(artifact + ".manifest.json").read_text())
    return data


def test_library_error_fails_one_target_and_the_rest_of_the_run_completes(
    tmp_path: Path,
) -> None:
    env = aws_isolated_env(tmp_path)
    plan = profile_plan(tmp_path)
    first = safesnap(
        "run", "--config", str(plan), "--target", "good", "--json", cwd=tmp_path, env=env
    )
    assert first.returncode == 0, first.stderr
    older = json.loads(first.stdout)["targets"][0]["artifact"]

    proc = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path, env=env)

    assert proc.returncode == 11, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    cloud, good = report["targets"]
    error = steps(cloud)["snapshot"]["error"]
    assert error["code"] == "provider_failed"  # a clear provider error (issue #9), no traceback
    assert "AWS profile 'no-such-profile' not found" in error["message"]
    assert error["target"] == "cloud" and "profile" in error["hint"]
    # The failing target's own database copy still ran: the snapshot is a separate step.
    assert steps(cloud)["backup"]["ok"] is True
    # The healthy target after it: made, verified, pruned (the older artifact is gone).
    assert good["ok"] is True
    assert [s["name"] for s in good["steps"]] == ["backup", "verify", "prune"]
    assert manifest(good["artifact"])["verified"] is True
    assert not Path(older).exists()
    assert Path(older).name in json.dumps(steps(good)["prune"]["deleted"])
    # report_file and metrics exist and say the same.
    assert json.loads((tmp_path / "last-run.json").read_text()) == report
    prom = (tmp_path / "safesnap.prom").read_text()
    assert metric(prom, "safesnap_run_success", "cloud") == "0"
    assert metric(prom, "safesnap_run_success", "good") == "1"


def test_human_output_names_the_error_and_verbose_adds_the_traceback(tmp_path: Path) -> None:
    env = aws_isolated_env(tmp_path)
    make_db(tmp_path / "t.db")
    make_db(tmp_path / "good.db")
    replica = '[[replicas]]\nname = "dr"\nbucket = "b"\nendpoint_url = "not a url"\n'
    plan = write_plan(
        tmp_path,
        replica
        + sqlite_target("t", tmp_path / "t.db")
        + sqlite_target("good", tmp_path / "good.db"),
    )

    quiet = safesnap("run", "--config", str(plan), cwd=tmp_path, env=env)
    verbose = safesnap("-v", "run", "--config", str(plan), cwd=tmp_path, env=env)

    for proc in (quiet, verbose):
        assert proc.returncode == 11, proc.stderr
        # The log line (stderr) and the summary (whichever stream the CLI prints it on).
        assert "target t: replicate failed: ValueError: " in proc.stderr
        assert "replicate: failed - ValueError" in proc.stdout + proc.stderr
        assert "target(s) failed: t" in proc.stderr
        assert "/t/t." in proc.stdout  # the artifact was made and kept
        assert json.loads((tmp_path / "last-run.json").read_text())["ok"] is False
    assert "Traceback" not in quiet.stderr
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "ValueError" in verbose.stderr


def test_library_error_in_a_late_step_keeps_the_verified_artifact(tmp_path: Path) -> None:
    make_db(tmp_path / "t.db")
    replica = '[[replicas]]\nname = "dr"\nbucket = "b"\nendpoint_url = "not a url"\n'
    plan = write_plan(tmp_path, replica + sqlite_target("t", tmp_path / "t.db"))

    proc = safesnap(
        "run", "--config", str(plan), "--json", cwd=tmp_path, env=aws_isolated_env(tmp_path)
    )

    assert proc.returncode == 11, proc.stderr
    assert "Traceback" not in proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    by_name = steps(target)
    assert [by_name[n]["ok"] for n in ("backup", "verify", "prune")] == [True, True, True]
    assert by_name["replicate"]["error"]["code"] == "internal_error"
    assert by_name["replicate"]["error"]["message"].startswith("ValueError: ")
    assert manifest(target["artifact"])["verified"] is True
    prom = (tmp_path / "safesnap.prom").read_text()
    assert metric(prom, "safesnap_run_success", "t") == "0"


def test_files_target_listing_a_symlink_never_crashes_the_run(tmp_path: Path) -> None:
    # A symlink named in `paths` is followed (tests/integration/test_files_symlinks.py): the
    # target backs up the link's content, and the run around it is unaffected.
    (tmp_path / "tracker.toml").write_text("[core]\n")
    (tmp_path / "link.toml").symlink_to(tmp_path / "tracker.toml")
    make_db(tmp_path / "good.db")
    files = f'[[targets]]\nname = "conf"\nengine = "files"\npaths = ["{tmp_path / "link.toml"}"]\n'
    plan = write_plan(tmp_path, files + sqlite_target("good", tmp_path / "good.db"))

    proc = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path, env=dict(os.environ))

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    conf, good = report["targets"]
    assert conf["ok"] is True and manifest(conf["artifact"])["verified"] is True
    assert good["ok"] is True and manifest(good["artifact"])["verified"] is True
    assert json.loads((tmp_path / "last-run.json").read_text()) == report


def test_report_file_that_cannot_be_written_costs_neither_stdout_nor_metrics(
    tmp_path: Path,
) -> None:
    make_db(tmp_path / "t.db")
    plan = write_plan(tmp_path, sqlite_target("t", tmp_path / "t.db"))
    missing_dir = tmp_path / "no-such-dir" / "last-run.json"
    plan.write_text(plan.read_text().replace(str(tmp_path / "last-run.json"), str(missing_dir)))

    proc = safesnap("run", "--config", str(plan), "--json", cwd=tmp_path, env=dict(os.environ))

    assert proc.returncode == 12, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True  # the backup itself is fine...
    (problem,) = report["report_errors"]  # ...but the operator must hear about the report
    assert problem["code"] == "destination_failed"
    assert str(missing_dir) in problem["message"] and "No such file" in problem["message"]
    assert not missing_dir.parent.exists()
    assert metric((tmp_path / "safesnap.prom").read_text(), "safesnap_run_success", "t") == "1"


def test_sigint_stops_the_run_and_the_report_files_say_what_ran(tmp_path: Path) -> None:
    started = tmp_path / "snapshot-started"
    (tmp_path / "a.txt").write_text("a\n")
    make_db(tmp_path / "later.db")
    slow = (
        f'[[targets]]\nname = "slow"\nengine = "files"\npaths = ["{tmp_path / "a.txt"}"]\n'
        '[targets.snapshot]\nprovider = "command"\n'
        f"create = \"sh -c 'echo $$ > {started} && exec sleep 30'\"\n"
    )
    plan = write_plan(tmp_path, slow + sqlite_target("later", tmp_path / "later.db"))
    proc = subprocess.Popen(
        [SAFESNAP, "run", "--config", str(plan), "--json"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30

        def pid_written() -> bool:  # the snapshot command wrote its pid: it is running
            return started.exists() and started.read_text().strip() != ""

        while not pid_written() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert pid_written(), proc.stderr.read() if proc.stderr else ""
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert time.monotonic() - began < 10  # stopped, not waited out the 30 s snapshot
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    report = json.loads((tmp_path / "last-run.json").read_text())
    assert report["ok"] is False and report["stopped"]["code"] == "interrupted"
    slow_result, later = report["targets"]
    assert slow_result["steps"][-1]["name"] == "stopped"
    assert [s["name"] for s in later["steps"]] == ["not-run"]
    assert not (tmp_path / "dest" / "later").exists()  # nothing ran after the signal
    leftovers = [p for p in (tmp_path / "dest").rglob("*") if temp_rule(p.name)]
    assert leftovers == []
    snapshot_pid = int(started.read_text())
    for _ in range(100):  # bounded: up to 5 s for it to exit
        if not alive(snapshot_pid):
            break
        time.sleep(0.05)
    assert not alive(snapshot_pid), "the snapshot command outlived the stopped run"
    prom = (tmp_path / "safesnap.prom").read_text()
    assert metric(prom, "safesnap_run_success", "slow") == "0"
    assert metric(prom, "safesnap_run_success", "later") == "0"
