"""`safesnap verify ARTIFACT`: checksums plus the engine's content check; marks it verified."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer

from safesnap.errors import ConfigError
from safesnap.output import print_json, progress, stderr_console
from safesnap.verification import verify_artifact

ArtifactArg = typer.Argument(..., help="The artifact file (or its .manifest.json).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout.")
# Engine options: used by the MySQL engine to reach a scratch server; SQLite ignores them.
HostOpt = typer.Option(None, "--host", help="MySQL: server host.")
PortOpt = typer.Option(None, "--port", help="MySQL: server port.")
UserOpt = typer.Option(None, "--user", help="MySQL: user name.")
SocketOpt = typer.Option(None, "--socket", help="MySQL: Unix socket path.")
PasswordEnvOpt = typer.Option(
    None, "--password-env", help="MySQL: NAME of the environment variable holding the password."
)
TmpDirOpt = typer.Option(None, "--tmp-dir", help="Where decompressed scratch copies go.")
ClientOpt = typer.Option(None, "--client", help="MySQL: load program (default: mariadb or mysql).")
PrefixOpt = typer.Option(
    None, "--command-prefix", help='MySQL: run the client through this, e.g. "docker exec -i db".'
)


def engine_options(
    host: str | None,
    port: int | None,
    user: str | None,
    socket: Path | None,
    password_env: str | None,
    tmp_dir: Path | None = None,
    client: str | None = None,
    command_prefix: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """Only the options given: an engine's own defaults (and the manifest's recorded,
    non-secret connection) apply to the rest."""
    if tmp_dir is not None and not tmp_dir.is_dir():
        raise ConfigError(f"--tmp-dir {tmp_dir} is not an existing directory")
    given = {
        "host": host,
        "port": port,
        "user": user,
        "socket": socket,
        "password_env": password_env,
        "tmp_dir": tmp_dir,
        "client": client,
        "command_prefix": shlex.split(command_prefix) if command_prefix else None,
        **more,
    }
    return {k: v for k, v in given.items() if v is not None}


def verify(
    artifact: Path = ArtifactArg,
    host: str | None = HostOpt,
    port: int | None = PortOpt,
    user: str | None = UserOpt,
    socket: Path | None = SocketOpt,
    password_env: str | None = PasswordEnvOpt,
    tmp_dir: Path | None = TmpDirOpt,
    client: str | None = ClientOpt,
    command_prefix: str | None = PrefixOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Check an artifact: stored and content sha256 against its manifest, then that it restores."""
    options = engine_options(
        host, port, user, socket, password_env, tmp_dir, client, command_prefix
    )
    with progress(f"verify {artifact.name}", enabled=not json_out) as update:
        result = verify_artifact(artifact, options, progress=update)
    if json_out:
        print_json(result)
        return
    stderr_console.print(
        f"[green]ok[/] {result['artifact']}: checksum ok, content ok ({result['seconds']:.1f} s)",
        highlight=False,
    )
    for key, value in sorted(result["integrity"].items()):
        if not isinstance(value, dict | list):
            stderr_console.print(f"  {key}: {value}", markup=False, highlight=False)
