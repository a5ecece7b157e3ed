"""`safesnap list --dest DIR`: the backups in a destination, newest first, and the bytes that
temp files of interrupted runs still take (the next `run`, `backup` or `prune` removes them).
With `--replica NAME` (and the plan): what that replica bucket holds (cli/list_replica.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from safesnap.artifacts.catalog import TempFile, find_temporaries, scan
from safesnap.cli.list_replica import size_text
from safesnap.cli.options import ConfigOpt, EnvFileOpt, JsonOpt
from safesnap.errors import ConfigError
from safesnap.output import (
    print_json,
    say,
    stderr_console,
    stdout_console,
    stdout_is_terminal,
)


def _table(rows: list[dict[str, object]]) -> None:
    table = Table("created (UTC)", "target", "engine", "kind", "size", "verified")
    table.add_column("artifact", overflow="fold")
    for row in rows:
        table.add_row(
            str(row["created_at"])[:19].replace("T", " "),
            str(row["target"]),
            str(row["engine"]),
            str(row["kind"]),
            size_text(row["bytes"]),
            "yes" if row["verified"] else "no",
            Path(str(row["artifact"])).name,
        )
    stdout_console.print(table, soft_wrap=False)


def list_artifacts(
    dest: Path | None = typer.Option(
        None, "--dest", help="Destination directory (searched recursively)."
    ),
    target: str | None = typer.Option(None, "--target", help="Only this target."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    replica: str | None = typer.Option(
        None, "--replica", help="List this replica bucket of the plan instead of a directory."
    ),
    env_file: Path | None = EnvFileOpt,
) -> None:
    """List backups (artifacts with a valid manifest), newest first, and leftover temp files."""
    if replica is not None:
        from safesnap.cli.list_replica import list_replica  # boto3 only when asked for

        list_replica(config, replica, target, json_out=json_out, env_file=env_file)
        return
    if dest is None:
        if config is None:
            raise ConfigError("give --dest DIR, or --config PLAN (its destination, or --replica)")
        from safesnap.config.plan import load_plan

        dest = load_plan(config, env_file=env_file).destination.path
    found = scan(dest, target=target)
    temps = find_temporaries(dest)  # all targets: a temp file's name need not say whose it is
    rows = [entry.summary() for entry in found.entries]
    if json_out:
        print_json(
            {
                "ok": True,
                "artifacts": rows,
                "orphans": [str(p) for p in found.orphans],
                "problems": found.problems,
                "temporaries": [t.to_dict() for t in temps],
                **_leftover(temps),
            }
        )
        return
    if stdout_is_terminal():
        _table(rows)
    else:  # piped or under cron: one greppable line per backup, full paths
        for row in rows:
            verified = "verified" if row["verified"] else "unverified"
            fields = (row["created_at"], row["target"], row["kind"], row["bytes"], verified)
            say(" ".join(str(f) for f in (*fields, row["artifact"])))
    if not rows:
        stderr_console.print(f"no backups under {dest}", highlight=False)
    for orphan in found.orphans:
        stderr_console.print(f"[yellow]orphan (no manifest):[/] {orphan}", highlight=False)
    for problem in found.problems:
        # The problem text may hold brackets (paths, reasons): only the label is markup.
        stderr_console.print("[yellow]skipped:[/] ", end="", highlight=False)
        stderr_console.print(problem, highlight=False, markup=False)
    _print_temporaries(temps)


def _leftover(temps: list[TempFile]) -> dict[str, int]:
    left = [t for t in temps if not t.in_use]
    return {"leftover_temp_files": len(left), "leftover_temp_bytes": sum(t.bytes for t in left)}


def _print_temporaries(temps: list[TempFile]) -> None:
    for temp in temps:
        state = "in use by a running safesnap" if temp.in_use else "left by an interrupted run"
        line = f"temp file ({state}): {temp.path} ({size_text(temp.bytes)})"
        stderr_console.print(line, highlight=False, markup=False, soft_wrap=True)
    left = _leftover(temps)
    if left["leftover_temp_files"]:
        stderr_console.print(
            f"[yellow]leftover temporary files:[/] {left['leftover_temp_files']}, "
            f"{size_text(left['leftover_temp_bytes'])} ({left['leftover_temp_bytes']} bytes); "
            "the next `safesnap run`, `backup` or `prune` removes them",
            highlight=False,
            soft_wrap=True,
        )
