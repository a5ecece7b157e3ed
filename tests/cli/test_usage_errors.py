"""Bad command lines get a usage message and exit 2 (a JSON error with --json), never a
traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAFESNAP = str(Path(sys.executable).parent / "safesnap")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFESNAP, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("verify",),
        ("backup", "sqlite"),
        ("restore", "x.zst"),
        ("nosuch",),
        ("backup", "sqlite", "db", "--dest", "d", "--compress", "rar"),
        ("prune", "--dest", "d", "--keep-last", "-1"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args: tuple[str, ...]) -> None:
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Error" in proc.stderr or "error" in proc.stderr


def test_usage_error_with_json_is_one_json_object() -> None:
    proc = run("verify", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {
        "ok": False,
        "error": {"code": "usage", "message": "Missing argument 'artifact'."},
    }


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("safesnap ")


NICENESS = """
import os, sys
from safesnap.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(os.nice(0))
"""


@pytest.mark.parametrize(
    ("args", "expected"), [((), 10), (("--nice", "3"), 3), (("--nice", "0"), 0)]
)
def test_safesnap_lowers_its_cpu_priority(args: tuple[str, ...], expected: int) -> None:
    base = os.nice(0)
    proc = subprocess.run(
        [sys.executable, "-c", NICENESS, *args, "config", "env-example"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert int(proc.stdout.strip().splitlines()[-1]) == min(19, base + expected)
