"""An exception safesnap did not anticipate still ends as one line on stderr (or one JSON
error object with --json) and exit 1; the traceback only with --verbose.

This test makes a library function fail on purpose (tomllib.loads, which `config check` calls
to read the plan), the one place the project allows that: what is under test is the CLI's last
line of defence, and every genuine unexpected exception found so far is being turned into a
SafesnapError of its own, which would leave such a test with nothing to trigger it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BROKEN_LIBRARY = """
import sys, tomllib

def loads(*args, **kwargs):
    raise RuntimeError("tomllib exploded")

tomllib.loads = loads
from safesnap.cli.app import main
main(sys.argv[1:])
"""


def config_check(
    tmp_path: Path, *, root: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`safesnap [root options] config check --config plan.toml [extra]` with tomllib broken."""
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[destination]\npath = "{tmp_path}"\n')
    argv = [*root, "config", "check", "--config", str(plan), *extra]
    return subprocess.run(
        [sys.executable, "-c", BROKEN_LIBRARY, *argv],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip


def test_unexpected_exception_is_one_error_line_without_traceback(tmp_path: Path) -> None:
    proc = config_check(tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: RuntimeError: tomllib exploded"
    assert lines[1].startswith("hint: run again with --verbose")
    assert proc.stdout == ""


def test_unexpected_exception_with_json_is_one_json_error_object(tmp_path: Path) -> None:
    proc = config_check(tmp_path, extra=("--json",))
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["ok"] is False
    assert out["error"]["code"] == "internal_error"
    assert out["error"]["message"] == "RuntimeError: tomllib exploded"
    assert "Traceback" not in proc.stderr


def test_verbose_logs_the_traceback(tmp_path: Path) -> None:
    proc = config_check(tmp_path, root=("--verbose",))
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert 'File "<string>", line 5, in loads' in proc.stderr  # the frame that raised
    assert "error: RuntimeError: tomllib exploded" in proc.stderr
