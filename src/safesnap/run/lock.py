"""One run at a time per destination.

A nightly cron run and a manual pre-upgrade run must not interleave their writes and prunes.
The lock is an OS file lock (fcntl via filelock) on `<destination>/.safesnap.lock`: the kernel
drops it when the holding process dies, so a crashed run never leaves a stale lock behind.
The holder's pid and start time are written beside it only to make the error message useful.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from safesnap.artifacts.destination import destination_error, make_private_dirs, writing_to
from safesnap.errors import RunLockedError

LOCK_NAME = ".safesnap.lock"
HOLDER_NAME = ".safesnap.lock.holder"


@contextmanager
def run_lock(dest: Path, *, wait: float = 0.0, run_id: str = "") -> Iterator[Path]:
    """Hold the destination's run lock; wait up to `wait` seconds, then raise RunLockedError."""
    make_private_dirs(dest)
    lock_path = dest / LOCK_NAME
    lock = FileLock(str(lock_path), mode=0o600)
    try:
        lock.acquire(timeout=wait)
    except Timeout:  # a TimeoutError, so an OSError: caught first
        raise RunLockedError(
            f"another safesnap run holds {lock_path} ({_describe_holder(dest)})",
            hint="Wait for it to finish, or set [run] lock_wait = SECONDS to queue behind it.",
        ) from None
    except OSError as exc:  # a read-only or immutable destination: exit 12
        raise destination_error(exc, lock_path) from None
    holder = dest / HOLDER_NAME
    try:
        with writing_to(holder):
            holder.write_text(
                json.dumps({"pid": os.getpid(), "run_id": run_id, "since": time.time()})
            )
        yield lock_path
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _describe_holder(dest: Path) -> str:
    try:
        info = json.loads((dest / HOLDER_NAME).read_text())
    except (OSError, ValueError):
        return "holder unknown"
    since = time.time() - float(info.get("since", time.time()))
    return f"pid {info.get('pid')}, run {info.get('run_id') or '?'}, running for {since:.0f} s"
