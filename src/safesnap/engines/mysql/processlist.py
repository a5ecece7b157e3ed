"""Processlist and binlog helpers for the guarded MySQL lock (quiesce/mysql.py).

Kept apart so the lock's control flow reads on its own; these are plain queries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

import pymysql

from safesnap.engines.mysql.conn import ServerInfo, execute, query_all
from safesnap.output import log

Conn: TypeAlias = "pymysql.connections.Connection[Any]"

# Threads that are not client statements: replication, the event scheduler, background daemons.
_NOT_STATEMENTS = (
    "Sleep", "Daemon", "Binlog Dump", "Binlog Dump GTID", "Killed", "Connect",
    "Slave_IO", "Slave_SQL", "Slave_worker",
)  # fmt: skip
_SYSTEM_USERS = ("system user", "event_scheduler")


@dataclass(frozen=True)
class LongQuery:
    """A running statement; the text is deliberately not kept (it may hold secrets)."""

    id: int
    user: str
    db: str | None
    command: str
    seconds: float
    state: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def long_queries(control: Conn, own: set[int], older_than: float) -> list[LongQuery]:
    """Client statements (not idle, not ours, not system threads) running >= older_than s.

    Any long statement counts, SELECTs included: on MariaDB 10.11 a long SELECT did not delay
    FTWRL (measured), but MySQL 8 is reported to wait for them ("Waiting for table flush"), so
    we guard for the worse.
    """
    skip = ", ".join(["%s"] * len(_NOT_STATEMENTS))
    users = ", ".join(["%s"] * len(_SYSTEM_USERS))
    rows = query_all(
        control,
        "SELECT id, user, db, command, time, state FROM information_schema.processlist "
        f"WHERE command NOT IN ({skip}) AND user NOT IN ({users}) AND info IS NOT NULL "
        "AND time >= %s ORDER BY time DESC",
        (*_NOT_STATEMENTS, *_SYSTEM_USERS, older_than),
    )
    return [
        LongQuery(int(r[0]), str(r[1]), r[2], str(r[3]), float(r[4]), r[5])
        for r in rows
        if int(r[0]) not in own
    ]


def still_running(control: Conn, queries: list[LongQuery]) -> list[LongQuery]:
    """The subset of `queries` whose thread is still executing a statement."""
    if not queries:
        return []
    marks = ", ".join(["%s"] * len(queries))
    rows = query_all(
        control,
        f"SELECT id FROM information_schema.processlist WHERE id IN ({marks}) "
        "AND command NOT IN ('Sleep', 'Killed') AND info IS NOT NULL",
        tuple(q.id for q in queries),
    )
    alive = {int(r[0]) for r in rows}
    return [q for q in queries if q.id in alive]


def kill_queries(control: Conn, queries: list[LongQuery]) -> list[dict[str, Any]]:
    """KILL QUERY each (the statement ends, the client connection stays); return what was done."""
    done: list[dict[str, Any]] = []
    for query in queries:
        try:
            execute(control, f"KILL QUERY {int(query.id)}")
        except pymysql.err.MySQLError as exc:  # finished meanwhile (1094 unknown thread)
            log.info("KILL QUERY %d: %s", query.id, exc)
            continue
        log.warning(
            "killed long statement id=%d user=%s (%g s)", query.id, query.user, query.seconds
        )
        done.append(query.as_dict())
    return done


def binlog_coordinates(session: Conn, server: ServerInfo) -> dict[str, Any] | None:
    """Binary-log position at the locked point, or None when binary logging is off.

    MySQL 8.2+ renamed SHOW MASTER STATUS to SHOW BINARY LOG STATUS (the old name is gone in 8.4).
    """
    modern_mysql = server.flavor == "mysql" and server.version >= (8, 2, 0)
    sql = "SHOW BINARY LOG STATUS" if modern_mysql else "SHOW MASTER STATUS"
    try:
        with session.cursor() as cur:
            cur.execute(sql)
            row: Any = cur.fetchone()
            names = [d[0].lower() for d in cur.description or ()]
        if not row:
            return None
        data = dict(zip(names, row, strict=False))
        out: dict[str, Any] = {"file": data.get("file"), "position": data.get("position")}
        if data.get("executed_gtid_set"):
            out["gtid"] = data["executed_gtid_set"]
        if server.flavor == "mariadb":
            gtid = query_all(session, "SELECT @@gtid_binlog_pos")
            out["gtid"] = gtid[0][0] if gtid else None
        return out
    except pymysql.err.MySQLError as exc:
        # Missing privilege (BINLOG MONITOR / REPLICATION CLIENT) must not fail the backup.
        log.warning("binlog coordinates unavailable: %s", exc)
        return None
