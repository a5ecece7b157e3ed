"""What a files target leaves out of its trees: `exclude` globs, databases other targets back up,
and live databases nobody backs up.

A tar of a live database is not a backup: the bytes of a SQLite file (or a MySQL data
directory) read while the server writes are a torn mix of pages. So inside a tree:

* a SQLite file (found by its 16-byte header "SQLite format 3\\0", not by its name) or a MySQL
  data directory that another target of the plan backs up is left out, with its `-wal`, `-shm`
  and `-journal` siblings, and the report says which target covers it ("covered");
* one that no target backs up is left out with a warning ("live database"), unless the target
  says `live_databases = "copy"`;
* the plan's own backup destination is never archived into itself ("covered").

Paths named directly in `paths` are the operator's explicit choice and are not filtered.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SQLITE_HEADER = b"SQLite format 3\x00"
SIDECARS = ("-wal", "-shm", "-journal")
# Files only a MySQL/MariaDB data directory holds (InnoDB system tablespace, MySQL 8's data
# dictionary, MariaDB's Aria control file); checked by name inside each directory of a tree.
MYSQL_MARKERS = ("ibdata1", "mysql.ibd", "aria_log_control")


@dataclass(frozen=True)
class Scope:
    exclude: tuple[str, ...] = ()
    # absolute path -> what covers it ("target tracker", "the backup destination")
    covered: Mapping[str, str] = field(default_factory=dict)
    mysql_targets: tuple[str, ...] = ()
    copy_live: bool = False


def excluded(rel: str, patterns: Iterable[str]) -> bool:
    """`rel` is relative to a listed root. fnmatch rules (`*` also crosses '/'), and a pattern
    without '/' matches the last name too, so `*.log` and `cache` work at any depth."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        if fnmatch.fnmatchcase(rel, pattern):
            return True
        if "/" not in pattern and fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def is_sqlite(path: Path) -> bool:
    """The file starts with SQLite's header. O_NOFOLLOW|O_NONBLOCK: never follows a link that
    replaced the file since the walk, never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # unreadable: the tar step skips it with its own reason
    try:
        return os.read(fd, len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False
    finally:
        os.close(fd)


def is_mysql_datadir(names: Iterable[str]) -> bool:
    return any(n in MYSQL_MARKERS for n in names)


def sidecar_of(name: str) -> str | None:
    """'x.db-wal' -> 'x.db'; None for any other name."""
    for suffix in SIDECARS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def covered_paths(targets: Iterable[Any], destination: Path | None) -> dict[str, str]:
    """Every path a files tree must not archive because something else covers it: each SQLite
    target's file and sidecars (as written and resolved), and the backup destination."""
    out: dict[str, str] = {}
    for target in targets:
        if getattr(target, "engine", None) == "sqlite":
            for variant in _variants(Path(target.path)):
                for suffix in ("", *SIDECARS):
                    out[variant + suffix] = f"target {target.name}"
    if destination is not None:
        for variant in _variants(destination):
            out[variant] = "the backup destination"
    return out


def mysql_target_names(targets: Iterable[Any]) -> tuple[str, ...]:
    return tuple(t.name for t in targets if getattr(t, "engine", None) == "mysql")


def _variants(path: Path) -> set[str]:
    # Both spellings: the walk sees paths as listed (abspath), a plan may name a link.
    return {os.path.abspath(path), os.path.realpath(path)}
