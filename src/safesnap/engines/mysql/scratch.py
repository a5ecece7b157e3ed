"""Scratch databases for `verify` (`safesnap_verify_<random>`): create, drop, and tell a
missing privilege (PrivilegeError, with the GRANT that fixes it) from any other refusal.

Verify in a run connects as the user recorded in the manifest, i.e. the backup user; the dump
privileges alone (docs/how-to/mysql.md) do not allow creating a database, so this is the first
thing a least-privileged setup meets.
"""

from __future__ import annotations

import re
from typing import Any

import pymysql

from safesnap.engines.mysql.conn import ConnParams, connect, execute, quote_ident
from safesnap.errors import PrivilegeError, SafesnapError, SourceError

# Server errors that mean "this user may not" (not "the data is wrong"): ER_DBACCESS_DENIED_ERROR,
# ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR,
# ER_PROCACCESS_DENIED_ERROR (MariaDB and MySQL share these numbers).
ACCESS_DENIED = frozenset({1044, 1142, 1143, 1227, 1370})
# The mariadb/mysql client reports a failed statement as "ERROR 1044 (42000) at line 44: ...".
_CLIENT_ERROR = re.compile(r"\bERROR (\d+) \(")
VERIFY_PREFIX = "safesnap_verify_"
VERIFY_GRANT = (
    "GRANT SELECT, INSERT, CREATE, DROP, ALTER, LOCK TABLES, CREATE VIEW, "
    "CREATE ROUTINE, TRIGGER, EVENT ON `safesnap\\_verify\\_%`.* TO <the user above>"
)


def create_scratch(params: ConnParams, name: str) -> None:
    conn = connect(params)
    try:
        execute(conn, f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
    except pymysql.err.MySQLError as exc:
        raise server_refused(
            exc, params, f"verify cannot create its scratch database {name}"
        ) from None
    finally:
        conn.close()


def drop_scratch(params: ConnParams, name: str) -> None:
    """Drop a scratch database after a successful check; failing to is an error, because a
    nightly run leaking one full copy of the data per night would fill the server's disk."""
    conn = connect(params)
    try:
        execute(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    except pymysql.err.MySQLError as exc:
        raise server_refused(
            exc, params, f"the dump loaded, but its scratch database {name} cannot be dropped"
        ) from None
    finally:
        conn.close()


def server_refused(exc: pymysql.err.MySQLError, params: ConnParams, what: str) -> SafesnapError:
    """PrivilegeError for an access-denied answer (with the GRANT that fixes it), SourceError
    for anything else the server said."""
    if errno_of(exc) in ACCESS_DENIED:
        return missing_privilege(f"{what} on {params.where()}", mysql_reason(exc), params.target)
    return SourceError(f"{what} on {params.where()}: {mysql_reason(exc)}", target=params.target)


def load_refused(exc: SourceError) -> SafesnapError:
    """The client's load failed: PrivilegeError when the server refused it access (the
    verify privileges in the docs were not granted), else the client's error unchanged."""
    match = _CLIENT_ERROR.search(exc.message)
    if match is None or int(match[1]) not in ACCESS_DENIED:
        return exc
    return missing_privilege("verify cannot load the dump into its scratch database", exc.message)


def missing_privilege(what: str, reason: str, target: str | None = None) -> PrivilegeError:
    return PrivilegeError(
        f"{what}: a privilege is missing: {reason}",
        hint=f"{VERIFY_GRANT} (docs/how-to/mysql.md#privileges), or set [run] verify = false; "
        "the artifact is kept, unverified.",
        target=target,
    )


def errno_of(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    return args[0] if args and isinstance(args[0], int) else None


def mysql_reason(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


def access_denied(exc: BaseException) -> bool:
    return errno_of(exc) in ACCESS_DENIED
