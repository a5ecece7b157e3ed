"""`safesnap verify ARTIFACT`: checksums plus the engine's content check; marks it verified."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

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
from safesnap.engines.verify import verify_artifact
from safesnap.errors import ConfigError
from safesnap.output import print_json, progress, say


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
    env_file: Path | None = EnvFileOpt,  # noqa: ARG001 (its callback sets where secrets come from)
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
    say(f"ok {result['artifact']}: checksum ok, content ok ({result['seconds']:.1f} s)")
    for key, value in sorted(result["integrity"].items()):
        if not isinstance(value, dict | list):
            say(f"  {key}: {value}")
