"""Scratch databases for `verify` (`safesnap_verify_<random>`) and `restore` (`<to>_safesnap_new_
<random>` to load into, `<to>_safesnap_old_<random>` to hold the replaced tables): create, load
a dump into and check against the manifest (`Load`), drop, and tell a missing privilege
(PrivilegeError, with the GRANT that fixes it) from any other refusal.

Verify in a run connects as the user recorded in the manifest, i.e. the backup user; the dump
privileges alone (docs/how-to/mysql.md) do not allow creating a database, so this is the first
thing a least-privileged setup meets. Restore names its scratch databases after `to`, so one
GRANT on `<to>\\_safesnap\\_%` allows them.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from safesnap.artifacts.codecs import CHUNK
from safesnap.artifacts.store import open_decompressed
from safesnap.engines.mysql.client import client_program, run_load
from safesnap.engines.mysql.conn import (
    ConnParams,
    connect,
    detect_server,
    execute,
    mysql_reason,
    query_all,
    quote_ident,
)
from safesnap.engines.mysql.dumpfile import SectionFilter
from safesnap.errors import (
    ArtifactError,
    IntegrityError,
    PrivilegeError,
    SafesnapError,
    SourceError,
)
from safesnap.output import log

# Server errors that mean "this user may not" (not "the data is wrong"): ER_DBACCESS_DENIED_ERROR,
# ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR,
# ER_PROCACCESS_DENIED_ERROR (MariaDB and MySQL share these numbers).
ACCESS_DENIED = frozenset({1044, 1142, 1143, 1227, 1370})
# The mariadb/mysql client reports a failed statement as "ERROR 1044 (42000) at line 44: ...".
_CLIENT_ERROR = re.compile(r"\bERROR (\d+) \(")
VERIFY_PREFIX = "safesnap_verify_"
_PRIVILEGES = (
    "SELECT, INSERT, CREATE, DROP, ALTER, LOCK TABLES, CREATE VIEW, CREATE ROUTINE, TRIGGER, EVENT"
)
VERIFY_GRANT = f"GRANT {_PRIVILEGES} ON `safesnap\\_verify\\_%`.* TO <the user above>"
# A database name is at most 64 characters; the suffix "_safesnap_new_" + 6 hex digits takes 20.
_STEM = 64 - 20
_LEFTOVER = re.compile(r"_safesnap_(new|old)_[0-9a-f]{6}")


@dataclass(frozen=True)
class Use:
    """Who needs the scratch database: named in messages, with the GRANT that allows it."""

    verb: str  # "verify" / "restore"
    grant: str
    otherwise: str  # what the operator can do instead, and what became of the artifact/target


VERIFY = Use(
    "verify", VERIFY_GRANT, "or set [run] verify = false; the artifact is kept, unverified."
)


def restore_names(to: str) -> tuple[str, str]:
    """(database to load into, database to hold the replaced tables), both named after `to`."""
    stem, tag = to[:_STEM], uuid.uuid4().hex[:6]
    return f"{stem}_safesnap_new_{tag}", f"{stem}_safesnap_old_{tag}"


def sweep_restore_leftovers(params: ConnParams, to: str) -> None:
    """What a SIGKILLed restore into `to` left: its scratch copies of an artifact are dropped,
    a database holding tables it replaced is only reported (they may be wanted back)."""
    stem = to[:_STEM]
    conn = connect(params)
    try:
        pattern = like_escape(stem) + "\\_safesnap\\_%"
        for (name,) in query_all(conn, "SHOW DATABASES LIKE %s", (pattern,)):
            kind = _LEFTOVER.fullmatch(str(name)[len(stem) :])
            if kind is None:
                continue
            if kind[1] == "old":
                log.warning("an interrupted restore left the tables it replaced in database %s; "
                            "drop it once you do not need them", name)  # fmt: skip
                continue
            log.info("dropping %s, left by an interrupted restore", name)
            execute(conn, f"DROP DATABASE IF EXISTS {quote_ident(str(name))}")
    except pymysql.err.MySQLError as exc:
        log.warning("could not sweep the leftovers of earlier restores into %s: %s", to,
                    mysql_reason(exc))  # fmt: skip
    finally:
        conn.close()


def like_escape(name: str) -> str:
    """`name` as a literal in LIKE (SHOW DATABASES LIKE) and in GRANT database patterns."""
    return name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def restore_use(to: str) -> Use:
    pattern = like_escape(to[:_STEM]) + "\\_safesnap\\_%"
    grant = (
        f"GRANT {_PRIVILEGES}, ALTER ROUTINE, SHOW VIEW ON `{pattern}`.* (and on "
        f"{quote_ident(to)}.*) TO <the user above>"
    )
    return Use("restore", grant, f"then restore again; {to} was not changed.")


def create_scratch(
    params: ConnParams, name: str, use: Use = VERIFY, what: str | None = None
) -> None:
    """CREATE DATABASE `name` (never IF NOT EXISTS: a database already there is not ours)."""
    conn = connect(params)
    try:
        execute(conn, f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
    except pymysql.err.MySQLError as exc:
        what = what or f"{use.verb} cannot create its scratch database {name}"
        raise server_refused(exc, params, what, use) from None
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


def server_refused(
    exc: pymysql.err.MySQLError, params: ConnParams, what: str, use: Use = VERIFY
) -> SafesnapError:
    """PrivilegeError for an access-denied answer (with the GRANT that fixes it), SourceError
    for anything else the server said."""
    if errno_of(exc) in ACCESS_DENIED:
        return missing_privilege(
            f"{what} on {params.where()}", mysql_reason(exc), params.target, use
        )
    return SourceError(f"{what} on {params.where()}: {mysql_reason(exc)}", target=params.target)


def load_refused(exc: SourceError, use: Use = VERIFY, into: str = "") -> SafesnapError:
    """The client's load failed: PrivilegeError when the server refused it access (the
    privileges in the docs were not granted), else the client's error unchanged."""
    match = _CLIENT_ERROR.search(exc.message)
    if match is None or int(match[1]) not in ACCESS_DENIED:
        return exc
    into = into or "its scratch database"
    return missing_privilege(f"{use.verb} cannot load the dump into {into}", exc.message, use=use)


def missing_privilege(
    what: str, reason: str, target: str | None = None, use: Use = VERIFY
) -> PrivilegeError:
    return PrivilegeError(
        f"{what}: a privilege is missing: {reason}",
        hint=f"{use.grant} (docs/how-to/mysql.md#privileges), {use.otherwise}",
        target=target,
    )


def errno_of(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    return args[0] if args and isinstance(args[0], int) else None


def access_denied(exc: BaseException) -> bool:
    return errno_of(exc) in ACCESS_DENIED


class Load:
    """One database of an artifact, to load into a database and check against the manifest."""

    def __init__(
        self,
        artifact: Path,
        params: ConnParams,
        source: str,
        expected: Mapping[str, int],
        options: Mapping[str, Any],
    ) -> None:
        self.artifact, self.params, self.source = artifact, params, source
        self.expected, self.options = expected, options

    def into(self, database: str, use: Use, scratch: bool = True) -> dict[str, int]:
        """Load, then compare every table's row count with the manifest's."""
        try:
            _load(self.artifact, self.params, {self.source: database}, self.options)
        except SourceError as exc:
            where = f"its scratch database {database}" if scratch else f"the database {database}"
            raise load_refused(exc, use, where) from None
        return _compare_counts(self.params, database, self.expected, self.source, use)


def check_stored(artifact: Path, manifest: Mapping[str, Any]) -> None:
    """The stored file against the manifest's size and sha256 before the server sees a byte.
    Without a codec (compression none) nothing else notices damage before the client reads
    it: it then fails on it as on any SQL error, or loads it."""
    try:
        size = artifact.stat().st_size
        digest = _sha256(artifact) if size == manifest.get("bytes") else None
    except OSError as exc:
        raise ArtifactError(f"cannot read {artifact}: {exc.strerror or exc}") from None
    checks = (("size", manifest.get("bytes"), size), ("sha256", manifest.get("sha256"), digest))
    for what, expected, actual in checks:
        if expected != actual:
            raise IntegrityError(
                f"{artifact.name}: stored {what} mismatch (manifest {expected}, file {actual})",
                hint="The artifact is damaged or was changed; restore from another backup.",
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _load(
    artifact: Path, params: ConnParams, mapping: dict[str, str], options: Mapping[str, Any]
) -> None:
    prefix = list(options.get("command_prefix") or [])
    conn = connect(params)
    try:
        server = detect_server(conn)
    finally:
        conn.close()
    program = client_program("load", options.get("client"), prefix, server)
    with open_decompressed(artifact) as src:
        run_load(params, program, prefix, _filtered(src, SectionFilter(mapping)))


def _filtered(src: Any, section: SectionFilter) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        yield section.feed(chunk)
    yield section.close()


def _compare_counts(
    params: ConnParams, database: str, expected: Mapping[str, int], source: str, use: Use
) -> dict[str, int]:
    conn = connect(params, database=database)
    try:
        actual = {t: _count(conn, t, use) for t in expected}
    finally:
        conn.close()
    wrong = [f"{t}: {actual[t]} rows, dump had {n}" for t, n in expected.items() if actual[t] != n]
    if wrong:
        raise IntegrityError(
            f"{source} loaded into {database} does not match the dump: " + "; ".join(wrong),
            hint="The artifact does not restore faithfully; use another backup.",
        )
    return actual


def _count(conn: Any, table: str, use: Use) -> int:
    try:
        rows = query_all(conn, f"SELECT COUNT(*) FROM {quote_ident(table)}")
    except pymysql.err.MySQLError as exc:
        if access_denied(exc):  # not allowed to look is not "missing"
            raise missing_privilege(
                f"cannot count the rows of {table}", mysql_reason(exc), use=use
            ) from None
        # A table missing after the load is a failed restore.
        raise IntegrityError(f"table {table} missing after loading the dump: {exc}") from None
    return int(rows[0][0])
