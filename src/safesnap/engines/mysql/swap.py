"""Replace the contents of an existing database with a restored copy, never losing either.

`restore --force` (or into an existing empty database) loads the dump into a scratch database
NEW (`<to>_safesnap_new_<tag>`) and checks its row counts; only then does `swap_in` run:

1. read the definitions of every view, routine, trigger and event in `to` and in NEW (`SHOW
   CREATE ...` with that database as the default one, so names inside are unqualified, as
   mariadb-dump writes them);
2. drop the triggers of NEW's and of `to`'s tables: a table with triggers cannot move to another
   database ("ERROR 1435 Trigger in wrong schema", MariaDB's RENAME TABLE page); drop `to`'s
   views too: one may carry the name of a restored table (they share a namespace);
3. ONE `RENAME TABLE to.t TO OLD.t, ..., NEW.t TO to.t, ...` moves every old table into OLD
   (`<to>_safesnap_old_<tag>`) and every restored one into `to`. It is atomic: "if one renaming
   fails, all renames executed by the same statement are rolled back" (same page);
4. make `to`'s views, routines, triggers and events those of NEW: views cannot move between
   databases ("ERROR 1450 Changing schema ... is not allowed"), so they are created again;
5. drop OLD (the replaced tables) and NEW (now only its definitions).

A failure in 2-4 is undone from the state found, not from a journal: the tables move back if
they moved, then `to`'s definitions are made those read in step 1; OLD is dropped only when it
holds no table. If undoing fails too, nothing is dropped, the error names the database holding
the old tables and the log holds the old definitions.

SIGTERM/SIGINT are held while this runs (a few statements) and delivered afterwards: a signal
arriving during the RENAME would leave unknown whether it happened. Waiting for a table the
application still uses is bounded by LOCK_WAIT_SECONDS (SourceBusyError, nothing changed).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeAlias

import pymysql

from safesnap.engines.mysql.conn import (
    ConnParams,
    connect,
    execute,
    mysql_reason,
    query_all,
    quote_ident,
)
from safesnap.engines.mysql.scratch import errno_of, restore_use, server_refused
from safesnap.errors import PrivilegeError, SafesnapError, SourceBusyError, SourceError
from safesnap.output import log

Conn: TypeAlias = "pymysql.connections.Connection[Any]"  # generic only for the type checker
LOCK_WAIT_SECONDS = 30
# The signals interrupts.py turns into Signalled; named here, not imported: engines sit below
# the run layer (docs/decisions/0001-layout.md, the import-linter "layers" contract).
SIGNALS = (signal.SIGTERM, signal.SIGINT)
ER_LOCK_WAIT_TIMEOUT = 1205
# Created in this order: views and triggers may call routines (views reading views: converge).
KINDS = ("PROCEDURE", "FUNCTION", "VIEW", "TRIGGER", "EVENT")
_ROUTINES = (
    "SELECT routine_name FROM information_schema.routines WHERE routine_schema = %s "
    "AND routine_type = '{}' ORDER BY 1"
)
_NAMES = {
    "PROCEDURE": _ROUTINES.format("PROCEDURE"),
    "FUNCTION": _ROUTINES.format("FUNCTION"),
    "VIEW": "SELECT table_name FROM information_schema.views WHERE table_schema = %s ORDER BY 1",
    # Several triggers for one table and event fire in creation order: keep action_order.
    "TRIGGER": "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = %s "
    "ORDER BY event_object_table, action_order",
    "EVENT": "SELECT event_name FROM information_schema.events WHERE event_schema = %s ORDER BY 1",
}
# Dropped from `to` before tables move in or out (see step 2), created again afterwards.
_IN_THE_WAY = ("TRIGGER", "VIEW")
_TEXT = {
    "PROCEDURE": "Create Procedure",
    "FUNCTION": "Create Function",
    "VIEW": "Create View",
    "TRIGGER": "SQL Original Statement",
    "EVENT": "Create Event",
}


@dataclass(frozen=True)
class Definition:
    kind: str  # one of KINDS
    name: str
    sql: str  # the CREATE statement, names unqualified
    sql_mode: str = ""
    time_zone: str = ""  # events only


@dataclass(frozen=True)
class Swap:
    to: str
    new: str  # the loaded scratch database
    old: str  # receives the replaced tables
    before: list[Definition]  # `to`'s definitions, to put back on failure
    after: list[Definition]  # NEW's definitions, to create in `to`
    old_tables: list[str]
    new_tables: list[str]


def check_replaceable(params: ConnParams, to: str) -> None:
    """Fail before the (long) load if `to`'s definitions cannot be read: without them a failed
    swap could not put them back."""
    conn = connect(params)
    try:
        definitions(conn, to)
    except pymysql.err.MySQLError as exc:
        raise _refused(exc, params, to) from None
    finally:
        conn.close()


def swap_in(params: ConnParams, new: str, to: str, old: str) -> dict[str, Any]:
    """Replace `to`'s tables and definitions with NEW's (module docstring); drop OLD and NEW."""
    with signals_held():
        conn = connect(params)
        try:
            execute(conn, "SET SESSION lock_wait_timeout = %s", (LOCK_WAIT_SECONDS,))
            return _swap(conn, new, to, old)
        except pymysql.err.MySQLError as exc:
            raise _refused(exc, params, to) from None
        finally:
            conn.close()


def _swap(conn: Conn, new: str, to: str, old: str) -> dict[str, Any]:
    before, after = definitions(conn, to), definitions(conn, new)
    swap = Swap(to, new, old, before, after, tables(conn, to), tables(conn, new))
    execute(conn, f"CREATE DATABASE {quote_ident(old)} CHARACTER SET utf8mb4")
    try:
        _replace(conn, swap)
    except BaseException as exc:
        _undo(conn, swap, exc)
        raise
    log.info("restore: %s replaced (%d tables before, %d now)", to, len(swap.old_tables),
             len(swap.new_tables))  # fmt: skip
    kept = [name for name in (old, new) if not _drop_quietly(conn, name)]
    return {"replaced_tables": swap.old_tables, "kept_databases": kept}


def _replace(conn: Conn, s: Swap) -> None:
    for d in s.after:
        if d.kind == "TRIGGER":
            drop(conn, s.new, d)  # NEW is ours; `after` holds them for `to`
    for d in s.before:
        if d.kind in _IN_THE_WAY:
            drop(conn, s.to, d)  # `before` holds them for an undo
    moves = [(s.to, s.old, t) for t in s.old_tables] + [(s.new, s.to, t) for t in s.new_tables]
    rename(conn, moves)
    converge(conn, s.to, s.after)


def _undo(conn: Conn, s: Swap, exc: BaseException) -> None:
    log.warning("restore: replacing %s failed (%s); putting its previous content back", s.to,
                _reason(exc))  # fmt: skip
    moved: bool | None = None  # where the old tables are: unknown until looked at
    try:
        conn.ping(reconnect=True)  # the failure may have been the connection itself
        execute(conn, "SET SESSION lock_wait_timeout = %s", (LOCK_WAIT_SECONDS,))
        moved = _renamed(conn, s)
        if moved:
            log.warning("restore: moving the previous tables back from %s", s.old)
            for d in definitions(conn, s.to):
                if d.kind in _IN_THE_WAY:
                    drop(conn, s.to, d)  # new ones: they would stop the tables moving back
            back = [(s.to, s.new, t) for t in s.new_tables]
            rename(conn, back + [(s.old, s.to, t) for t in s.old_tables])
            moved = False
        converge(conn, s.to, s.before, keep_going=True)
    except Exception as failed:
        if moved is False:
            _drop_if_empty(conn, s.old)
        raise _undo_failed(s, exc, failed, moved) from exc
    _drop_if_empty(conn, s.old)


def _drop_if_empty(conn: Conn, db: str) -> None:
    """Never drop a database holding tables that were not put back."""
    try:
        if tables(conn, db):
            log.error("restore: %s still holds tables; kept", db)
            return
    except pymysql.err.MySQLError as exc:
        log.error("restore: cannot look into %s (%s); kept", db, mysql_reason(exc))
        return
    _drop_quietly(conn, db)


def _undo_failed(s: Swap, exc: BaseException, failed: Exception, moved: bool | None) -> SourceError:
    for d in s.before:
        log.error("previous definition of %s %s.%s: %s", d.kind.lower(), s.to, d.name, d.sql)
    if moved is None:
        where = f"its previous tables are in {s.to} or in database {s.old}"
    elif moved:
        where = f"its previous tables are in database {s.old}"
    else:
        where = f"its tables are in {s.to}, not all of its previous definitions"
    return SourceError(
        f"restore into {s.to} failed ({_reason(exc)}) and putting back its previous content "
        f"failed too ({_reason(failed)}); {where}",
        hint=f"Nothing was dropped: move tables back with RENAME TABLE {s.old}.t TO {s.to}.t; "
        "the previous view/routine/trigger/event definitions are in the log (level error).",
    )


def _renamed(conn: Conn, s: Swap) -> bool:
    """Whether step 3 happened (it is atomic: all tables moved or none)."""
    if s.old_tables:
        return bool(tables(conn, s.old))
    return bool(s.new_tables) and not tables(conn, s.new)


def definitions(conn: Conn, db: str) -> list[Definition]:
    conn.select_db(db)  # SHOW CREATE then leaves names in `db` unqualified
    return [
        _definition(conn, db, kind, str(name))
        for kind in KINDS
        for (name,) in query_all(conn, _NAMES[kind], (db,))
    ]


def _definition(conn: Conn, db: str, kind: str, name: str) -> Definition:
    with conn.cursor() as cur:
        cur.execute(f"SHOW CREATE {kind} {quote_ident(name)}")
        row = cur.fetchone() or ()
        columns = [str(c[0]) for c in cur.description or ()]
    values = {k: _text(v) for k, v in zip(columns, row, strict=False)}
    sql = values.get(_TEXT[kind])
    if not sql:  # a routine of another definer, without the privilege to read its body
        raise PrivilegeError(
            f"cannot read the definition of {kind.lower()} {db}.{name} (SHOW CREATE {kind} "
            "returns none): restore could not put it back if replacing the database failed",
            hint="Grant SELECT on mysql.proc (MariaDB < 11.3) or SHOW CREATE ROUTINE to the "
            f"restore user; {db} was not changed.",
        )
    mode, zone = values.get("sql_mode") or "", values.get("time_zone") or ""
    return Definition(kind, name, sql, mode, zone)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def tables(conn: Conn, db: str) -> list[str]:
    """Base tables and sequences: everything RENAME TABLE can move to another database."""
    rows = query_all(
        conn,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "AND table_type <> 'VIEW' ORDER BY 1",
        (db,),
    )
    return [str(r[0]) for r in rows]


def rename(conn: Conn, moves: list[tuple[str, str, str]]) -> None:
    """One RENAME TABLE for all (from db, to db, table) moves: all happen or none."""
    if moves:
        q = quote_ident
        pairs = ", ".join(f"{q(src)}.{q(t)} TO {q(dst)}.{q(t)}" for src, dst, t in moves)
        execute(conn, f"RENAME TABLE {pairs}")


def converge(conn: Conn, db: str, wanted: list[Definition], *, keep_going: bool = False) -> None:
    """Make `db`'s views, routines, triggers and events exactly `wanted`. With `keep_going`
    (putting the previous ones back) a refused statement does not stop the others; the first
    error is raised at the end."""
    present = {(d.kind, d.name): d for d in definitions(conn, db)}
    goal = {(d.kind, d.name): d for d in wanted}
    errors: list[pymysql.err.MySQLError] = []
    for key, d in present.items():
        if goal.get(key) != d:
            try:
                drop(conn, db, d)
            except pymysql.err.MySQLError as exc:
                errors.append(exc)
                if not keep_going:
                    raise
    missing = [d for key, d in goal.items() if present.get(key) != d]
    for kind in KINDS:  # routines first: views and triggers may call them
        try:
            _create_in_passes(conn, db, [d for d in missing if d.kind == kind])
        except pymysql.err.MySQLError as exc:
            errors.append(exc)
            if not keep_going:
                raise
    if errors:
        raise errors[0]


def drop(conn: Conn, db: str, d: Definition) -> None:
    execute(conn, f"DROP {d.kind} IF EXISTS {quote_ident(db)}.{quote_ident(d.name)}")


def _create_in_passes(conn: Conn, db: str, defs: list[Definition]) -> None:
    """A view can be created only after the views it reads; MariaDB does not list those
    dependencies (no VIEW_TABLE_USAGE), so create what can be, again, until nothing is left.
    Every pass creates at least one or raises: at most len(defs) passes."""
    pending = defs
    while pending:
        failed: list[Definition] = []
        error: pymysql.err.MySQLError | None = None
        for d in pending:
            try:
                create(conn, db, d)
            except pymysql.err.MySQLError as exc:
                failed.append(d)
                error = exc
        if error is not None and len(failed) == len(pending):
            raise error
        pending = failed


def create(conn: Conn, db: str, d: Definition) -> None:
    conn.select_db(db)  # unqualified names inside the definition resolve to `db`
    execute(conn, "SET SESSION sql_mode = %s", (d.sql_mode,))
    if d.time_zone:
        execute(conn, "SET SESSION time_zone = %s", (d.time_zone,))
    execute(conn, d.sql)


def _drop_quietly(conn: Conn, db: str) -> bool:
    """After the outcome is settled: a database left behind is reported, not an error."""
    try:
        execute(conn, f"DROP DATABASE IF EXISTS {quote_ident(db)}")
    except pymysql.err.MySQLError as exc:
        log.warning("restore: could not drop database %s: %s; drop it by hand", db,
                    mysql_reason(exc))  # fmt: skip
        return False
    return True


def _refused(exc: pymysql.err.MySQLError, params: ConnParams, to: str) -> SafesnapError:
    if errno_of(exc) == ER_LOCK_WAIT_TIMEOUT:
        return SourceBusyError(
            f"tables of {to} on {params.where()} are in use by another session (waited "
            f"{LOCK_WAIT_SECONDS} s for a lock): {mysql_reason(exc)}",
            hint=f"Stop the application using {to} and restore again; {to} was not changed.",
        )
    return server_refused(exc, params, f"restore cannot replace the contents of {to}",
                          restore_use(to))  # fmt: skip


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, SafesnapError) else mysql_reason(exc)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGTERM/SIGINT until the block is done, then deliver the first one (to the handler
    that was there: interrupts raises Signalled). Python runs signal handlers only in the main
    thread, so elsewhere there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 (signal API)
        if not held:
            log.warning("%s: finishing the database swap first", signal.Signals(signum).name)
        held.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if held:
            signal.raise_signal(held[0])
