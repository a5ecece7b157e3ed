"""The SQLite engine as a contract backend: a live WAL database whose newest rows are still
only in the -wal file (a connection stays open with autocheckpoint off), as on a busy tracker."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from safesnap.config.plan import SqliteTarget
from safesnap.engines import get_engine
from tests.contract.engines.harness import EngineHarness

ROWS = [
    (1, "plain", b"\x00\x01\xff", 1.5),
    (2, "quote ' and \" and ;\n", None, None),
    (3, "é ü 日本 🎉", b"", -0.0),
]


def content(conn: sqlite3.Connection) -> dict[str, object]:
    """Schema and every row of every table, in rowid order."""
    schema = conn.execute(
        "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    tables = [name for kind, name, _ in schema if kind == "table"]
    rows = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    return {"schema": schema, "rows": rows}


def content_of(path: Path) -> object:
    if not path.exists():
        return None
    # immutable=1: read the file alone, create no -wal/-shm beside it (they would be residue),
    # and see only what the restore put into that one file.
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        return content(conn)


def _populate(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE torrents (id INTEGER PRIMARY KEY, name TEXT, info BLOB, ratio REAL)")
    conn.execute("CREATE TABLE peers (torrent INTEGER REFERENCES torrents(id), addr TEXT)")
    conn.execute("CREATE INDEX peers_by_torrent ON peers (torrent)")
    conn.executemany("INSERT INTO torrents VALUES (?, ?, ?, ?)", ROWS)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # what follows stays in the -wal file
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO peers VALUES (?, ?)", [(i % 3 + 1, f"10.0.0.{i}:6881") for i in range(200)]
    )
    conn.execute("COMMIT")
    return conn


def _other_database(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE unrelated (x TEXT)")
        conn.execute("INSERT INTO unrelated VALUES ('keep me')")


def make_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHarness]:
    del request
    source = tmp_path / "source" / "tracker.db"
    live = _populate(source)
    area = tmp_path / "restore-area"
    area.mkdir()

    def occupied() -> str:
        path = area / f"occupied-{uuid.uuid4().hex[:8]}.db"
        _other_database(path)
        return str(path)

    try:
        yield EngineHarness(
            engine=get_engine("sqlite"),
            target=SqliteTarget(name="tracker", path=source),
            missing=SqliteTarget(name="tracker", path=tmp_path / "source" / "gone.db"),
            artifacts=tmp_path / "artifacts",
            source_content=lambda: content(live),
            content_at=lambda to: content_of(Path(to)),
            new_destination=lambda: str(area / f"new-{uuid.uuid4().hex[:8]}.db"),
            occupied_destination=occupied,
            residue=lambda: {str(p) for p in area.iterdir()},
        )
    finally:
        live.close()
