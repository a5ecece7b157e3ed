"""Descriptors of a live database's files, opened by safesnap itself (to stream, copy or fsync
them) beside SQLite's own connection.

POSIX advisory locks belong to the process: closing ANY descriptor of a file drops every lock
the process holds on it (fcntl(2)), SQLite's included (sqlite.org/howtocorrupt.html, 2.2). So
a descriptor of the database or its -shm is never closed while a connection to it is open:
open them through SourceFiles and use it as the OUTER context manager of the connection.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SourceFiles"]


class SourceFiles:
    """Descriptors of the database, its -wal and -shm, opened on first use and closed only
    after the SQLite connection is (use it as the outer context manager of the connection).

    Closing any descriptor of a file drops every POSIX advisory lock this process holds on
    it (fcntl(2); sqlite.org/howtocorrupt.html, 2.2): reading the -shm through a fresh
    open/close while the read transaction is held would release SQLite's read lock and let a
    checkpoint overwrite the pinned WAL frames. Measured: a 257 MiB backup under a writer then
    failed quick_check with "database disk image is malformed".
    """

    def __init__(self, source: Path) -> None:
        self.source = source
        self._fds: dict[str, int] = {}

    def fd(self, suffix: str = "") -> int:
        """The descriptor of the database (""), "-wal" or "-shm"; OSError if missing."""
        if suffix not in self._fds:
            self._fds[suffix] = os.open(f"{self.source}{suffix}", os.O_RDONLY | os.O_CLOEXEC)
        return self._fds[suffix]

    def __enter__(self) -> SourceFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every descriptor; only after the connections to the database are closed."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
