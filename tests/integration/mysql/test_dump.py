"""Logical dump, restore and verify against the real MariaDB (scratch databases)."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mariadb import MysqlWriter, admin, run_sql

from safesnap.artifacts.store import read_manifest, write_manifest
from safesnap.config.plan import MysqlDumpOptions, MysqlTarget
from safesnap.engines import BackupContext, get_engine
from safesnap.errors import ArtifactError, IntegrityError, RefusedError, SourceError

pytestmark = pytest.mark.mariadb
ENGINE = get_engine("mysql")

TRICKY = [
    (1, "plain", b"\x00\x01\x02'\\", None),
    (2, "a),(b 'quoted' \\ back\\slash", b"", "x"),
    (3, "new\nline\ttab\r\n;\n", None, "é ü 日本 🎉"),
    (4, "USE `other`;\nINSERT INTO `t` VALUES (9);", b"\xff" * 300, ""),
]


def populate(db: str) -> None:
    run_sql(
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, s TEXT, b BLOB, u VARCHAR(40)) ENGINE=InnoDB",
        "CREATE TABLE empty_one (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE big (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB",
        "INSERT INTO big (v) SELECT REPEAT('y', 90) FROM seq_1_to_3000",
        "CREATE VIEW tv AS SELECT id, s FROM t",
        "CREATE PROCEDURE p() SELECT COUNT(*) FROM t",
        "CREATE TRIGGER trg BEFORE INSERT ON big FOR EACH ROW SET NEW.v = NEW.v",
    )
    conn = admin(db)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s)", TRICKY)
    conn.close()


def checksums(db: str) -> dict[str, int]:
    tables = [r[0] for r in run_sql(db, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")]
    rows = run_sql(db, "CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables))
    return {str(name).split(".", 1)[1]: int(value) for name, value in rows}


def backup(db: str | list[str], dest: Path, **kw: Any) -> Any:
    dbs = [db] if isinstance(db, str) else db
    return ENGINE.backup(
        MysqlTarget(name="dumptest", databases=dbs, **kw), BackupContext(dest=dest)
    )


@pytest.fixture
def other_db(mariadb_server: None) -> Iterator[str]:
    name = f"sstest_r_{uuid.uuid4().hex[:10]}"
    yield name
    run_sql(None, f"DROP DATABASE IF EXISTS `{name}`")


def test_roundtrip_into_another_name_is_identical(
    scratch_db: str, other_db: str, tmp_path: Path
) -> None:
    populate(scratch_db)
    outcome = backup(scratch_db, tmp_path)
    manifest = read_manifest(outcome.artifact.path)
    assert manifest["mysql"]["row_counts"] == {scratch_db: {"big": 3000, "empty_one": 0, "t": 4}}
    assert outcome.details["warnings"] == []
    result = ENGINE.restore(outcome.artifact.path, manifest, other_db, force=False, options={})
    assert result["row_counts"] == {"big": 3000, "empty_one": 0, "t": 4}
    assert checksums(other_db) == checksums(scratch_db)
    assert run_sql(other_db, "SELECT s FROM tv ORDER BY id") == [(r[1],) for r in TRICKY]
    assert run_sql(other_db, "SHOW PROCEDURE STATUS WHERE Db = DATABASE()")  # routine came too
    assert run_sql(other_db, "SHOW TRIGGERS")
    assert checksums(scratch_db)  # the source is untouched by the restore


def test_dump_under_a_writer_restores_exactly_what_it_counted(
    scratch_db: str, other_db: str, tmp_path: Path, mysql_writer: Callable[..., MysqlWriter]
) -> None:
    populate(scratch_db)
    writer = mysql_writer(scratch_db, interval=0.001)
    outcome = backup(scratch_db, tmp_path)
    stats = writer.stop()
    manifest = read_manifest(outcome.artifact.path)
    counted = manifest["mysql"]["row_counts"][scratch_db]["writes"]
    assert 0 < counted < len(stats.commits)  # a point in the middle of the writes
    checked = ENGINE.verify(outcome.artifact.path, manifest, {})
    assert checked["row_counts"][scratch_db]["writes"] == counted
    ENGINE.restore(outcome.artifact.path, manifest, other_db, force=False, options={})
    ids = run_sql(other_db, "SELECT MIN(id), MAX(id), COUNT(*) FROM writes")[0]
    assert ids == (1, counted, counted)  # a consistent prefix of the writer's commits


def test_non_transactional_tables_are_reported(scratch_db: str, tmp_path: Path) -> None:
    run_sql(
        scratch_db,
        "CREATE TABLE hits (n INT) ENGINE=MyISAM",
        "CREATE TABLE ok (n INT) ENGINE=InnoDB",
        "INSERT INTO hits VALUES (1), (2)",
    )
    outcome = backup(scratch_db, tmp_path)
    manifest = read_manifest(outcome.artifact.path)
    assert len(outcome.details["warnings"]) == 1
    assert f"{scratch_db}.hits (MyISAM)" in outcome.details["warnings"][0]
    assert "ok" not in outcome.details["warnings"][0].split(":", 1)[1]
    assert manifest["warnings"] == outcome.details["warnings"]
    assert manifest["mysql"]["tables"][scratch_db] == {"hits": "MyISAM", "ok": "InnoDB"}


def test_restore_refuses_a_non_empty_database_without_force(
    scratch_db: str, other_db: str, tmp_path: Path
) -> None:
    populate(scratch_db)
    outcome = backup(scratch_db, tmp_path)
    manifest = read_manifest(outcome.artifact.path)
    run_sql(None, f"CREATE DATABASE `{other_db}`")
    run_sql(other_db, "CREATE TABLE precious (n INT)", "INSERT INTO precious VALUES (42)")
    with pytest.raises(RefusedError, match="not empty"):
        ENGINE.restore(outcome.artifact.path, manifest, other_db, force=False, options={})
    assert run_sql(other_db, "SELECT n FROM precious") == [(42,)]  # untouched
    ENGINE.restore(outcome.artifact.path, manifest, other_db, force=True, options={})
    assert checksums(other_db) == checksums(scratch_db)  # exactly the backup, precious gone


def test_unknown_database_fails_cleanly(scratch_db: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        backup([scratch_db, "sstest_does_not_exist"], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('echo "INSERT INTO x VALUES (1);"; echo "boom: disk gone" >&2; exit 2', "boom"),
        ('echo "INSERT INTO x VALUES (1);"; exit 0', "before the end of the dump"),
    ],
)
def test_failing_dump_client_leaves_nothing(
    scratch_db: str, tmp_path: Path, script: str, message: str
) -> None:
    populate(scratch_db)
    fake = tmp_path / "fake-dump"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o700)
    dest = tmp_path / "out"
    with pytest.raises(SourceError, match=message):
        backup(scratch_db, dest, dump=MysqlDumpOptions(client=str(fake)))
    assert sorted(p.name for p in dest.iterdir()) == []  # no artifact, manifest or temp file


@pytest.fixture
def user_with_password(scratch_db: str) -> Iterator[tuple[str, str]]:
    user = f"sst_{uuid.uuid4().hex[:8]}"
    password = "p\"w\\#x'y z;--secret-" + uuid.uuid4().hex[:6]
    run_sql(None, f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", args=(password,))
    run_sql(None, f"GRANT ALL ON `{scratch_db}`.* TO '{user}'@'127.0.0.1'")
    # Dumping routines someone else defined needs this on MariaDB < 11.3 (found here; see docs).
    run_sql(None, f"GRANT SELECT ON mysql.proc TO '{user}'@'127.0.0.1'")
    yield user, password
    run_sql(None, f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def spy(path: Path, log: Path, run: str) -> Path:
    """A wrapper that records its argv (and the option file's mode) and runs `run`."""
    path.write_text(
        "#!/bin/sh\n"
        f'echo "ARGV: $*" >> {log}\n'
        'for a in "$@"; do case "$a" in --defaults-extra-file=/tmp*|--defaults-extra-file=/var*)\n'
        f'  stat -c "MODE: %a" "${{a#--defaults-extra-file=}}" >> {log};; esac; done\n'
        f'exec {run} "$@"\n'
    )
    path.chmod(0o700)
    return path


@pytest.mark.parametrize("via", ["option-file", "command-prefix"])
def test_password_never_in_argv_or_errors(
    scratch_db: str,
    user_with_password: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    via: str,
) -> None:
    user, password = user_with_password
    populate(scratch_db)
    monkeypatch.setenv("SST_DB_PASSWORD", password)
    log = tmp_path / "argv.log"
    if via == "option-file":
        dump = MysqlDumpOptions(client=str(spy(tmp_path / "spy", log, "mariadb-dump")))
    else:  # the prefix cannot see local files: the option file goes through stdin
        dump = MysqlDumpOptions(command_prefix=[str(spy(tmp_path / "spy", log, ""))])
    kw = {"user": user, "password_env": "SST_DB_PASSWORD", "dump": dump}
    outcome = backup(scratch_db, tmp_path / "out", **kw)
    assert outcome.details["row_counts"][scratch_db]["big"] == 3000  # it authenticated
    recorded = log.read_text()
    dump_line = next(line for line in recorded.splitlines() if "--single-transaction" in line)
    args = dump_line.split()[1:]  # after "ARGV:"
    if via == "command-prefix":
        assert args[:2] == ["mariadb-dump", "--defaults-extra-file=/dev/stdin"]
    else:
        assert args[0].startswith("--defaults-extra-file=/")  # must be the first argument
    assert password not in recorded and "secret-" not in recorded
    if via == "option-file":
        assert "MODE: 600" in recorded
    assert not list(Path("/tmp").glob("safesnap-my-*.cnf"))  # removed after the dump
    monkeypatch.setenv("SST_DB_PASSWORD", password + "-wrong")
    with pytest.raises(SourceError) as err:
        backup(scratch_db, tmp_path / "out2", **kw)
    assert password not in str(err.value.to_dict())


def test_verify_catches_a_mismatch_and_drops_its_scratch(scratch_db: str, tmp_path: Path) -> None:
    populate(scratch_db)
    outcome = backup(scratch_db, tmp_path)
    manifest = read_manifest(outcome.artifact.path)
    before = {r[0] for r in run_sql(None, "SHOW DATABASES LIKE 'safesnap\\_verify\\_%'")}
    manifest["mysql"]["row_counts"][scratch_db]["big"] = 2999
    write_manifest(outcome.artifact.path, manifest)
    with pytest.raises(IntegrityError, match="big: 3000 rows, dump had 2999"):
        ENGINE.verify(outcome.artifact.path, read_manifest(outcome.artifact.path), {})
    after = {r[0] for r in run_sql(None, "SHOW DATABASES LIKE 'safesnap\\_verify\\_%'")}
    assert after == before


def test_several_databases_one_snapshot_one_artifact(
    scratch_db: str, other_db: str, tmp_path: Path
) -> None:
    second = f"{scratch_db}_b"
    run_sql(None, f"CREATE DATABASE `{second}`")
    try:
        populate(scratch_db)
        run_sql(
            second, "CREATE TABLE only_b (n INT) ENGINE=InnoDB", "INSERT INTO only_b VALUES (7)"
        )
        outcome = backup([scratch_db, second], tmp_path)
        manifest = read_manifest(outcome.artifact.path)
        assert manifest["mysql"]["row_counts"][second] == {"only_b": 1}
        checked = ENGINE.verify(outcome.artifact.path, manifest, {})
        assert checked["databases"] == [scratch_db, second]
        with pytest.raises(RefusedError, match="holds 2 databases"):
            ENGINE.restore(outcome.artifact.path, manifest, other_db, force=False, options={})
        with pytest.raises(ArtifactError, match="no database"):
            ENGINE.restore(
                outcome.artifact.path, manifest, other_db, force=False, options={"database": "x"}
            )
        ENGINE.restore(
            outcome.artifact.path, manifest, other_db, force=False, options={"database": second}
        )
        assert run_sql(other_db, "SHOW TABLES") == [("only_b",)]  # only that section loaded
    finally:
        run_sql(None, f"DROP DATABASE IF EXISTS `{second}`")


def test_artifact_is_private(scratch_db: str, tmp_path: Path) -> None:
    populate(scratch_db)
    outcome = backup(scratch_db, tmp_path)
    assert stat.S_IMODE(outcome.artifact.path.stat().st_mode) == 0o600
