"""Reading a Torrust Tracker deployment (the layout torrust-tracker-deployer writes):

    DIR/docker-compose.yml   services `tracker`, optionally `mysql`, prometheus, grafana, caddy
    DIR/.env                 TORRUST_TRACKER_CONFIG_OVERRIDE_* and MYSQL_* variables
    DIR/storage/tracker/etc/tracker.toml, DIR/storage/{tracker,prometheus,grafana,caddy,...}

The tracker's database comes from `[core.database]` in tracker.toml, with the
`TORRUST_TRACKER_CONFIG_OVERRIDE_CORE__DATABASE__*` overrides the container would see (the
tracker service's `environment:` first, then `.env`); a container path is mapped to the host
through the tracker service's bind mounts. Secrets are read only to find the *name* of the
variable that holds the MySQL password: no value leaves this module.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from safesnap.errors import ConfigError
from safesnap.init import compose

OVERRIDE = "TORRUST_TRACKER_CONFIG_OVERRIDE_CORE__DATABASE__"
DEFAULT_TOML = "/etc/torrust/tracker/tracker.toml"
# Config files worth their own small artifact, relative to DIR, when present.
CONFIG_CANDIDATES = (
    "storage/prometheus/etc/prometheus.yml",
    "storage/grafana/provisioning",
    "storage/caddy/etc/Caddyfile",
    ".env",
)


@dataclass(frozen=True)
class SqliteDb:
    host_path: Path
    container_path: str


@dataclass(frozen=True)
class MysqlDb:
    service: str
    database: str
    user: str
    password_env: str | None  # a variable name in .env, never the value
    port: int | None  # published on the host; None: not published
    container_port: int


@dataclass
class Deployment:
    root: Path
    compose_file: Path
    env_file: Path | None
    tracker_toml: Path
    database: SqliteDb | MysqlDb
    driver_from: str  # where the driver was decided: "tracker.toml" or the override's source
    config_files: list[Path] = field(default_factory=list)
    storage: Path | None = None
    notes: list[str] = field(default_factory=list)  # for the plan's comments and the terminal


def read_deployment(root: Path) -> Deployment:
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory", hint="Pass the deployment's directory.")
    compose_file = compose.find_compose_file(root)
    services = compose.load_compose(compose_file)["services"]
    env_file = root / ".env"
    env = _dotenv(env_file) if env_file.is_file() else {}
    name, tracker = _tracker_service(services, compose_file)
    service_env = compose.service_environment(tracker, env)
    mounts = compose.bind_mounts(tracker, compose_file.parent)
    toml_path = _tracker_toml(root, service_env, env, mounts)
    settings = _database_settings(toml_path)
    overrides, source = _overrides(service_env, env, name)
    settings.update(overrides)
    database = _database(settings, mounts, services, env, toml_path)
    deployment = Deployment(
        root=root,
        compose_file=compose_file,
        env_file=env_file if env_file.is_file() else None,
        tracker_toml=toml_path,
        database=database,
        driver_from=source if "driver" in overrides else str(toml_path),
    )
    deployment.config_files = _config_files(root, toml_path, compose_file)
    storage = root / "storage"
    deployment.storage = storage if storage.is_dir() else None
    deployment.notes = _notes(deployment)
    return deployment


def _dotenv(path: Path) -> dict[str, str | None]:
    from dotenv import dotenv_values  # python-dotenv, as compose reads .env

    return dict(dotenv_values(path, interpolate=False))


def _tracker_service(services: Mapping[str, Any], where: Path) -> tuple[str, Mapping[str, Any]]:
    if isinstance(services.get("tracker"), Mapping):
        return "tracker", services["tracker"]
    for name, service in services.items():
        image = str(service.get("image", "")) if isinstance(service, Mapping) else ""
        if "torrust/tracker" in image or "torrust-tracker" in image:
            return str(name), service
    raise ConfigError(
        f"{where}: no tracker service (a service named `tracker` or running a torrust tracker "
        "image)",
        hint="Is this a Torrust deployment? Without --torrust, `safesnap init` writes a "
        "generic plan.",
    )


def _tracker_toml(
    root: Path, service_env: Mapping[str, str], env: Mapping[str, str | None], mounts: Any
) -> Path:
    inside = service_env.get("TORRUST_TRACKER_CONFIG_TOML_PATH") or env.get(
        "TORRUST_TRACKER_CONFIG_TOML_PATH"
    )
    mapped = compose.host_path(inside or DEFAULT_TOML, mounts)
    for candidate in (mapped, root / "storage/tracker/etc/tracker.toml"):
        if candidate is not None and candidate.is_file():
            return candidate
    raise ConfigError(
        f"{root}: tracker.toml not found (looked for {inside or DEFAULT_TOML} through the "
        "tracker's volumes, and storage/tracker/etc/tracker.toml)",
        hint="Run init on the host where the deployment runs, with its storage in place.",
    )


def _database_settings(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read tracker.toml: {exc}") from None
    section = data.get("core", {}).get("database", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [core.database] is not a table")
    return {k: str(v) for k, v in section.items() if k in ("driver", "path")}


def _overrides(
    service_env: Mapping[str, str], env: Mapping[str, str | None], service: str
) -> tuple[dict[str, str], str]:
    """The container's overrides: its `environment:` (interpolated) wins over `.env`."""
    out: dict[str, str] = {}
    source = ".env"
    for key in ("driver", "path"):
        var = OVERRIDE + key.upper()
        if service_env.get(var):
            out[key] = service_env[var]
            source = f"the {service} service's environment"
        elif env.get(var):
            out[key] = str(env[var])
    return out, f"{source} ({OVERRIDE}DRIVER)"


def _database(
    settings: Mapping[str, str],
    mounts: Any,
    services: Mapping[str, Any],
    env: Mapping[str, str | None],
    toml_path: Path,
) -> SqliteDb | MysqlDb:
    driver = settings.get("driver", "sqlite3")
    path = settings.get("path", "")
    if driver == "sqlite3":
        return _sqlite(path, mounts, toml_path)
    if driver == "mysql":
        return _mysql(path, services, env, toml_path)
    raise ConfigError(f"{toml_path}: [core.database] driver {driver!r} is not sqlite3 or mysql")


def _sqlite(path: str, mounts: Any, toml_path: Path) -> SqliteDb:
    if not path:
        raise ConfigError(f"{toml_path}: [core.database] has no path")
    host = compose.host_path(path, mounts)
    if host is None:
        raise ConfigError(
            f"{toml_path}: the database {path} is not on a bind mount of the tracker service",
            hint="Map its directory to the host (e.g. ./storage/tracker/lib:"
            "/var/lib/torrust/tracker) so safesnap can read it.",
        )
    return SqliteDb(host_path=host, container_path=path)


def _mysql(
    url: str, services: Mapping[str, Any], env: Mapping[str, str | None], toml_path: Path
) -> MysqlDb:
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    if parts.scheme != "mysql" or not database:
        raise ConfigError(
            f"{toml_path}: [core.database] path is not a mysql://user:pass@host:port/db URL"
        )
    service = parts.hostname if parts.hostname and parts.hostname in services else "mysql"
    if not isinstance(services.get(service), Mapping):
        raise ConfigError(f"{toml_path}: no compose service {parts.hostname!r} runs MySQL")
    container_port = parts.port or 3306
    user, password_env = _mysql_login(unquote(parts.username or "root"), parts.password, env)
    return MysqlDb(
        service=service,
        database=database,
        user=user,
        password_env=password_env,
        port=compose.published_port(services[service], container_port),
        container_port=container_port,
    )


def _mysql_login(
    url_user: str, url_password: str | None, env: Mapping[str, str | None]
) -> tuple[str, str | None]:
    """root with MYSQL_ROOT_PASSWORD when .env has it (the run's verify step creates and drops
    scratch databases, which the tracker's own user may not), else the tracker's user with the
    .env variable that holds its password (matched by value, which is never kept)."""
    if env.get("MYSQL_ROOT_PASSWORD") is not None:
        return "root", "MYSQL_ROOT_PASSWORD"
    wanted = unquote(url_password) if url_password is not None else None
    names = sorted(env, key=lambda n: (n != "MYSQL_PASSWORD", n))
    for name in names:
        if wanted is not None and env[name] == wanted:
            return url_user, name
    return url_user, None


def _config_files(root: Path, toml_path: Path, compose_file: Path) -> list[Path]:
    found = [toml_path, compose_file]
    found += [root / rel for rel in CONFIG_CANDIDATES if (root / rel).exists()]
    return found


def _notes(d: Deployment) -> list[str]:
    notes: list[str] = []
    db = d.database
    if isinstance(db, MysqlDb):
        if db.port is None:
            notes.append(
                f"the {db.service} service publishes no port for {db.container_port}; safesnap "
                "connects from the host to check the server and count rows: publish it "
                f'(ports: ["127.0.0.1:3306:{db.container_port}"]) or change host/port'
            )
        elif db.port != db.container_port:
            notes.append(
                f"the host port ({db.port}) differs from the container's ({db.container_port}): "
                f"the dump client inside the container is given --port={db.container_port}"
            )
        if db.password_env is None:
            notes.append(
                "no variable in .env holds the MySQL password; set password_env to the name "
                "of one that does (never the password itself)"
            )
    if d.env_file is None:
        notes.append(f"{d.root}/.env not found: the tracker's overrides were not read from it")
    return notes
