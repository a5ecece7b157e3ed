"""Consistent online copies of a live SQLite database, and holding it still for a volume snapshot.

The copy is the "raw route" (docs/decisions/0002-sqlite-copy-method.md): open one read
transaction on the source and copy its bytes while it is held. WAL-mode backups normally
stream instead (stream.py, ADR 0008); this copy serves rollback-journal mode and is the
fallback when a WAL cannot be pinned exactly.

* WAL mode: a reader pins its snapshot. Checkpointers cannot write frames newer than the reader's
  read-mark into the main file, and the WAL cannot be restarted (overwritten from the start) while
  a reader holds a read-mark above 0. So "main file bytes + every WAL frame present" contains the
  snapshot; frames appended during the copy are later commits, and a frame torn by a concurrent
  append fails the WAL's cumulative checksum, where SQLite's recovery stops. Opening the copy
  replays the WAL up to its last complete commit: a consistent state at or after the pinned one.
  Writers are never blocked (a reader does not block WAL writers).
* Rollback-journal mode: a SHARED lock stops every writer from touching the main file (they need
  EXCLUSIVE to write it), so the raw bytes are one committed state. Writers wait (or get
  SQLITE_BUSY) for the whole copy; the hold time is measured and reported as writer lockout.

Why not the alternatives: `sqlite3 .backup` restarts on every write and never finished under load;
the backup API in one step and `VACUUM INTO` work but go page by page through the pager at
2.5-3x the time of `cp` (DESIGN.md, and bench/sqlite_bench.py here). The integrity check of the
copy decides whether it counts.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from safesnap.artifacts.atomic import SIDECARS
from safesnap.artifacts.destination import (
    SPACE_ERRNOS,
    destination_error,
    destination_failed,
    write_all,
)
from safesnap.engines.sqlite.fds import SourceFiles
from safesnap.errors import (
    IntegrityError,
    QuiesceError,
    SourceBusyError,
    SourceError,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
CHUNK = 8 << 20  # 8 MiB per copy_file_range call: few syscalls, frequent progress updates
Progress = Callable[[int], None]


@dataclass(frozen=True)
class CopyResult:
    journal_mode: str
    method: str
    source_bytes: int  # bytes of the main file + WAL copied
    copy_seconds: float
    writer_lockout_seconds: float  # time writers could not commit because of us
    consistent_at: datetime  # when the read transaction pinned the copy's point (UTC)


def check_source(path: Path) -> None:
    """Refuse early, without creating anything, when `path` is not an SQLite database file."""
    if not path.exists():
        raise SourceError(
            f"database not found: {path}", hint="Check the path; safesnap never creates it."
        )
    if not path.is_file():
        raise SourceError(f"not a regular file: {path}")
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    if header != SQLITE_MAGIC:
        what = "empty file" if not header else "no SQLite header"
        raise SourceError(f"not an SQLite database ({what}): {path}")


def connect(path: Path, busy_timeout: float, *, readonly: bool = False) -> sqlite3.Connection:
    """Open an existing database; `mode=rw`/`ro` URIs never create a missing file.

    `mode=rw` silently falls back to read-only when the OS denies writing, which is enough for a
    copy (a reader needs no write access except to a WAL database's -shm, which SQLite reports).
    """
    mode = "ro" if readonly else "rw"
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise SourceError(f"cannot open {path}: {exc}") from None
    return conn


def translate(exc: sqlite3.Error, path: Path, busy_timeout: float) -> Exception:
    """Map sqlite3 errors on the source to our error classes (busy vs unusable)."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return SourceBusyError(
            f"{path} stayed locked for more than the busy timeout ({busy_timeout:g} s): {text}",
            hint="Another process holds a lock; retry later or raise --busy-timeout.",
        )
    return SourceError(f"{path}: {text}", hint="The source is not a usable SQLite database.")


@contextmanager
def read_transaction(conn: sqlite3.Connection, path: Path, busy_timeout: float) -> Iterator[str]:
    """Hold a read transaction (a SHARED lock / WAL read-mark); yield the journal mode."""
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    except sqlite3.Error as exc:
        rollback_quietly(conn)
        raise translate(exc, path, busy_timeout) from None
    try:
        yield mode
    finally:
        rollback_quietly(conn)


def rollback_quietly(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # a closed or broken connection has no transaction left to hold


def copy_bytes(
    files: SourceFiles, suffix: str, dst_fd: int, progress: Progress | None, done: int = 0
) -> int:
    """Append the source's file `suffix` ("" or "-wal") to `dst_fd` (no fsync: the copy is a
    temp file); return the bytes copied. The descriptor stays open in `files` (fds.py: closing
    it here would drop the read transaction's lock).

    Only the bytes present when the copy starts are read: anything appended later (WAL frames of
    later commits) is not needed, and a bound keeps a busy writer from making the copy endless.
    """
    src = Path(f"{files.source}{suffix}")
    try:
        src_fd = files.fd(suffix)
    except FileNotFoundError:
        return 0  # a WAL file may legitimately not exist
    except OSError as exc:
        raise SourceError(f"cannot read {src}: {exc.strerror}") from None
    os.lseek(src_fd, 0, os.SEEK_SET)  # the descriptor is shared through `files`
    limit = os.fstat(src_fd).st_size
    copied = 0
    while copied < limit:  # bounded: every pass copies > 0 bytes or ends the loop
        n = _copy_chunk(src_fd, dst_fd, min(CHUNK, limit - copied), src)
        if n == 0:
            break  # truncated meanwhile (a checkpoint shrinking the file): keep what we have
        copied += n
        if progress is not None:
            progress(done + copied)
    return copied


def _copy_chunk(src_fd: int, dst_fd: int, count: int, src: Path) -> int:
    """copy_file_range keeps the bytes in the kernel (measured: raw copy of 1 GiB 1.6 s with
    read/write, cp speed with this); fall back to read/write where the filesystem refuses.

    A destination failure propagates as the OSError itself (the caller knows the path and maps
    it to DestinationError); a source failure is a SourceError.
    """
    try:
        return os.copy_file_range(src_fd, dst_fd, count)
    except OSError as exc:
        if exc.errno in _DEST_ERRNOS:
            raise
        if exc.errno not in _NO_COPY_RANGE:
            raise SourceError(f"cannot read {src}: {exc.strerror}") from None
    try:
        data = os.read(src_fd, count)
    except OSError as exc:
        raise SourceError(f"cannot read {src}: {exc.strerror}") from None
    write_all(dst_fd, data)
    return len(data)


_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


# copy_file_range fails for either side; these can only be the destination's fault.
_DEST_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def raw_copy(
    source: Path,
    dest_tmp: Path,
    *,
    busy_timeout: float,
    progress: Progress | None = None,
    dest_fd: int | None = None,
) -> CopyResult:
    """Copy `source` consistently into `dest_tmp` (and `dest_tmp`-wal in WAL mode).

    With `dest_fd`, the bytes go into that open, empty file at `dest_tmp` (the engine's locked
    temp file, atomic.temp_file); without it, `dest_tmp` must not exist and is created 0600.
    The caller replays the WAL (`finish_copy`), checks the result and removes the temp files.
    """
    check_source(source)
    with SourceFiles(source) as files, closing(connect(source, busy_timeout)) as conn:
        start = time.perf_counter()
        with read_transaction(conn, source, busy_timeout) as mode:
            locked_at = time.perf_counter()
            pinned = datetime.now(UTC)
            total = _copy_files(files, dest_tmp, dest_fd, wal=mode == "wal", progress=progress)
            held = time.perf_counter() - locked_at
        seconds = time.perf_counter() - start
    # In WAL mode a reader blocks no writer; in rollback mode writers wait for the whole hold.
    lockout = 0.0 if mode == "wal" else held
    return CopyResult(mode, "raw", total, seconds, lockout, pinned)


def _copy_files(
    files: SourceFiles, dest_tmp: Path, dest_fd: int | None, *, wal: bool, progress: Progress | None
) -> int:
    # O_EXCL + 0600 like every temp file of ours; the -wal lives and dies with its main file
    # (catalog.sweep_temporaries treats it as a sidecar of the flocked main temp file).
    if dest_fd is not None:
        total = _copy_to_fd(files, "", dest_fd, dest_tmp, progress, 0)
    else:
        total = _copy_into(files, "", dest_tmp, progress, 0)
    if wal:
        total += _copy_into(files, "-wal", Path(f"{dest_tmp}-wal"), progress, total)
    return total


def _copy_into(
    files: SourceFiles, suffix: str, dst: Path, progress: Progress | None, done: int
) -> int:
    """Copy `src` into a new 0600 `dst`; any OSError here is the destination's (exit 12)."""
    try:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _copy_error(exc, dst) from None
    try:
        return _copy_to_fd(files, suffix, fd, dst, progress, done)
    finally:
        os.close(fd)


def _copy_to_fd(
    files: SourceFiles, suffix: str, fd: int, dst: Path, progress: Progress | None, done: int
) -> int:
    try:
        return copy_bytes(files, suffix, fd, progress, done)
    except OSError as exc:
        raise _copy_error(exc, dst) from None


def _copy_error(exc: OSError, dst: Path) -> Exception:
    error = destination_error(exc, dst, doing="write the temporary copy")
    if exc.errno in SPACE_ERRNOS:
        error.hint = _SPACE_HINT
    return error


_SPACE_HINT = "The destination needs free space for one uncompressed copy plus the artifact."


def finish_copy(copy: Path) -> None:
    """Replay a copied WAL into the copy and leave one self-contained file.

    synchronous=OFF: the copy is a temp file that is streamed into the artifact (which is synced)
    and then deleted, so syncing it would only cost time and disturb the live writer's fsyncs
    (DESIGN.md: unsynced copy 4.8 s and writer p99 6 ms vs 6.2 s / 16 ms).
    """
    try:
        with closing(sqlite3.connect(copy, isolation_level=None)) as conn:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy:
                    raise IntegrityError(f"could not checkpoint the copy {copy}")
    except sqlite3.Error as exc:
        if _destination_fault(exc):
            error = destination_failed(copy, str(exc), doing="write the temporary copy")
            error.hint = _SPACE_HINT if "full" in str(exc) else error.hint
            raise error from None
        raise IntegrityError(f"the copy cannot be opened as a database: {exc}") from None
    # Closing the last connection checkpoints and deletes -wal/-shm; make sure of it.
    remove_copy_sidecars(copy)


# Primary result codes (sqlite.org/rescode.html) that mean the copy's file system failed, not
# that the copied bytes are bad: SQLITE_FULL is ENOSPC, SQLITE_IOERR_WRITE any other write
# error (EFBIG, EIO), SQLITE_READONLY/CANTOPEN a destination that refuses writes.
_SQLITE_DEST_CODES = {8, 10, 13, 14}  # READONLY, IOERR, FULL, CANTOPEN


def _destination_fault(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _SQLITE_DEST_CODES


def remove_copy_sidecars(copy: Path) -> None:
    for suffix in SIDECARS:
        Path(f"{copy}{suffix}").unlink(missing_ok=True)


# --- holding the database still for a volume snapshot ---------------------------------------


@contextmanager
def hold_for_snapshot(
    path: Path, *, busy_timeout: float, max_hold_seconds: float = 30.0
) -> Iterator[dict[str, Any]]:
    """Block writers (BEGIN IMMEDIATE) and flush the files while a volume snapshot is requested.

    A PASSIVE checkpoint first keeps the WAL short without waiting for anyone. Then, with the
    write lock held, the main file and WAL are fsynced: with WAL and synchronous=NORMAL SQLite
    does not sync the WAL at commit (sqlite.org/pragma.html#pragma_synchronous), so committed
    data may sit only in the page cache, which a block-level snapshot does not see.
    Exit always releases. A watchdog releases after `max_hold_seconds` even if the snapshot call
    hangs; the exit then raises QuiesceError, because the snapshot may postdate the release.

    The database file's descriptor for that fsync is opened before the connection and closed
    after it: POSIX locks belong to the process, and closing any descriptor of the file drops
    every lock the process holds on it, the connection's SHARED lock included. Without it, a
    connection closing in another process believed it was the last one and deleted the WAL
    under the hold (sqlite.org/howtocorrupt.html 2.2; test_sqlite_posix_locks.py).
    """
    check_source(path)
    files = SourceFiles(path)
    try:
        db_fd = files.fd()  # before the connection, closed after it (fds.py)
        conn = connect(path, busy_timeout)
    except BaseException:
        files.close()
        raise
    facts: dict[str, Any] = {"released_by": None}
    guard = threading.Lock()

    def release(by: str) -> None:
        with guard:
            if facts["released_by"] is None:
                facts["released_by"] = by
                facts["lock_held_seconds"] = round(time.perf_counter() - locked_at, 6)
                rollback_quietly(conn)
                conn.close()
                files.close()  # only now: the connection holds no lock any more

    started = time.perf_counter()
    try:
        facts.update(_lock_and_flush(conn, path, busy_timeout, db_fd))
    except BaseException:
        conn.close()
        files.close()
        raise
    locked_at = time.perf_counter()
    facts["lock_wait_seconds"] = round(locked_at - started, 6)
    watchdog = threading.Timer(max_hold_seconds, release, args=("watchdog",))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield facts
    finally:
        watchdog.cancel()
        release("exit")
    if facts["released_by"] == "watchdog":
        raise QuiesceError(
            f"{path}: lock released by the watchdog after {max_hold_seconds:g} s, before the "
            "snapshot request returned; the snapshot may not be at the quiesced point",
            hint="Raise max_lock_hold_seconds or check why the provider call hung.",
        )


def _lock_and_flush(
    conn: sqlite3.Connection, path: Path, busy_timeout: float, db_fd: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        out["journal_mode"] = mode
        if mode == "wal":
            out["wal_checkpoint"] = list(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        rollback_quietly(conn)
        if "readonly" in str(exc):
            return _raise_quiesce(path, exc)
        raise translate(exc, path, busy_timeout) from None
    os.fsync(db_fd)
    # The WAL carries no POSIX lock (SQLite locks the database file and -shm), so a descriptor
    # of it may be opened and closed here.
    _fsync_if_exists(Path(f"{path}-wal"))
    return out


def _raise_quiesce(path: Path, exc: sqlite3.Error) -> dict[str, Any]:
    raise QuiesceError(
        f"{path}: cannot take the write lock: {exc}",
        hint="Quiescing needs write access to the database file and its directory.",
    )


def _fsync_if_exists(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
