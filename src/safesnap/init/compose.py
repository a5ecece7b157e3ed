"""Reading a docker compose stack the way `docker compose` does, for the little `init` needs:
a service's environment (with `${VAR}` interpolation from `.env`), its bind mounts (container
path -> host path) and its published ports.

Only the compose file format is read (PyYAML); nothing is run, no daemon is asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from safesnap.errors import ConfigError

COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml")
# ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$ (a literal $), as compose interpolates.
_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?-)?(?P<default>[^}]*)\}"
                  r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")  # fmt: skip


def find_compose_file(root: Path) -> Path:
    for name in COMPOSE_NAMES:
        if (root / name).is_file():
            return root / name
    raise ConfigError(
        f"{root}: no compose file ({', '.join(COMPOSE_NAMES)})",
        hint="Pass --torrust the directory the deployer wrote (it holds docker-compose.yml).",
    )


def load_compose(path: Path) -> dict[str, Any]:
    import yaml  # only `init` needs it

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the compose file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ConfigError(f"{path}: not a compose file (no `services:` mapping)")
    return data


def interpolate(value: str, env: Mapping[str, str | None]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        current = env.get(name)
        op = match.group("op")
        if op == ":-" and not current:
            return match.group("default")
        if op == "-" and current is None:
            return match.group("default")
        return current or ""

    return _VAR.sub(one, value)


def service_environment(
    service: Mapping[str, Any], env: Mapping[str, str | None]
) -> dict[str, str]:
    """`environment:` as a list of K=V or a mapping, interpolated; a bare `K` takes .env's K."""
    raw = service.get("environment") or {}
    pairs: list[tuple[str, str | None]] = []
    if isinstance(raw, Mapping):
        pairs = [(str(k), None if v is None else str(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        for item in raw:
            key, sep, value = str(item).partition("=")
            pairs.append((key, value if sep else None))
    return {k: interpolate(v, env) if v is not None else env.get(k) or "" for k, v in pairs}


def bind_mounts(service: Mapping[str, Any], base: Path) -> list[tuple[str, Path]]:
    """(container path, host path) of each bind mount, longest container path first; named
    volumes are left out (their data lives under Docker's own directory)."""
    out: list[tuple[str, Path]] = []
    for item in service.get("volumes") or []:
        if isinstance(item, Mapping):
            source, target = item.get("source"), item.get("target")
            if item.get("type", "volume") != "bind" or not source or not target:
                continue
        else:
            parts = str(item).split(":")
            if len(parts) < 2:
                continue
            source, target = parts[0], parts[1]
        source = str(source)
        if not source.startswith((".", "/", "~")):
            continue  # a named volume
        host = Path(source).expanduser()
        out.append((str(target), (base / host).resolve() if not host.is_absolute() else host))
    return sorted(out, key=lambda pair: len(pair[0]), reverse=True)


def host_path(container_path: str, mounts: list[tuple[str, Path]]) -> Path | None:
    """The host path a container path lives at, through the longest matching bind mount."""
    wanted = PurePosixPath(container_path)
    for target, host in mounts:
        mount = PurePosixPath(target)
        if wanted == mount or mount in wanted.parents:
            return host / wanted.relative_to(mount)
    return None


def published_port(service: Mapping[str, Any], container_port: int) -> int | None:
    """The host port publishing `container_port` ("3306:3306", "127.0.0.1:3307:3306",
    or the long syntax); None when it is not published."""
    for item in service.get("ports") or []:
        if isinstance(item, Mapping):
            if str(item.get("target")) == str(container_port) and item.get("published"):
                return int(str(item["published"]))
            continue
        spec = str(item).split("/", 1)[0]
        parts = spec.split(":")
        if len(parts) >= 2 and parts[-1] == str(container_port) and parts[-2].isdigit():
            return int(parts[-2])
    return None
