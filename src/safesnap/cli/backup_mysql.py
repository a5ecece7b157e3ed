"""`safesnap backup mysql --database DB --dest DIR`: one logical dump of a live MySQL/MariaDB."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from safesnap.artifacts.catalog import sweep_temporaries
from safesnap.cli.options import EnvFileOpt, JsonOpt
from safesnap.config.plan import MysqlDumpOptions, MysqlTarget
from safesnap.engines import BackupContext
from safesnap.engines.mysql.engine import ENGINE
from safesnap.errors import ConfigError
from safesnap.output import log, print_json, progress, say

COMPRESSIONS = ("zstd", "gzip", "xz", "none")


def backup_mysql(
    database: list[str] = typer.Option(
        ..., "--database", "-d", help="Database to dump (repeat for several: one snapshot)."
    ),
    dest: Path = typer.Option(..., "--dest", help="Directory the artifact and manifest go to."),
    host: str = typer.Option("127.0.0.1", "--host", help="Server host."),
    port: int = typer.Option(3306, "--port", help="Server port."),
    user: str = typer.Option("root", "--user", help="User name."),
    password_env: str | None = typer.Option(
        None,
        "--password-env",
        help="NAME of the variable holding the password (environment or --env-file).",
    ),
    socket: Path | None = typer.Option(None, "--socket", help="Unix socket instead of TCP."),
    compress: str = typer.Option("zstd", "--compress", help="zstd | gzip | xz | none"),
    command_prefix: str | None = typer.Option(
        None,
        "--command-prefix",
        help='Run the dump client through this, e.g. "docker compose exec -T mysql".',
    ),
    client: str | None = typer.Option(
        None, "--client", help="Dump program (default: mariadb-dump or mysqldump)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Target name used in the artifact name (default: the database)."
    ),
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,  # noqa: ARG001 (its callback sets where secrets come from)
) -> None:
    """Dump live MySQL/MariaDB databases (--single-transaction: no global lock for InnoDB)."""
    if compress not in COMPRESSIONS:
        raise ConfigError(f"--compress must be one of {', '.join(COMPRESSIONS)}; got {compress!r}")
    target = _target(database, name, host, port, user, password_env, socket, command_prefix, client)
    swept = sweep_temporaries(dest)  # what a killed earlier backup left (never a live one's)
    with progress(f"dump {target.name}", enabled=not json_out) as update:
        ctx = BackupContext(dest=dest, compression=compress, kind="manual", progress=update)
        outcome = ENGINE.backup(target, ctx)
    info = outcome.artifact
    result: dict[str, Any] = {
        "ok": True,
        "target": target.name,
        "engine": "mysql",
        "artifact": str(info.path),
        "manifest": str(info.manifest_path),
        "sha256": info.sha256,
        "bytes": info.bytes,
        "source_bytes": info.source_bytes,
        "seconds": round(info.seconds, 3),
        "databases": list(target.databases),
        "warnings": outcome.details["warnings"],
        "row_counts": outcome.details["row_counts"],
        "server": outcome.details["server"],
        **swept.report(),
    }
    if json_out:
        print_json(result)
    else:
        _print_human(result)


def default_name(database: str) -> str:
    """A target name from the database name that fits the plan's name pattern."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", database)[:64]
    return stem if stem[:1].isalnum() else f"db{stem}"[:64]


def _target(
    databases: list[str],
    name: str | None,
    host: str,
    port: int,
    user: str,
    password_env: str | None,
    socket: Path | None,
    command_prefix: str | None,
    client: str | None,
) -> MysqlTarget:
    try:
        return MysqlTarget(
            name=name or default_name(databases[0]),
            host=host,
            port=port,
            user=user,
            password_env=password_env,
            socket=socket,
            databases=databases,
            quiesce="dump",
            dump=MysqlDumpOptions(command_prefix=command_prefix or [], client=client),
        )
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid options", problems=problems) from None


def _print_human(r: dict[str, Any]) -> None:
    rows = sum(sum(t.values()) for t in r["row_counts"].values())
    say(f"ok {r['artifact']}")
    say(
        f"  {r['source_bytes']:,} bytes of SQL -> {r['bytes']:,} bytes in {r['seconds']:.2f} s, "
        f"{rows:,} rows in {', '.join(r['databases'])}"
    )
    for warning in r["warnings"]:
        log.warning("%s", warning)  # a diagnostic, not part of the result: stderr
