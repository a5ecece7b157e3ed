"""The integrity check and the facts a manifest records, on a copy or on a pinned snapshot.

The check may run on a worker thread while the main thread feeds the compressor; `Cancel`
stops it and `CheckedAtEof` makes the compressor's input end with the verdict.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from concurrent.futures import Future
from contextlib import closing
from pathlib import Path
from typing import Any, BinaryIO

from safesnap.errors import IntegrityError


def inspect_copy(path: Path, mode: str, cancel: Cancel | None = None) -> dict[str, Any]:
    """Integrity check (quick|full|off) plus the facts a manifest records; IntegrityError if bad.

    `cancel` lets another thread stop a check that runs on a worker thread (see `_store`)."""
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            return inspect_connection(conn, mode, cancel)
    except sqlite3.Error as exc:
        raise IntegrityError(f"the copy cannot be read as a database: {exc}") from None


def inspect_connection(
    conn: sqlite3.Connection, mode: str, cancel: Cancel | None = None
) -> dict[str, Any]:
    """inspect_copy on an open connection: inside a read transaction it checks that snapshot."""
    try:
        if cancel is not None:
            cancel.attach(conn)
        result = _integrity(conn, mode)
        facts: dict[str, Any] = {
            "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
            "page_count": conn.execute("PRAGMA page_count").fetchone()[0],
            "row_counts": row_counts(conn),
        }
    except sqlite3.Error as exc:
        raise IntegrityError(f"the database cannot be read: {exc}") from None
    if result not in ("ok", "skipped"):
        raise IntegrityError(f"integrity check ({mode}) failed: {result[:500]}")
    facts["integrity_result"] = result
    return facts


def _integrity(conn: sqlite3.Connection, mode: str) -> str:
    if mode == "off":
        return "skipped"
    pragma = "quick_check" if mode == "quick" else "integrity_check"
    rows = conn.execute(f"PRAGMA {pragma}(100)").fetchall()
    return "; ".join(str(r[0]) for r in rows)


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per ordinary table (virtual tables need their modules; skipped)."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type='table' AND sql NOT LIKE 'CREATE VIRTUAL%' "
            "ORDER BY name"
        )
    ]
    quoted = {n: '"' + n.replace('"', '""') + '"' for n in names}
    return {
        n: int(conn.execute(f"SELECT count(*) FROM main.{quoted[n]}").fetchone()[0]) for n in names
    }


class Cancel:
    """Interrupt a check running on a worker thread: sqlite3_interrupt() is documented as safe
    to call from another thread. Used when the artifact write fails or a signal unwinds the
    main thread, so SIGTERM does not wait for a full integrity check of a large copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._cancelled = False

    def attach(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._conn = conn
            if self._cancelled:
                raise sqlite3.OperationalError("interrupted")

    def __call__(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):  # closed meanwhile: nothing to stop
                    self._conn.interrupt()


class CheckedAtEof:
    """A reader over the copy whose end of input waits for (and raises) the integrity check."""

    def __init__(self, fh: BinaryIO, check: Future[dict[str, Any]], into: dict[str, Any]) -> None:
        self._fh, self._check, self._into = fh, check, into

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        if not data:
            self._into.update(self._check.result())  # re-raises IntegrityError from the check
        return data
