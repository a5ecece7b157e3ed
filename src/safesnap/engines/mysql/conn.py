"""Connections to MySQL / MariaDB: from a plan target or from CLI options, plus server detection.

Everything that talks to the server with PyMySQL goes through `connect`, so credentials are
handled in one place: the password comes from `resolve_secret(password_env)` (the environment,
else the process's env file: `--env-file` or ./.env) as a SecretStr and is unwrapped only in the
call to PyMySQL (and in the 0600 option file for the command-line clients, see mysql_dump.py).
Connection failures become SourceError *before* anything is locked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pymysql
from pydantic import SecretStr

from safesnap.config.plan import MysqlTarget, MysqlTls, resolve_secret, unset_secret
from safesnap.errors import ConfigError, SourceError

Flavor = Literal["mariadb", "mysql"]


@dataclass(frozen=True)
class ConnParams:
    """Where and as whom to connect. `password` stays a SecretStr until the socket is opened."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    socket: Path | None = None
    password: SecretStr | None = None
    password_env: str | None = None  # kept for messages: the *name*, never the value
    connect_timeout: float = 5.0
    tls: MysqlTls | None = None
    target: str | None = None

    def where(self) -> str:
        """Human description of the server for error messages (no credentials)."""
        if self.socket is not None:
            return f"{self.user}@unix:{self.socket}"
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class ServerInfo:
    flavor: Flavor
    version: tuple[int, int, int]
    version_string: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "flavor": self.flavor,
            "version": ".".join(str(v) for v in self.version),
            "version_string": self.version_string,
        }


def _password(password_env: str | None, target: str | None) -> SecretStr | None:
    if not password_env:
        return None
    secret = resolve_secret(password_env)
    if secret is None:
        raise ConfigError(
            f"MySQL password: {unset_secret(password_env)}",
            hint=f"Put {password_env}=... in the env file (mode 0600) and pass it with "
            "--env-file, or export it; the plan holds only the variable's name.",
            target=target,
        )
    return secret


def params_from_target(target: MysqlTarget) -> ConnParams:
    return ConnParams(
        host=target.host,
        port=target.port,
        user=target.user,
        socket=target.socket,
        password=_password(target.password_env, target.name),
        password_env=target.password_env,
        connect_timeout=target.connect_timeout,
        tls=target.tls,
        target=target.name,
    )


def params_from_options(options: Mapping[str, Any]) -> ConnParams:
    """CLI options (restore/verify): host, port, user, socket, password_env; all optional."""
    socket = options.get("socket")
    return ConnParams(
        host=str(options.get("host") or "127.0.0.1"),
        port=int(options.get("port") or 3306),
        user=str(options.get("user") or "root"),
        socket=Path(socket) if socket else None,
        password=_password(options.get("password_env"), None),
        password_env=options.get("password_env"),
        connect_timeout=float(options.get("connect_timeout") or 5.0),
    )


def _ssl_kwargs(tls: MysqlTls | None) -> dict[str, Any]:
    if tls is None:
        return {}
    out: dict[str, Any] = {"ssl_verify_identity": tls.verify_identity, "ssl_verify_cert": True}
    if tls.ca:
        out["ssl_ca"] = str(tls.ca)
    if tls.cert:
        out["ssl_cert"] = str(tls.cert)
    if tls.key:
        out["ssl_key"] = str(tls.key)
    return out


def connect(
    params: ConnParams,
    *,
    database: str | None = None,
    read_timeout: float | None = None,
) -> pymysql.connections.Connection[Any]:
    """An autocommit PyMySQL connection; SourceError (without the password) when it fails."""
    kwargs: dict[str, Any] = {
        "user": params.user,
        "password": params.password.get_secret_value() if params.password else "",
        "database": database,
        "connect_timeout": params.connect_timeout,
        "read_timeout": read_timeout,
        "autocommit": True,
        "charset": "utf8mb4",
        "program_name": "safesnap",
        **_ssl_kwargs(params.tls),
    }
    if params.socket is not None:
        kwargs["unix_socket"] = str(params.socket)
    else:
        kwargs["host"], kwargs["port"] = params.host, params.port
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        # PyMySQL messages name user and host, never the password ("using password: YES").
        raise SourceError(
            f"cannot connect to MySQL/MariaDB at {params.where()}: {mysql_reason(exc)}",
            hint="Check host/port/socket, the user, and the variable named by password_env"
            + (f" ({params.password_env})" if params.password_env else "")
            + ".",
            target=params.target,
        ) from None


def mysql_reason(exc: BaseException) -> str:
    """A server error as `(code) message`; anything else as its text."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def detect_server(conn: pymysql.connections.Connection[Any]) -> ServerInfo:
    """MariaDB vs MySQL and the version (MariaDB says so in VERSION(): 10.11.19-MariaDB-...)."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@version_comment")
        row: Any = cur.fetchone()
    version_string, comment = (str(row[0]), str(row[1] or "")) if row else ("", "")
    flavor: Flavor = "mariadb" if "mariadb" in f"{version_string} {comment}".lower() else "mysql"
    match = _VERSION.search(version_string)
    version = (int(match[1]), int(match[2]), int(match[3])) if match else (0, 0, 0)
    return ServerInfo(flavor=flavor, version=version, version_string=version_string)


def quote_ident(name: str) -> str:
    """Backtick-quote an identifier (database, table) for SQL text."""
    return "`" + name.replace("`", "``") + "`"


def query_all(
    conn: pymysql.connections.Connection[Any], sql: str, args: Any = None
) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def execute(conn: pymysql.connections.Connection[Any], sql: str, args: Any = None) -> None:
    with conn.cursor() as cur:
        cur.execute(sql, args)


def thread_id(conn: pymysql.connections.Connection[Any]) -> int:
    """The server's id for this session (processlist id, target of KILL)."""
    return int(conn.thread_id())  # type: ignore[no-untyped-call]
