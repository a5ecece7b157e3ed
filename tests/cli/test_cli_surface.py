"""The command-line surface as a whole, walked from the real Typer app: every command takes
--json, help shows flags as flags and every bracketed word of a help text, results go to
stdout and logs to stderr (`safesnap list | grep` works)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.fixtures.artifacts import MakeArtifact

from safesnap.cli.app import app, main

SAFESNAP = str(Path(sys.executable).parent / "safesnap")
ROOT = typer.main.get_command(app)


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(argv path, click command) for the root, every group and every leaf command."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, (*path, name))


COMMANDS = list(walk(ROOT))
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not getattr(cmd, "commands", None)]


def params(pairs: list[tuple[tuple[str, ...], Any]]) -> list[Any]:
    return [pytest.param(path, cmd, id=" ".join(path) or "root") for path, cmd in pairs]


def help_text(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> str:
    """--help through cli.main, the console script's function (in-process: 20 commands)."""
    code: object = 0
    try:
        main([*path, "--help"])
    except SystemExit as exc:  # a help exits 0, whether click returns or raises it
        code = exc.code
    assert code in (0, None)
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_the_tree_is_the_one_users_see() -> None:
    leaves = {" ".join(path) for path, _ in LEAVES}
    assert {"run", "snapshot", "list", "prune", "verify", "restore", "backup sqlite",
            "backup mysql", "config check", "config env-example", "snapshots list",
            "snapshots prune", "snapshots restore"} <= leaves  # fmt: skip


@pytest.mark.parametrize(("path", "command"), params(LEAVES))
def test_every_command_takes_json(path: tuple[str, ...], command: Any) -> None:
    opts = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert "--json" in opts, f"safesnap {' '.join(path)} has no --json"


@pytest.mark.parametrize(("path", "command"), params(COMMANDS))
def test_help_shows_flags_without_value_and_keeps_brackets(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...], command: Any
) -> None:
    text = help_text(capsys, path)
    assert "<bool>" not in text
    for param in command.params:
        if getattr(param, "is_flag", False):
            for opt in param.opts:
                # The flag's own help line: the option, spaces, then its help (no "<...>").
                line = next(ln for ln in text.splitlines() if re.search(rf"{opt}\b", ln))
                assert not re.search(rf"{opt}\s+<", line), line
        for word in re.findall(r"\[[^\]\s]+\]", getattr(param, "help", None) or ""):
            assert word in text, f"{word} vanished from safesnap {' '.join(path)} --help"


def test_root_help_through_the_installed_script() -> None:
    proc = subprocess.run([SAFESNAP, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--verbose" in proc.stdout and "<bool>" not in proc.stdout


def test_prune_help_keeps_retention_in_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, ("prune",))
    assert "its [retention] and destination are the defaults" in " ".join(text.split())


def test_list_rows_go_to_stdout_and_grep_finds_them(
    tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    dest = tmp_path / "dest"
    tracker = make_artifact(dest=dest, target="tracker")
    make_artifact(dest=dest, target="other")
    proc = subprocess.run(
        [SAFESNAP, "list", "--dest", str(dest)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    assert str(tracker.path) in proc.stdout  # the whole path, never wrapped
    assert "tracker" not in proc.stderr
    piped = subprocess.run(
        f"{SAFESNAP} list --dest {dest} | grep tracker",
        shell=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert piped.returncode == 0
    assert piped.stdout.splitlines() == [ln for ln in proc.stdout.splitlines() if "tracker" in ln]


def test_run_summary_on_stdout_logs_on_stderr(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'plan = "surface"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        f'[[targets]]\nname = "live"\npath = "{db}"\n'
    )
    proc = subprocess.run(
        [SAFESNAP, "run", "--config", str(plan)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [artifact] = (tmp_path / "dest" / "live").glob("live.*.zst")
    assert "plan surface" in proc.stdout and f"artifact: {artifact}" in proc.stdout
    assert "plan surface" not in proc.stderr and str(artifact) not in proc.stderr
    assert "target live: start" in proc.stderr  # the log, not the result
