"""MySQL option files hold the password: one a SIGKILLed run left behind is swept by the next
run; one a live run holds is never touched. Real processes hold the flock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from safesnap.engines.mysql.client import option_file, sweep_option_files
from safesnap.engines.mysql.conn import ConnParams

HOLDER = """
import os, sys, time
from pathlib import Path
import pytest
from pydantic import SecretStr
from safesnap.engines.mysql.client import option_file
from safesnap.engines.mysql.conn import ConnParams
params = ConnParams(host="127.0.0.1", port=3306, user="u", password=SecretStr("s3cret"))
with option_file(params, via_stdin=False) as (arg, _):
    print(arg.split("=", 1)[1], flush=True)
    time.sleep(30)
"""


def _start_holder(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    path = Path(proc.stdout.readline().strip())
    assert path.parent == tmp and path.is_file()
    return proc, path


def test_live_runs_file_is_kept_and_a_killed_runs_file_is_swept(tmp_path: Path) -> None:
    proc, path = _start_holder(tmp_path)
    try:
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert sweep_option_files(tmp_path, min_age=0) == []  # a live run holds it
        assert path.is_file()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert path.is_file()  # SIGKILL: no finally ran, the password file is left
    assert sweep_option_files(tmp_path, min_age=0) == [path]
    assert not path.exists()


def test_a_fresh_file_is_left_to_its_writer_and_other_files_alone(tmp_path: Path) -> None:
    fresh = tmp_path / "safesnap-my-fresh.cnf"
    fresh.write_text("[client]\n")
    other = tmp_path / "not-ours.cnf"
    other.write_text("x")
    assert sweep_option_files(tmp_path) == []  # younger than a minute: maybe pre-flock
    old = time.time() - 120
    os.utime(fresh, (old, old))
    assert sweep_option_files(tmp_path) == [fresh]
    assert other.is_file()


def test_option_file_sweeps_leftovers_before_writing_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    stale = tmp_path / "safesnap-my-stale.cnf"
    stale.write_text("[client]\npassword=old\n")
    old = time.time() - 120
    os.utime(stale, (old, old))
    params = ConnParams(host="127.0.0.1", port=3306, user="u", password=SecretStr("pw"))
    with option_file(params, via_stdin=False) as (arg, _):
        mine = Path(arg.split("=", 1)[1])
        assert not stale.exists()
        assert 'password="pw"' in mine.read_text()
    assert not mine.exists()
