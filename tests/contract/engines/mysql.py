"""The MySQL engine as a contract backend, on the real MariaDB at 127.0.0.1:3306.

The source is a scratch database (tests/fixtures/mariadb.py: unique name, dropped afterwards,
the server taken in turn with other test runs); destinations are databases named with a prefix
of this test's own, all dropped at teardown."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from safesnap.config.plan import MysqlTarget
from safesnap.engines import get_engine
from tests.contract.engines.harness import EngineHarness, KnownBugs
from tests.fixtures.mariadb import admin, run_sql

MARKS = [pytest.mark.mariadb]

# The promises this suite found broken (restore --force dropping the database before checking
# the artifact; SourceError for a damaged uncompressed dump) are kept since: no known bugs.
KNOWN_BUGS: KnownBugs = {}

ROWS = [
    (1, "plain", b"\x00\x01\xff'\\", 1.5),
    (2, "quote ' and \" and ;\nUSE `other`;", None, None),
    (3, "é ü 日本 🎉", b"", -2.25),
]


def _databases(prefix: str) -> set[str]:
    return {str(r[0]) for r in run_sql(None, "SHOW DATABASES") if str(r[0]).startswith(prefix)}


def content(database: str) -> object:
    """Tables and views by kind, and every base table's rows in primary-key order."""
    if database not in _databases(database):
        return None
    tables = [(str(n), str(k)) for n, k in run_sql(database, "SHOW FULL TABLES")]
    rows = {
        name: run_sql(database, f"SELECT * FROM `{name}` ORDER BY 1")
        for name, kind in tables
        if kind == "BASE TABLE"
    }
    return {"tables": sorted(tables), "rows": rows}


def _populate(database: str) -> None:
    run_sql(
        database,
        "CREATE TABLE torrents (id INT PRIMARY KEY, name TEXT, info BLOB, ratio DOUBLE)"
        " ENGINE=InnoDB",
        "CREATE TABLE peers (id INT AUTO_INCREMENT PRIMARY KEY, torrent INT, addr VARCHAR(64))"
        " ENGINE=InnoDB",
        "INSERT INTO peers (torrent, addr) SELECT seq % 3 + 1, CONCAT('10.0.0.', seq, ':6881')"
        " FROM seq_1_to_200",
        "CREATE VIEW busy AS SELECT torrent, COUNT(*) AS n FROM peers GROUP BY torrent",
    )
    conn = admin(database)
    try:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO torrents VALUES (%s, %s, %s, %s)", ROWS)
    finally:
        conn.close()


def make_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHarness]:
    source = str(request.getfixturevalue("scratch_db"))
    _populate(source)
    prefix = f"sstc_{uuid.uuid4().hex[:8]}_"

    def occupied() -> str:
        name = f"{prefix}occupied_{uuid.uuid4().hex[:6]}"
        run_sql(None, f"CREATE DATABASE `{name}`")
        run_sql(name, "CREATE TABLE unrelated (x TEXT)", "INSERT INTO unrelated VALUES ('keep me')")
        return name

    try:
        yield EngineHarness(
            engine=get_engine("mysql"),
            target=MysqlTarget(name="tracker", databases=[source]),
            missing=MysqlTarget(name="tracker", databases=[f"{prefix}missing"]),
            artifacts=tmp_path / "artifacts",
            source_content=lambda: content(source),
            content_at=content,
            new_destination=lambda: f"{prefix}new_{uuid.uuid4().hex[:6]}",
            occupied_destination=occupied,
            residue=lambda: _databases(prefix),
        )
    finally:
        for name in _databases(prefix):
            run_sql(None, f"DROP DATABASE IF EXISTS `{name}`")
