"""`safesnap init [--torrust DIR] --dest DIR [--output plan.toml] [--provider P] [--force]`:
write a commented plan, from a Torrust deployment or as a generic starting point.

The text is validated by the plan model before it is published (a plan that `config check`
would reject is a bug here, not the operator's problem), then written atomically (temp file,
fsync, rename; mode 0600) and never over an existing file without --force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from safesnap.artifacts.atomic import atomic_write, temp_file
from safesnap.artifacts.destination import make_private_dirs
from safesnap.cli.options import JsonOpt
from safesnap.config.plan import load_plan
from safesnap.errors import ConfigError, InternalError
from safesnap.init.torrust import Deployment, MysqlDb, read_deployment
from safesnap.init.writer import generic_plan, torrust_plan
from safesnap.output import log, print_json, say

Provider = Literal["aws", "digitalocean", "hetzner"]


def init(
    torrust: Path | None = typer.Option(
        None,
        "--torrust",
        help="A Torrust Tracker deployment directory (docker-compose.yml, "
        ".env, storage/). Without it, a generic commented plan is written.",
    ),
    dest: Path = typer.Option(
        Path("/var/backups/safesnap"), "--dest", help="Backup destination (an attached volume)."
    ),
    output: Path = typer.Option(Path("safesnap.toml"), "--output", "-o", help="Plan file."),
    provider: Provider | None = typer.Option(
        None, "--provider", help="Add a (commented) volume snapshot for this cloud."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing plan file."),
    json_out: bool = JsonOpt,
) -> None:
    """Write a plan to start from: read a Torrust deployment (--torrust), or a commented
    generic plan. Refuses to replace an existing file without --force (exit 7)."""
    dest = dest.absolute()
    deployment = read_deployment(torrust) if torrust is not None else None
    command = "safesnap init" + (f" --torrust {deployment.root}" if deployment else "")
    if deployment is not None:
        text = torrust_plan(deployment, dest, provider, command)
    else:
        text = generic_plan(dest, Path.cwd(), output)
    # /etc/safesnap may not exist yet on a fresh host: made 0700, like every directory we make.
    _check_text(text, make_private_dirs(output.absolute().parent))
    with atomic_write(output, overwrite=force) as fh:
        fh.write(text.encode())
    _report(output, deployment, json_out)


def _check_text(text: str, directory: Path) -> None:
    """Validate with the plan model itself, from a temp file beside the output."""
    with temp_file(directory, "init-check") as (tmp, fh):
        fh.write(text.encode())
        fh.flush()
        try:
            load_plan(tmp)
        except ConfigError as exc:  # our template is wrong: say so, write nothing
            raise InternalError(f"the generated plan does not validate: {exc.problems}") from None


def _report(output: Path, d: Deployment | None, json_out: bool) -> None:
    env = f" --env-file {d.env_file}" if d is not None and d.env_file else ""
    check = f"safesnap config check --config {output}{env}"
    run = f"safesnap run --config {output}{env}"
    if json_out:
        print_json(
            {
                "ok": True,
                "plan": str(output),
                "database": _db_kind(d),
                "notes": d.notes if d else [],
                "next": [check, run],
            }
        )
        return
    say(f"wrote {output}" + (f" from {d.root} ({_db_kind(d)} database)" if d else ""))
    for note in d.notes if d else []:
        log.warning("%s", note)
    say(f"next: {check}")
    say(f"then: {run}")


def _db_kind(d: Deployment | None) -> str | None:
    if d is None:
        return None
    return "mysql" if isinstance(d.database, MysqlDb) else "sqlite"
