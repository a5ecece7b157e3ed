"""`safesnap list --config PLAN --replica NAME`: what a replica bucket holds, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from safesnap.output import print_json, say, stderr_console, stdout_console, stdout_is_terminal


def list_replica(
    config: Path | None, name: str, target: str | None, *, json_out: bool, env_file: Path | None
) -> None:
    from safesnap.cli.run import resolve_plan
    from safesnap.replicas.client import object_store_client, replica_named
    from safesnap.replicas.listing import scan_replica

    plan = resolve_plan(config, env_file)
    replica = replica_named(plan.replicas, name)
    found = scan_replica(object_store_client(replica, env_file=env_file), replica, target)
    rows = [entry.summary() for entry in found.entries]
    if json_out:
        print_json(
            {
                "ok": True,
                "replica": replica.name,
                "bucket": replica.bucket,
                "artifacts": rows,
                "orphans": found.orphans,
                "foreign_objects": len(found.foreign),
                "problems": found.problems,
            }
        )
        return
    _print(rows, stdout_is_terminal())
    where = f"s3://{replica.bucket}/{replica.prefix.strip('/')}"
    if not rows:
        stderr_console.print(f"no backups in replica {replica.name} ({where})", highlight=False)
    for orphan in found.orphans:
        stderr_console.print(f"orphan (no manifest): s3://{replica.bucket}/{orphan}", markup=False)
    for problem in found.problems:
        stderr_console.print("[yellow]skipped:[/] ", end="", highlight=False)
        stderr_console.print(problem, highlight=False, markup=False)


def _print(rows: list[dict[str, Any]], terminal: bool) -> None:
    if not terminal:  # piped or under cron: one greppable line per backup
        for row in rows:
            verified = "verified" if row["verified"] else "unverified"
            encrypted = "encrypted" if row["encrypted"] else "plain"
            fields = (row["created_at"], row["target"], row["kind"], row["stored_bytes"])
            say(" ".join(str(f) for f in (*fields, verified, encrypted, row["key"])))
        return
    table = Table("created (UTC)", "target", "kind", "size", "verified", "encrypted")
    table.add_column("object", overflow="fold")
    for row in rows:
        table.add_row(
            str(row["created_at"])[:19].replace("T", " "),
            str(row["target"]),
            str(row["kind"]),
            size_text(row["stored_bytes"]),
            "yes" if row["verified"] else "no",
            "age" if row["encrypted"] else "no",
            str(row["key"]),
        )
    stdout_console.print(table, soft_wrap=False)


def size_text(n: object) -> str:
    value = float(n) if isinstance(n, int | float) else 0.0
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover
