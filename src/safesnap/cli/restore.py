"""`safesnap restore ARTIFACT --to PATH`: checksum first, then the engine restores atomically."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from safesnap.artifacts.store import resolve_artifact
from safesnap.cli.options import (
    ArtifactArg,
    ClientOpt,
    EnvFileOpt,
    HostOpt,
    JsonOpt,
    PasswordEnvOpt,
    PortOpt,
    PrefixOpt,
    SocketOpt,
    TmpDirOpt,
    UserOpt,
)
from safesnap.cli.verify import engine_options
from safesnap.engines import get_engine
from safesnap.engines.verify import check_checksums
from safesnap.output import log, print_json, progress, say


def restore(
    artifact: Path = ArtifactArg,
    to: str = typer.Option(
        ..., "--to", help="SQLite: the database file to create; MySQL: the database name."
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing data at --to."),
    host: str | None = HostOpt,
    port: int | None = PortOpt,
    user: str | None = UserOpt,
    socket: Path | None = SocketOpt,
    password_env: str | None = PasswordEnvOpt,
    tmp_dir: Path | None = TmpDirOpt,
    client: str | None = ClientOpt,
    command_prefix: str | None = PrefixOpt,
    database: str | None = typer.Option(
        None, "--database", help="MySQL: which database of a multi-database dump to restore."
    ),
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,  # noqa: ARG001 (its callback sets where secrets come from)
) -> None:
    """Restore a backup. Refuses to overwrite existing data without --force."""
    started = time.monotonic()
    artifact = resolve_artifact(artifact)
    options = engine_options(
        host, port, user, socket, password_env, tmp_dir, client, command_prefix, database=database
    )
    with progress(f"checksum {artifact.name}", enabled=not json_out) as update:
        manifest = check_checksums(artifact, update)
    engine = get_engine(str(manifest.get("engine")))
    log.info("restore %s: into %s", artifact.name, to)
    details = engine.restore(artifact, manifest, to, force=force, options=options)
    result = {
        "ok": True,
        "artifact": str(artifact),
        "to": to,
        "engine": engine.name,
        "checksum_ok": True,
        "restored": details,
        "seconds": round(time.monotonic() - started, 3),
    }
    if json_out:
        print_json(result)
        return
    say(f"restored {artifact.name} -> {to} ({result['seconds']:.1f} s)")
