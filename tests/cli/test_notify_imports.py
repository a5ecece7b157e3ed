"""apprise (and its requests/markdown/yaml stack) loads only when a notification is sent:
never for `safesnap --version`, `backup sqlite`, or a run whose plan has no `[[notify]]`.
Checked on sys.modules in a fresh process through the real entry point."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
from safesnap.cli.app import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps([code, "apprise" in sys.modules]))
"""


def apprise_imported(*args: str, cwd: Path) -> tuple[int, bool]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )  # fmt: skip
    code, imported = json.loads(proc.stdout.strip().splitlines()[-1])
    return code, imported


def write_plan(tmp_path: Path, extra: str = "") -> Path:
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[[targets]]\nname = "app"\nengine = "sqlite"\npath = "{tmp_path / "app.db"}"\n{extra}'
    )
    return plan


@pytest.mark.parametrize("args", [("--version",), ("backup", "sqlite", "--help"), ("--help",)])
def test_startup_does_not_import_apprise(args: tuple[str, ...], tmp_path: Path) -> None:
    assert apprise_imported(*args, cwd=tmp_path) == (0, False)


def test_a_sqlite_backup_and_a_plain_run_do_not_import_apprise(tmp_path: Path) -> None:
    db_args = ("backup", "sqlite", str(write_plan(tmp_path).parent / "app.db"))
    assert apprise_imported(*db_args, "--dest", str(tmp_path / "out"), cwd=tmp_path) == (0, False)
    plan = str(tmp_path / "plan.toml")
    assert apprise_imported("run", "--config", plan, cwd=tmp_path) == (0, False)


def test_the_probe_sees_apprise_when_a_run_notifies(tmp_path: Path) -> None:
    # The negative control: a success notice to a closed port imports apprise (and fails, which
    # the run only reports), so False above means "not imported", not "the probe saw nothing".
    plan = write_plan(tmp_path, '[[notify]]\nurl = "json://127.0.0.1:9/x"\non = ["success"]\n')
    assert apprise_imported("run", "--config", str(plan), cwd=tmp_path) == (0, True)
