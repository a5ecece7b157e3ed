"""`safesnap snapshots list|prune|restore`: the plan's cloud snapshots, by target.

The logic lives in safesnap.snapshots.ops (the pipeline calls it too); this module parses
options, prints results on stdout (a table on a terminal, plain lines otherwise) or one JSON
object with --json.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from safesnap.cli.options import ConfigOpt, DryRunOpt, EnvFileOpt, JsonOpt, group
from safesnap.cli.run import resolve_plan
from safesnap.output import log, print_json, say, stdout_console, stdout_is_terminal
from safesnap.snapshots.ops import (
    list_target,
    prune_target,
    restore_snapshot,
    snapshot_row,
    targets_with_snapshots,
)

snapshots_app = group("List, prune and restore the cloud snapshots safesnap made.")
TargetOpt = typer.Option(None, "--target", "-t", help="Only this target.")


@snapshots_app.command("list")
def list_cmd(
    config: Path | None = ConfigOpt,
    target: str | None = TargetOpt,
    region: str | None = typer.Option(None, "--region", help="Only this region."),
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,
) -> None:
    """List safesnap's snapshots per target and region; orphans are marked."""
    plan = resolve_plan(config, env_file)
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    for t in targets_with_snapshots(plan, target):
        listed = list_target(plan, t, region=region, env_file=env_file)
        rows = [snapshot_row(s, now) for s in listed.snapshots]
        out.append(
            {
                "target": t.name,
                "provider": listed.provider,
                "regions": listed.regions,
                "snapshots": rows,
                "orphans": sum(1 for r in rows if r["orphan"]),
            }
        )
    if json_out:
        print_json({"ok": True, "targets": out})
        return
    for entry in out:
        if stdout_is_terminal():
            _print_table(entry)
        else:  # piped or under cron: one greppable line per snapshot
            for row in entry["snapshots"]:
                say(" ".join([entry["target"], *(c or "-" for c in _cells(row))]))


def _cells(row: dict[str, Any]) -> list[str]:
    note = (
        "ORPHAN"
        if row["orphan"]
        else (f"copy-of:{row['copied_from']}" if row["copied_from"] else "")
    )
    return [row["id"], row["region"], row["state"], row["created_at"][:19], row["kind"] or "",
            row["run_id"] or "", note]  # fmt: skip


def _print_table(entry: dict[str, Any]) -> None:
    table = Table(title=f"{entry['target']} ({entry['provider']}: {', '.join(entry['regions'])})")
    for column in ("id", "region", "state", "created", "kind", "run id", "note"):
        table.add_column(column)
    for row in entry["snapshots"]:
        table.add_row(*(Text(cell) for cell in _cells(row)))  # ids are data, not markup
    stdout_console.print(table, soft_wrap=False)


@snapshots_app.command("prune")
def prune_cmd(
    config: Path | None = ConfigOpt,
    target: str | None = TargetOpt,
    dry_run: bool = DryRunOpt,
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,
) -> None:
    """Delete snapshots the plan's retention does not keep (labelled ones only)."""
    plan = resolve_plan(config, env_file)
    results = [
        prune_target(plan, t, dry_run=dry_run, env_file=env_file).to_dict()
        for t in targets_with_snapshots(plan, target)
    ]
    ok = not any(r["errors"] for r in results)
    if json_out:
        print_json({"ok": ok, "dry_run": dry_run, "targets": results})
    else:
        for r in results:
            verb = "would delete" if dry_run else "deleted"
            say(f"{r['target']}: kept {len(r['kept'])}, {verb} {len(r['deleted'])}")
            for snap_id in r["deleted"]:
                say(f"  {verb} {snap_id}")
            for line in r["warnings"] + r["errors"]:
                log.warning("%s", line)
    if not ok:
        raise typer.Exit(10)  # ProviderError's exit code: some deletions failed


@snapshots_app.command("restore")
def restore_cmd(
    snapshot_id: str = typer.Argument(..., help="Snapshot id (see `safesnap snapshots list`)."),
    config: Path | None = ConfigOpt,
    target: str = typer.Option(..., "--target", "-t", help="Target the snapshot belongs to."),
    zone: str | None = typer.Option(None, "--zone", help="Availability zone (AWS: required)."),
    name: str | None = typer.Option(None, "--name", help="Name of the new volume."),
    size: str | None = typer.Option(
        None,
        "--size",
        help="Size of a new droplet/server (DigitalOcean slug, Hetzner server type); "
        "default: the smallest whose disk fits the snapshot.",
    ),
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,
) -> None:
    """Create a NEW volume (or server) from a snapshot. Nothing existing is touched."""
    plan = resolve_plan(config, env_file)
    (t,) = targets_with_snapshots(plan, target)
    result = restore_snapshot(
        plan, t, snapshot_id, zone=zone, name=name, env_file=env_file, size=size
    )
    if json_out:
        print_json({"ok": True, "target": t.name, **result})
    else:
        say(f"created {result['new_id']} ({result['name']}) from {snapshot_id}")
