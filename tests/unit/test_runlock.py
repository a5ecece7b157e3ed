"""Two overlapping runs (cron + manual) cannot collide; a killed holder frees the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safesnap.errors import RunLockedError
from safesnap.run.lock import LOCK_NAME, run_lock

HOLD = """
import sys, time
from pathlib import Path
from safesnap.run.lock import run_lock
with run_lock(Path(sys.argv[1]), run_id="holder"):
    print("locked", flush=True)
    time.sleep(30)
"""


def _start_holder(dest: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(dest)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_fails_clearly_while_first_holds(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(RunLockedError) as info, run_lock(tmp_path, wait=0.3):
            pass
        assert time.monotonic() - started < 5
        assert f"pid {holder.pid}" in info.value.message
        assert "run holder" in info.value.message
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_sigkilled_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with run_lock(tmp_path, wait=2.0) as lock_path:
        assert lock_path == tmp_path / LOCK_NAME
    assert oct((tmp_path / LOCK_NAME).stat().st_mode & 0o777) == oct(0o600)


def test_waiting_run_proceeds_when_first_finishes(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path)
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {holder.pid}"])
    try:
        with run_lock(tmp_path, wait=10.0):
            assert holder.wait(timeout=10) != 0  # it was killed before we got the lock
    finally:
        holder.kill()
