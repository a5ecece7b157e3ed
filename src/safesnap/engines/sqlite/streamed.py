"""WAL-mode backup without a temporary copy: pin, check, stream into the artifact writer.

One read transaction on the source does everything: `stream.pin` works out which pages it sees,
a worker thread runs the integrity check and row counts on that same connection (so they
describe exactly the streamed snapshot), and the main thread streams the pages into
`artifacts.write_artifact`, whose temp file is the only thing the destination ever holds
besides the finished artifact. The check's verdict is raised at end of input, before anything
is published (write_artifact leaves nothing behind when its source raises).
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from safesnap.artifacts import store as artifacts
from safesnap.engines import BackupContext
from safesnap.engines.sqlite import copy as q
from safesnap.engines.sqlite import stream, wal
from safesnap.engines.sqlite.check import Cancel, CheckedAtEof, inspect_connection
from safesnap.engines.sqlite.fds import SourceFiles
from safesnap.errors import SourceError


@dataclass(frozen=True)
class Streamed:
    info: artifacts.ArtifactInfo
    manifest: dict[str, Any]


def journal_mode(conn: sqlite3.Connection, source: Path, busy_timeout: float) -> str:
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    except sqlite3.Error as exc:
        raise q.translate(exc, source, busy_timeout) from None


def backup_streamed(
    target: Any, ctx: BackupContext, base: dict[str, Any], progress: q.Progress | None
) -> Streamed | str:
    """Stream a WAL database into an artifact; return why not (a reason string) if it cannot.

    `base` holds the manifest fields the engine adds to every SQLite manifest.
    """
    source = Path(target.path)
    # The descriptors outlive the connection: closing one earlier would drop its locks.
    with (
        SourceFiles(source) as files,
        closing(q.connect(source, target.busy_timeout)) as conn,
    ):
        mode = journal_mode(conn, source, target.busy_timeout)
        if mode != "wal":
            return f"journal_mode={mode}: copy-then-check holds the SHARED lock shortest"
        try:
            pinned = stream.pin(conn, files)
        except stream.NotStreamable as exc:
            return str(exc)
        except sqlite3.Error as exc:
            q.rollback_quietly(conn)
            raise q.translate(exc, source, target.busy_timeout) from None
        try:
            return _store(conn, files, pinned, target, ctx, base, progress)
        finally:
            q.rollback_quietly(conn)


def _store(
    conn: sqlite3.Connection,
    files: SourceFiles,
    pinned: stream.Pinned,
    target: Any,
    ctx: BackupContext,
    base: dict[str, Any],
    progress: q.Progress | None,
) -> Streamed:
    pinned_at = datetime.now(UTC)
    manifest = dict(base)
    manifest.update(_facts(pinned))
    cancel = Cancel()
    source = files.source
    pages = stream.PageStream(files, pinned, progress)
    with ThreadPoolExecutor(max_workers=1) as pool:
        check = pool.submit(inspect_connection, conn, target.integrity_check, cancel)
        reader = CheckedAtEof(cast(BinaryIO, pages), check, manifest)
        try:
            info = artifacts.write_artifact(
                cast(BinaryIO, reader), ctx.dest, target=target.name, engine="sqlite",
                ext="sqlite", compression=ctx.compression, level=ctx.level,
                threads=ctx.threads, kind=ctx.kind, manifest=manifest,
                created_at=pinned_at, progress=None,
            )  # fmt: skip
        except BaseException as exc:
            cancel()  # the pool's exit joins the check thread: make that quick
            if _is_source(exc):
                raise _source_fault(exc, source) from None
            raise
    manifest.update(info.manifest)
    return Streamed(info, manifest)


def _facts(pinned: stream.Pinned) -> dict[str, Any]:
    hdr = pinned.header
    return {
        "copied_bytes": pinned.n_page * pinned.page_size,
        "journal_mode": "wal",
        "method": "stream",
        "writer_lockout_seconds": 0.0,  # a WAL reader blocks no writer
        "wal_end_frame": hdr.max_frame,
        "wal_pages": len(pinned.index.frames) if pinned.index else 0,
        "pin_attempts": pinned.attempts,
        "stream_skipped": None,
    }


def _is_source(exc: BaseException) -> bool:
    return isinstance(exc, OSError | wal.WalFormatError)


def _source_fault(exc: BaseException, source: Path) -> SourceError:
    """write_artifact re-raises the source's own OSError; destination faults arrive mapped."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return SourceError(f"cannot read {source} while streaming it: {text}")
