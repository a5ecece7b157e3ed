"""Notifications and healthcheck pings of `safesnap run`, delivered over real HTTP to a server
on 127.0.0.1 (apprise `json://` and the healthchecks.io URLs), through the real entry point."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
TOKEN = "tok-9f3a1c77e2b84d05"  # stands for a webhook secret: must never be printed


@dataclass
class Sink:
    """What the local server received, and how it answers (per path prefix)."""

    port: int
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, body
    status: dict[str, int] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def body(self, path: str) -> str:
        return next(body for _, p, body in self.requests if p == path)


@pytest.fixture
def sink() -> Iterator[Sink]:
    state = Sink(port=0)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            state.requests.append((self.command, self.path, body))
            for prefix, seconds in state.delay.items():
                if self.path.startswith(prefix):
                    time.sleep(seconds)
            code = next((c for p, c in state.status.items() if self.path.startswith(p)), 200)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def make_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT)")
        conn.execute("INSERT INTO torrents (info_hash) VALUES ('h1')")
    conn.close()


def write_plan(tmp_path: Path, extra: str, *, db: str = "tracker.db") -> Path:
    if db == "tracker.db":
        make_db(tmp_path / db)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "torrust"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[run]\nreport_file = "{tmp_path / "last-run.json"}"\n'
        f'[[targets]]\nname = "tracker"\nengine = "sqlite"\npath = "{tmp_path / db}"\n{extra}'
    )
    return plan


def run(tmp_path: Path, plan: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, "run", "--config", str(plan), "--json", *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_good_run_pings_start_and_success_and_sends_the_success_notice(
    tmp_path: Path, sink: Sink
) -> None:
    base = f"127.0.0.1:{sink.port}"
    plan = write_plan(
        tmp_path,
        f'[[notify]]\nurl = "json://{base}/hook"\non = ["success", "failure"]\n'
        f'[healthcheck]\nurl = "http://{base}/ping/abc"\n',
    )
    proc = run(tmp_path, plan)
    assert proc.returncode == 0, proc.stderr
    assert sink.paths() == ["/ping/abc/start", "/hook", "/ping/abc"]
    message = json.loads(sink.body("/hook"))
    assert message["title"] == "safesnap: plan torrust ok"
    assert message["type"] == "success"
    assert "ok, 1 target(s)" in sink.body("/ping/abc")
    assert "\n" not in sink.body("/ping/abc")  # the summary is one line
    report = json.loads(proc.stdout)
    assert [(n["channel"], n["event"], n["ok"]) for n in report["notifications"]] == [
        ("healthcheck", "start", True),
        ("notify[0] (json)", "success", True),
        ("healthcheck", "success", True),
    ]


def test_a_failed_target_notifies_what_failed_where_the_code_and_next_step(
    tmp_path: Path, sink: Sink
) -> None:
    base = f"127.0.0.1:{sink.port}"
    plan = write_plan(
        tmp_path,
        f'[[notify]]\nname = "ops"\nurl = "json://{base}/hook"\n'
        f'[[notify]]\nurl = "json://{base}/only-success"\non = ["success"]\n'
        f'[healthcheck]\nurl = "http://{base}/ping"\n',
        db="missing.db",
    )
    proc = run(tmp_path, plan)
    assert proc.returncode == 11, proc.stderr
    assert sink.paths() == ["/ping/start", "/hook", "/ping/fail"]  # not the success-only one
    message = json.loads(sink.body("/hook"))
    assert message["type"] == "failure"
    assert message["title"] == "safesnap: plan torrust FAILED: tracker"
    assert "tracker: backup failed [source_unusable]" in message["message"]
    assert "next step:" in message["message"]
    summary = sink.body("/ping/fail")
    assert "FAILED: tracker: backup failed [source_unusable]" in summary
    assert "\n" not in summary


def test_an_undeliverable_notification_with_a_token_fails_nothing_and_shows_no_token(
    tmp_path: Path, sink: Sink
) -> None:
    sink.status["/hook"] = 500
    sink.status["/ping"] = 404
    env = tmp_path / "secrets.env"
    env.write_text(
        f"HOOK_URL=json://user:{TOKEN}@127.0.0.1:{sink.port}/hook/{TOKEN}?k={TOKEN}\n"
        f"PING_URL=http://127.0.0.1:{sink.port}/ping/{TOKEN}\n"
    )
    env.chmod(0o600)
    plan = write_plan(
        tmp_path,
        '[[notify]]\nurl_env = "HOOK_URL"\non = ["success"]\n[healthcheck]\nurl_env = "PING_URL"\n',
    )
    proc = run(tmp_path, plan, "--env-file", str(env))
    assert proc.returncode == 0, proc.stderr  # the backup succeeded; delivery is only reported
    assert len(sink.requests) == 3  # the server did get them, and refused
    report_file = (tmp_path / "last-run.json").read_text()
    for text in (proc.stderr, proc.stdout, report_file):
        assert TOKEN not in text
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    failed = [n for n in report["notifications"] if not n["ok"]]
    assert len(failed) == 3
    assert {n["error"]["code"] for n in failed} == {"notify_failed"}
    assert "notify[0] (json from $HOOK_URL): success not delivered" in proc.stderr
    assert "HTTP 404" in proc.stderr
    assert "next step:" in proc.stderr


def test_a_hanging_service_delays_the_run_by_its_timeout_only(tmp_path: Path, sink: Sink) -> None:
    sink.delay["/slow"] = 20
    base = f"127.0.0.1:{sink.port}"
    plan = write_plan(
        tmp_path,
        f'[[notify]]\nurl = "json://{base}/slow"\non = ["success"]\ntimeout = 1\n'
        f'[healthcheck]\nurl = "http://{base}/slow/hc"\ntimeout = 1\n',
    )
    started = time.monotonic()
    proc = run(tmp_path, plan)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert took < 10  # three deliveries of 1 s each plus the run, not 3 x 20 s
    report = json.loads(proc.stdout)
    errors = [n["error"]["message"] for n in report["notifications"]]
    assert len(errors) == 3
    assert all("timed out" in e for e in errors)
    assert all(n["seconds"] < 2 for n in report["notifications"])


def test_an_unreachable_service_and_an_unset_variable_are_reported(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path,
        '[[notify]]\nurl_env = "SAFESNAP_TEST_UNSET_URL"\non = ["success"]\n'
        f'[healthcheck]\nurl = "http://127.0.0.1:{closed_port()}/hc"\ntimeout = 2\n',
    )
    proc = run(tmp_path, plan)
    assert proc.returncode == 0, proc.stderr
    errors = [n["error"]["message"] for n in json.loads(proc.stdout)["notifications"]]
    assert "variable SAFESNAP_TEST_UNSET_URL (url_env) is not set or empty" in errors[1]
    assert "ConnectionError" in errors[0]


def test_a_dry_run_sends_nothing(tmp_path: Path, sink: Sink) -> None:
    base = f"127.0.0.1:{sink.port}"
    plan = write_plan(
        tmp_path,
        f'[[notify]]\nurl = "json://{base}/hook"\non = ["success"]\n'
        f'[healthcheck]\nurl = "http://{base}/hc"\n',
    )
    proc = run(tmp_path, plan, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert sink.requests == []
    assert "notifications" not in json.loads(proc.stdout)


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_run_stopped_by_the_lock_notifies_why(tmp_path: Path, sink: Sink) -> None:
    from safesnap.run.lock import run_lock

    base = f"127.0.0.1:{sink.port}"
    plan = write_plan(
        tmp_path,
        f'[[notify]]\nurl = "json://{base}/hook"\n[healthcheck]\nurl = "http://{base}/hc"\n',
    )
    with run_lock(tmp_path / "dest"):  # another run holds the destination
        proc = run(tmp_path, plan)
    assert proc.returncode == 8, proc.stderr
    assert sink.paths() == ["/hc/start", "/hook", "/hc/fail"]
    message = json.loads(sink.body("/hook"))["message"]
    assert "run: run failed [run_locked]" in message
    assert "next step:" in message
    assert "[run_locked]" in sink.body("/hc/fail")


def test_notify_test_sends_to_every_entry_and_fails_on_an_undelivered_one(
    tmp_path: Path, sink: Sink
) -> None:
    sink.status["/bad"] = 503
    base = f"127.0.0.1:{sink.port}"
    plan = write_plan(
        tmp_path,
        f'[[notify]]\nname = "ops"\nurl = "json://{base}/good"\non = ["failure"]\n'
        f'[[notify]]\nurl = "json://{base}/bad"\n[healthcheck]\nurl = "http://{base}/hc"\n',
    )
    proc = subprocess.run(
        [SAFESNAP, "notify", "test", "--config", str(plan)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 13, proc.stderr
    assert sink.paths() == ["/good", "/bad"]  # never the healthcheck
    assert "ops (json): delivered" in proc.stdout
    assert "notify[1] (json): FAILED" in proc.stdout
    assert "error: 1 of 2 not delivered" in proc.stderr
    assert json.loads(sink.body("/good"))["title"] == "safesnap: test (torrust)"


def test_sigterm_during_a_run_still_notifies_the_failure(tmp_path: Path, sink: Sink) -> None:
    """systemd stopping the unit: the run ends (143) and the failure is still told."""
    sink.delay["/hc/start"] = 20  # the run is busy in its start ping when SIGTERM comes
    base = f"127.0.0.1:{sink.port}"
    plan = write_plan(
        tmp_path,
        f'[[notify]]\nurl = "json://{base}/hook"\n'
        f'[healthcheck]\nurl = "http://{base}/hc"\ntimeout = 30\n',
    )
    proc = subprocess.Popen(
        [SAFESNAP, "run", "--config", str(plan)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "/hc/start" not in sink.paths() and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded by the deadline
        assert "/hc/start" in sink.paths()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 143, err
    assert sink.paths() == ["/hc/start", "/hook", "/hc/fail"]
    assert "[interrupted] interrupted by SIGTERM" in json.loads(sink.body("/hook"))["message"]
    assert err.rstrip().splitlines()[-1].startswith("error: interrupted by SIGTERM")
