"""A guarded global lock on MySQL / MariaDB, held only across a volume snapshot request.

Why guarded: FLUSH TABLES WITH READ LOCK waits for every running statement that has a table
open, and while it waits every new write queues behind it (measured on MariaDB 10.11 here: a
long UPDATE made FTWRL wait and every writer stalled for the whole wait; DESIGN.md). So:

1. look in the processlist for long statements first and do not lock while they run (or kill
   them after a grace period, like XtraBackup's --kill-long-queries-timeout);
2. each lock attempt is bounded by `lock_wait_timeout` (server side, whole seconds) and, as a
   backstop, by a KILL QUERY from a second connection; a bounded number of attempts;
3. while held, a watchdog thread kills the locking connection after `max_lock_hold_seconds`;
   the session's `wait_timeout` is set just above that, so a frozen or partitioned safesnap
   loses the lock server-side too; a dead one (SIGKILL) closes its socket and the server drops
   the lock at once (the lock belongs to the session);
4. exit always releases (UNLOCK TABLES / BACKUP STAGE END / UNLOCK INSTANCE) and closes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeAlias

import pymysql

from safesnap.config.targets import MysqlTarget
from safesnap.engines.mysql.conn import (
    ServerInfo,
    connect,
    detect_server,
    execute,
    params_from_target,
    query_all,
    thread_id,
)
from safesnap.engines.mysql.processlist import (
    LongQuery,
    binlog_coordinates,
    kill_queries,
    long_queries,
    still_running,
)
from safesnap.errors import ConfigError, QuiesceError
from safesnap.output import log

Conn: TypeAlias = "pymysql.connections.Connection[Any]"
_ER_LOCK_WAIT_TIMEOUT = 1205
_ER_QUERY_INTERRUPTED = 1317
_POLL = 0.2

# Statements per mode: (lock statements in order, release statement).
_MODES: dict[str, tuple[tuple[str, ...], str]] = {
    "ftwrl": (("FLUSH TABLES WITH READ LOCK",), "UNLOCK TABLES"),
    "backup_stage": (
        (
            "BACKUP STAGE START",
            "BACKUP STAGE FLUSH",
            "BACKUP STAGE BLOCK_DDL",
            "BACKUP STAGE BLOCK_COMMIT",
        ),
        "BACKUP STAGE END",
    ),
    "instance": (("LOCK INSTANCE FOR BACKUP",), "UNLOCK INSTANCE"),
}


def check_mode(mode: str, server: ServerInfo, target: str) -> None:
    """Reject lock modes the server does not have, before anything is locked."""
    if mode == "instance" and (server.flavor != "mysql" or server.version < (8, 0, 0)):
        raise ConfigError(
            f"lock_mode 'instance' (LOCK INSTANCE FOR BACKUP) needs MySQL 8.0+, "
            f"server is {server.flavor} {server.version_string}",
            hint="On MariaDB use lock_mode = 'backup_stage' (10.4+) or 'ftwrl'.",
            target=target,
        )
    if mode == "backup_stage" and (server.flavor != "mariadb" or server.version < (10, 4, 1)):
        raise ConfigError(
            f"lock_mode 'backup_stage' needs MariaDB 10.4.1+, server is "
            f"{server.flavor} {server.version_string}",
            hint="On MySQL 8 use lock_mode = 'instance' or 'ftwrl'.",
            target=target,
        )


@contextmanager
def guarded_lock(target: MysqlTarget) -> Iterator[dict[str, Any]]:
    """Hold the configured global lock; yield a dict of facts for the run report.

    Raises SourceError (unreachable, bad credentials) or ConfigError (mode unsupported) before
    anything is locked, QuiesceError when no attempt got the lock, and QuiesceError at exit
    when the watchdog had to release the lock before the snapshot request returned (the
    snapshot may then not be consistent).
    """
    params = params_from_target(target)
    control = connect(params)
    try:
        session = connect(params)
    except BaseException:
        control.close()
        raise
    try:
        server = detect_server(control)
        check_mode(target.lock_mode, server, target.name)
        info = _new_info(target, server)
        _prepare_session(session, target)
        _acquire(session, control, target, info)
        with _held(session, control, target, info):
            yield info
    finally:
        for conn in (session, control):
            with suppress(Exception):
                conn.close()


def _new_info(target: MysqlTarget, server: ServerInfo) -> dict[str, Any]:
    return {
        "lock_mode": target.lock_mode,
        "server": server.as_dict(),
        "attempts": 0,
        "lock_wait_seconds": None,
        "waited_seconds_total": None,
        "lock_held_seconds": None,
        "binlog": None,
        "long_queries_seen": [],
        "killed": [],
        "watchdog_fired": False,
    }


def _prepare_session(session: Conn, target: MysqlTarget) -> None:
    # lock_wait_timeout is whole seconds on both servers; round up so we never wait less than
    # configured, the KILL QUERY backstop in _try_lock enforces the exact (fractional) bound.
    wait = max(1, math.ceil(target.lock_wait_timeout))
    # wait_timeout: the server closes this session (dropping the lock) if safesnap goes silent
    # while holding it (frozen, partitioned); the session is idle while the lock is held.
    idle = math.ceil(target.max_lock_hold_seconds) + 2
    execute(session, f"SET SESSION lock_wait_timeout = {wait}")
    execute(session, f"SET SESSION wait_timeout = {idle}")


def _acquire(session: Conn, control: Conn, target: MysqlTarget, info: dict[str, Any]) -> None:
    """Up to lock_attempts tries; long statements are waited out (or killed), never locked over."""
    started = time.monotonic()
    own = {thread_id(session), thread_id(control)}
    failures: list[str] = []
    for attempt in range(1, target.lock_attempts + 1):
        info["attempts"] = attempt
        blockers = _clear_long_queries(control, own, target, info)
        if blockers:
            failures.append(f"attempt {attempt}: {len(blockers)} long statement(s) running")
        else:
            waited = _try_lock(session, control, target)
            if waited is not None:
                info["lock_wait_seconds"] = round(waited, 4)
                info["waited_seconds_total"] = round(time.monotonic() - started, 4)
                return
            failures.append(f"attempt {attempt}: lock wait over {target.lock_wait_timeout:g} s")
        if attempt < target.lock_attempts:
            time.sleep(target.lock_retry_pause)
    raise QuiesceError(
        f"could not take {target.lock_mode} on {target.name} after {target.lock_attempts} "
        f"attempt(s): {'; '.join(failures)}; nothing is locked",
        hint="Long-running statements delay the lock and block writers while it waits; run the "
        "backup when they are done, raise lock_attempts, or set kill_long_queries = true.",
        target=target.name,
    )


def _clear_long_queries(
    control: Conn, own: set[int], target: MysqlTarget, info: dict[str, Any]
) -> list[LongQuery]:
    """Long statements still running (empty: go ahead). With kill_long_queries, wait the grace
    period for them to finish, then KILL QUERY the rest."""
    found = long_queries(control, own, target.long_query_seconds)
    if not found:
        return []
    seen = {q.id for q in info["long_queries_seen"]}
    info["long_queries_seen"].extend(q for q in found if q.id not in seen)
    log.warning(
        "%s: %d statement(s) running longer than %g s; not locking over them",
        target.name, len(found), target.long_query_seconds,
    )  # fmt: skip
    if not target.kill_long_queries:
        return found
    deadline = time.monotonic() + target.kill_long_queries_after
    while found and time.monotonic() < deadline:
        time.sleep(_POLL)
        found = still_running(control, found)
    if found:
        info["killed"].extend(kill_queries(control, found))
    return []


def _try_lock(session: Conn, control: Conn, target: MysqlTarget) -> float | None:
    """One attempt: the lock statements in order; seconds waited, or None after a timeout
    (with the waiting statement gone and any partial BACKUP STAGE ended)."""
    statements, release = _MODES[target.lock_mode]
    timer = threading.Timer(
        target.lock_wait_timeout + 0.25, _kill_query, (control, thread_id(session))
    )
    started = time.monotonic()
    timer.start()
    try:
        for sql in statements:
            execute(session, sql)
    except pymysql.err.OperationalError as exc:
        if exc.args[0] not in (_ER_LOCK_WAIT_TIMEOUT, _ER_QUERY_INTERRUPTED):
            raise QuiesceError(
                f"{target.lock_mode} on {target.name} failed: {exc.args[1]}", target=target.name
            ) from None
        timer.cancel()
        timer.join()
        _ensure_gone(session, control, release)
        return None
    finally:
        timer.cancel()
    timer.join()
    return time.monotonic() - started


def _kill_query(control: Conn, thread_id: int) -> None:
    # Backstop: the server's lock_wait_timeout has whole-second granularity. Runs on the timer
    # thread while the main thread is blocked in the session, so `control` is not shared.
    with suppress(Exception):
        execute(control, f"KILL QUERY {int(thread_id)}")


def _ensure_gone(session: Conn, control: Conn, release: str) -> None:
    """After a timed-out attempt, the waiting statement must not linger (it would keep
    blocking writers): KILL QUERY it if it is still listed, and end any partial stage."""
    if still_running_thread(control, thread_id(session)):
        _kill_query(control, thread_id(session))
    with suppress(pymysql.err.MySQLError):
        execute(session, release)


def still_running_thread(control: Conn, thread_id: int) -> bool:
    rows = query_all(
        control,
        "SELECT 1 FROM information_schema.processlist WHERE id = %s AND command = 'Query'",
        (thread_id,),
    )
    return bool(rows)


@contextmanager
def _held(
    session: Conn, control: Conn, target: MysqlTarget, info: dict[str, Any]
) -> Iterator[None]:
    """Lock is held: record binlog coordinates, arm the watchdog, always release."""
    acquired = time.monotonic()
    stop = threading.Event()
    watchdog = threading.Thread(
        target=_watchdog,
        args=(stop, control, thread_id(session), target, info),
        name=f"safesnap-lock-watchdog-{target.name}",
        daemon=True,
    )
    watchdog.start()
    try:
        info["binlog"] = binlog_coordinates(session, _server_info(info))
        yield
    finally:
        stop.set()
        watchdog.join()
        info["lock_held_seconds"] = round(time.monotonic() - acquired, 4)
        _release(session, target)
        info["long_queries_seen"] = [q.as_dict() for q in info["long_queries_seen"]]
    if info["watchdog_fired"]:
        raise QuiesceError(
            f"the lock on {target.name} was released by the watchdog after "
            f"{target.max_lock_hold_seconds:g} s, before the snapshot request returned; "
            "the snapshot may not be consistent",
            hint="Raise max_lock_hold_seconds or find out why the snapshot request hangs.",
            target=target.name,
        )


def _server_info(info: dict[str, Any]) -> ServerInfo:
    server = info["server"]
    version = tuple(int(p) for p in str(server["version"]).split("."))
    return ServerInfo(server["flavor"], (version[0], version[1], version[2]), server["version"])


def _watchdog(
    stop: threading.Event, control: Conn, thread_id: int, target: MysqlTarget, info: dict[str, Any]
) -> None:
    if stop.wait(target.max_lock_hold_seconds):
        return
    info["watchdog_fired"] = True
    log.error(
        "%s: lock held %g s, watchdog kills the locking session",
        target.name, target.max_lock_hold_seconds,
    )  # fmt: skip
    with suppress(Exception):
        execute(control, f"KILL CONNECTION {int(thread_id)}")


def _release(session: Conn, target: MysqlTarget) -> None:
    _, release = _MODES[target.lock_mode]
    try:
        execute(session, release)
    except pymysql.err.MySQLError as exc:
        # The session may already be gone (watchdog, server restart): then so is the lock.
        log.warning("%s: release statement failed (%s); closing the session", target.name, exc)
    finally:
        with suppress(Exception):
            session.close()
