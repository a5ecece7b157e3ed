"""The SQLite engine: consistent copy -> integrity check -> compressed artifact; verify; restore.

The copy itself lives in safesnap.engines.sqlite.copy (one job: getting a consistent point out of a
live database). This module turns a copy into a backup and a backup back into a database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

from safesnap.artifacts import atomic
from safesnap.artifacts import store as artifacts
from safesnap.artifacts.codecs import CHUNK
from safesnap.artifacts.destination import make_private_dirs
from safesnap.config.targets import SqliteTarget
from safesnap.engines import BackupContext, BackupOutcome
from safesnap.engines.sqlite import copy as q
from safesnap.errors import IntegrityError, RefusedError, SourceError


def inspect_copy(path: Path, mode: str, cancel: _Cancel | None = None) -> dict[str, Any]:
    """Integrity check (quick|full|off) plus the facts a manifest records; IntegrityError if bad.

    `cancel` lets another thread stop a check that runs on a worker thread (see `_store`)."""
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            if cancel is not None:
                cancel.attach(conn)
            result = _integrity(conn, mode)
            facts: dict[str, Any] = {
                "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
                "page_count": conn.execute("PRAGMA page_count").fetchone()[0],
                "row_counts": row_counts(conn),
            }
    except sqlite3.Error as exc:
        raise IntegrityError(f"the copy cannot be read as a database: {exc}") from None
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


class _Cancel:
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


class _CheckedAtEof:
    """A reader over the copy whose end of input waits for (and raises) the integrity check."""

    def __init__(self, fh: BinaryIO, check: Future[dict[str, Any]], into: dict[str, Any]) -> None:
        self._fh, self._check, self._into = fh, check, into

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        if not data:
            self._into.update(self._check.result())  # re-raises IntegrityError from the check
        return data


class SqliteEngine:
    name = "sqlite"

    def backup(self, target: SqliteTarget, ctx: BackupContext) -> BackupOutcome:
        source = Path(target.path)
        q.check_source(source)  # before creating anything in dest
        make_private_dirs(ctx.dest)  # 0700; a file in the way is destination_failed
        size = _source_size(source)
        # The raw copy is as large as the database: atomic.temp_file removes it (and its
        # -wal/-shm) on every way out, SIGTERM included, and flocks it meanwhile, so a sweeper
        # in a concurrent `prune` leaves it alone and one after a SIGKILL removes it.
        with atomic.temp_file(ctx.dest, f"{target.name}.sqlite") as (tmp, fh):
            copy = q.raw_copy(
                source, tmp, busy_timeout=target.busy_timeout, progress=_pass(ctx, size),
                dest_fd=fh.fileno(),
            )  # fmt: skip
            q.finish_copy(tmp)
            manifest = _manifest(target, source, copy)
            manifest.update(plan=ctx.plan, run_id=ctx.run_id or None)
            info = self._store(tmp, target, ctx, manifest, copy, _pass(ctx, size))
        keys = ("journal_mode", "method", "integrity_result", "writer_lockout_seconds")
        return BackupOutcome(artifact=info, details={k: manifest[k] for k in keys})

    def _store(
        self,
        tmp: Path,
        target: Any,
        ctx: BackupContext,
        manifest: dict[str, Any],
        copy: q.CopyResult,
        progress: Callable[[int], None] | None,
    ) -> artifacts.ArtifactInfo:
        """Compress the copy while a second thread checks it (2 cores: measured on 1 GiB,
        quick_check 0.9 s + row counts 0.4 s that no longer add to the 5-6 s of zstd).

        The check's verdict arrives before the artifact is published: the reader raises it at
        end of input, and write_artifact leaves nothing behind when its source raises. The
        facts land in `manifest` at that moment, before write_artifact builds the manifest.
        """
        cancel = _Cancel()
        with ThreadPoolExecutor(max_workers=1) as pool, tmp.open("rb") as fh:
            check = pool.submit(inspect_copy, tmp, target.integrity_check, cancel)
            reader = _CheckedAtEof(fh, check, manifest)
            try:
                return artifacts.write_artifact(
                    cast(BinaryIO, reader), ctx.dest, target=target.name, engine=self.name,
                    ext="sqlite", compression=ctx.compression, level=ctx.level,
                    threads=ctx.threads, kind=ctx.kind, manifest=manifest,
                    created_at=copy.consistent_at, progress=progress,
                )  # fmt: skip
            except BaseException:
                cancel()  # the pool's exit joins the check thread: make that quick
                raise

    def quiesce(self, target: SqliteTarget) -> AbstractContextManager[dict[str, Any]]:
        return q.hold_for_snapshot(
            Path(target.path),
            busy_timeout=target.busy_timeout,
            max_hold_seconds=target.max_lock_hold_seconds,
        )

    def verify(
        self, artifact: Path, manifest: Mapping[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        with _decompressed(artifact, options.get("tmp_dir")) as db:
            facts = inspect_copy(db, "full")
        _check_counts(artifact, manifest, facts["row_counts"])
        return {
            "integrity_result": facts["integrity_result"],
            "row_counts": facts["row_counts"],
            "tables": len(facts["row_counts"]),
            "page_count": facts["page_count"],
        }

    def restore(
        self,
        artifact: Path,
        manifest: Mapping[str, Any],
        to: str,
        *,
        force: bool,
        options: Mapping[str, Any],  # noqa: ARG002  (Engine protocol; SQLite needs none)
    ) -> dict[str, Any]:
        dest = Path(to)
        _refuse_overwrite(dest, force)
        make_private_dirs(dest.parent)
        with atomic.temp_file(dest.parent, dest.name) as (tmp, fh):
            _decompress_into(artifact, fh)
            facts = inspect_copy(tmp, "full")
            _check_counts(artifact, manifest, facts["row_counts"])
            _refuse_overwrite(dest, force)  # again: it may have appeared meanwhile
            _take_over_ownership(dest, tmp)
            # Stale -wal/-shm/-journal of the replaced database would be replayed into the
            # restored one (SQLite trusts a WAL whose header checksums), so they go first.
            q.remove_copy_sidecars(dest)
            os.replace(tmp, dest)
            atomic.fsync_dir(dest.parent)
        return {
            "restored_to": str(dest),
            "integrity_result": facts["integrity_result"],
            "row_counts": facts["row_counts"],
            "bytes": dest.stat().st_size,
        }


def _decompress_into(artifact: Path, fh: BinaryIO) -> None:
    """The artifact's original bytes into the (locked, 0600) temp file, synced; a checksum
    mismatch raises IntegrityError from open_decompressed before anything replaces the target."""
    with artifacts.open_decompressed(artifact) as src:
        shutil.copyfileobj(src, fh, CHUNK)
    fh.flush()
    os.fsync(fh.fileno())


def _refuse_overwrite(dest: Path, force: bool) -> None:
    if dest.exists() and not force:
        raise RefusedError(
            f"{dest} exists", hint="Pass --force to replace it (stop the service first)."
        )
    if dest.exists() and not dest.is_file():
        raise RefusedError(f"{dest} exists and is not a file")


def _take_over_ownership(old: Path, new: Path) -> None:
    """Give the restored file the replaced file's owner and mode: restore usually runs as root,
    and a 0600 root-owned database would lock the service's own user out of it."""
    if not old.exists():
        return
    st = old.stat()
    os.chmod(new, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(PermissionError):
        os.chown(new, st.st_uid, st.st_gid)


def _source_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _pass(ctx: BackupContext, size: int) -> Callable[[int], None] | None:
    """Progress of one pass over the database (the copy, then compression): the bar shows the
    database's real size and fills twice, the second time slowly (compression is ~90 %)."""
    report = ctx.progress
    if report is None:
        return None

    def update(done: int) -> None:
        report(done, size)

    return update


def _manifest(target: Any, source: Path, copy: q.CopyResult) -> dict[str, Any]:
    return {
        "source": str(source.resolve()),
        "copied_bytes": copy.source_bytes,  # main file + WAL as read from the source
        "journal_mode": copy.journal_mode,
        "method": copy.method,
        "copy_seconds": round(copy.copy_seconds, 6),
        "writer_lockout_seconds": round(copy.writer_lockout_seconds, 6),
        "integrity_check": target.integrity_check,
    }


def _check_counts(artifact: Path, manifest: Mapping[str, Any], actual: dict[str, int]) -> None:
    expected = manifest.get("row_counts")
    if expected is not None and dict(expected) != actual:
        raise IntegrityError(
            f"{artifact.name}: row counts differ from the manifest "
            f"({_count_diff(expected, actual)})"
        )


def _count_diff(expected: Mapping[str, Any], actual: Mapping[str, int]) -> str:
    keys = sorted(set(expected) | set(actual))
    diffs = [
        f"{k}: {expected.get(k)} != {actual.get(k)}"
        for k in keys
        if expected.get(k) != actual.get(k)
    ]
    return ", ".join(diffs[:10])


@contextmanager
def _decompressed(artifact: Path, tmp_dir: Any) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="safesnap-verify-", dir=tmp_dir) as d:
        db = Path(d) / "copy.sqlite"
        try:
            artifacts.decompress_to(artifact, db)
        except OSError as exc:
            raise SourceError(f"cannot decompress {artifact}: {exc}") from None
        yield db


ENGINE = SqliteEngine()
