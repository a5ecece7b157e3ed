"""Scopes of a files target, on real trees and real SQLite files: `exclude` globs, databases
another target backs up (with their -wal/-shm/-journal files), MySQL data directories, live
databases no target covers (skipped, or archived with live_databases = "copy"), and the
destination inside the tree. What the archive holds is read back from the archive itself."""

from __future__ import annotations

import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from safesnap.artifacts.store import open_decompressed, read_manifest
from safesnap.config.plan import FilesTarget, MysqlTarget, SqliteTarget
from safesnap.engines import BackupContext, get_engine


def archived(artifact: Path) -> set[str]:
    with open_decompressed(artifact) as src, tarfile.open(fileobj=src, mode="r|") as tar:
        return {member.name for member in tar}


def names_under(root: Path, names: set[str]) -> set[str]:
    prefix = str(root.resolve()).lstrip("/") + "/"
    return {n.removeprefix(prefix) for n in names if n.startswith(prefix)}


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """storage/ with a WAL database held open (so -wal and -shm exist), a stray rollback-journal
    database with a -journal file, a MySQL data directory, logs and config."""
    root = tmp_path / "storage"
    (root / "tracker/lib/database").mkdir(parents=True)
    (root / "tracker/log").mkdir(parents=True)
    (root / "mysql/mysql").mkdir(parents=True)
    (root / "stats").mkdir()
    (root / "tracker/etc.toml").write_text("[core]\n")
    (root / "tracker/log/tracker.log").write_text("log line\n")
    (root / "tracker/log/old.log.1").write_text("old\n")
    (root / "mysql/ibdata1").write_bytes(b"\0" * 1024)
    (root / "mysql/mysql/user.frm").write_bytes(b"frm")
    (root / "notes.db").write_text("not a database, whatever its name says\n")
    db = root / "tracker/lib/database/sqlite3.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # keep the -wal non-empty while open
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(200)])
    conn.commit()
    stray = root / "stats/counter"  # a database without a database-like name
    other = sqlite3.connect(stray)
    other.execute("CREATE TABLE c (n)")
    other.commit()
    other.close()
    (root / "stats/counter-journal").write_bytes(b"hot journal")
    assert (root / "tracker/lib/database/sqlite3.db-wal").exists()
    yield root
    conn.close()


def backup(target: FilesTarget, dest: Path, *others: object) -> tuple[set[str], dict[str, object]]:
    ctx = BackupContext(dest=dest / target.name, others=tuple(others), destination=dest)
    outcome = get_engine("files").backup(target, ctx)
    root = Path(target.paths[0])
    return names_under(root, archived(outcome.artifact.path)), outcome.details | {
        "manifest": read_manifest(outcome.artifact.path)
    }


def test_layered_scope_leaves_out_covered_and_live_databases(tmp_path: Path, tree: Path) -> None:
    db = SqliteTarget(name="tracker-db", path=tree / "tracker/lib/database/sqlite3.db")
    mysql = MysqlTarget(name="tracker-mysql", databases=["torrust"])
    target = FilesTarget(name="storage", paths=[tree], exclude=["*.log", "tracker/log/*.1"])
    names, details = backup(target, tmp_path / "dest", db, mysql)
    assert names == {"tracker/etc.toml", "notes.db"}
    assert details["skipped_covered"] == 4  # the database, its -wal and -shm, the MySQL datadir
    assert details["skipped_live_database"] == 2  # stats/counter and its -journal
    assert details["excluded"] == 2
    assert "sqlite3.db" in str(details["covered_paths"])
    reasons = {i["path"]: i["reason"] for i in details["manifest"]["skipped"]}  # type: ignore[index]
    assert reasons[str(tree / "stats/counter")].startswith("live database: SQLite file")
    assert reasons[str(tree / "mysql")].startswith("covered: MySQL data directory")


def test_without_covering_targets_every_live_database_is_skipped(
    tmp_path: Path, tree: Path
) -> None:
    names, details = backup(FilesTarget(name="storage", paths=[tree]), tmp_path / "dest")
    assert not any("database/" in n or n.startswith(("mysql", "stats/")) for n in names)
    assert details["skipped_live_database"] == 6  # db, -wal, -shm, counter, -journal, mysql/
    assert "tracker/log/tracker.log" in names


def test_copy_archives_uncovered_live_databases(tmp_path: Path, tree: Path) -> None:
    db = SqliteTarget(name="tracker-db", path=tree / "tracker/lib/database/sqlite3.db")
    target = FilesTarget(name="storage", paths=[tree], live_databases="copy")
    names, details = backup(target, tmp_path / "dest", db)
    assert {"stats/counter", "stats/counter-journal", "mysql/ibdata1"} <= names
    assert "tracker/lib/database/sqlite3.db" not in names  # covered still wins over copy
    assert details["live_databases_copied"] == 2  # the SQLite file and the MySQL datadir


def test_destination_inside_the_tree_is_not_archived_into_itself(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    (root / "app").mkdir(parents=True)
    (root / "app/config.yml").write_text("a: 1\n")
    target = FilesTarget(name="srv", paths=[root])
    first, _ = backup(target, root / "backups")
    second, details = backup(target, root / "backups")
    assert first == second == {"app/config.yml"}
    assert details["skipped_covered"] == 1


def test_exclude_patterns_must_be_relative() -> None:
    with pytest.raises(ValueError, match="relative"):
        FilesTarget(name="x", paths=[Path("/srv")], exclude=["/srv/cache"])
