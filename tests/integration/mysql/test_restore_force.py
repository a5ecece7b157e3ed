"""`safesnap restore` onto an existing MariaDB database (`--force`), through the real CLI.

The dump is loaded into a scratch database named after the target, checked, and only then
swapped in (src/safesnap/engines/mysql/swap.py). These tests hold the promise "nothing lost or
half-written" against real faults: SIGTERM in the middle of the load, the server refusing a
statement half way through the dump, a privilege missing after the tables were swapped (the
swap is undone), a user who may not create the scratch database. Each checks the target's rows
AND its views, triggers, routines and events, and that no scratch database is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.mariadb import run_sql

pytestmark = pytest.mark.mariadb
PW_VAR = "SST_RESTORE_PW"


def like_escape(name: str) -> str:
    """`name` as a literal in a LIKE pattern and a GRANT's database pattern."""
    return name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def databases(prefix: str) -> set[str]:
    return {str(r[0]) for r in run_sql(None, f"SHOW DATABASES LIKE '{like_escape(prefix)}%'")}


def rows(db: str) -> dict[str, list[tuple[Any, ...]]]:
    names = run_sql(db, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
    return {str(n): run_sql(db, f"SELECT * FROM `{n}` ORDER BY 1") for n, _ in names}


def objects(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Views, triggers, routines, events and foreign keys, with `db` itself named as ``."""

    def read(query: str) -> list[tuple[Any, ...]]:
        found = run_sql(None, query.replace("{db}", db.replace("'", "''")))
        return sorted(tuple(str(v).replace(f"`{db}`.", "") for v in row) for row in found)

    return {
        "tables": read("SELECT table_name, table_type FROM information_schema.tables "
                       "WHERE table_schema = '{db}'"),
        "views": read("SELECT table_name, view_definition FROM information_schema.views "
                      "WHERE table_schema = '{db}'"),
        "triggers": read("SELECT trigger_name, event_manipulation, event_object_table, "
                         "action_timing, action_statement, action_order "
                         "FROM information_schema.triggers WHERE trigger_schema = '{db}'"),
        "routines": read("SELECT routine_type, routine_name, routine_definition "
                         "FROM information_schema.routines WHERE routine_schema = '{db}'"),
        "events": read("SELECT event_name, event_definition, status, interval_value "
                       "FROM information_schema.events WHERE event_schema = '{db}'"),
        "foreign_keys": read("SELECT constraint_name, table_name, referenced_table_name, "
                             "unique_constraint_schema = '{db}' "
                             "FROM information_schema.referential_constraints "
                             "WHERE constraint_schema = '{db}'"),
    }  # fmt: skip


def state(db: str) -> tuple[object, object]:
    return rows(db), objects(db)


def populate(db: str, **login: Any) -> None:
    """The backed-up database: every kind of object a dump carries (definer: the login)."""
    run_sql(
        db,
        "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB",
        "CREATE TABLE child (id INT PRIMARY KEY, parent INT, FOREIGN KEY (parent) "
        "REFERENCES parent (id)) ENGINE=InnoDB",
        "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40)) ENGINE=InnoDB",
        "CREATE TRIGGER parent_added AFTER INSERT ON parent FOR EACH ROW "
        "INSERT INTO audit (what) VALUES (CONCAT('added ', NEW.id))",
        "INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_50",
        "INSERT INTO child SELECT seq, seq % 50 + 1 FROM seq_1_to_200",
        "CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
        "CREATE VIEW big_parents AS SELECT id, twice(id) AS d FROM parent WHERE id > 40",
        # Sorts before the view it reads: created again in dependency order, not by name.
        "CREATE VIEW a_top AS SELECT id, d FROM big_parents WHERE id > 45",
        "CREATE PROCEDURE count_children() SELECT COUNT(*) FROM child",
        "CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit",
        **login,
    )


def occupy(db: str, *, event: bool = True, **login: Any) -> None:
    """The operator's database that the restore replaces, with names that collide."""
    run_sql(
        db,
        "CREATE TABLE parent (id INT PRIMARY KEY, legacy TEXT) ENGINE=InnoDB",
        "CREATE TABLE only_old (x INT) ENGINE=InnoDB",
        "INSERT INTO parent VALUES (1, 'keep me'), (2, 'and me')",
        "INSERT INTO only_old VALUES (7)",
        "CREATE TRIGGER parent_legacy BEFORE INSERT ON parent FOR EACH ROW "
        "SET NEW.legacy = UPPER(NEW.legacy)",
        "CREATE VIEW audit AS SELECT id, legacy AS what FROM parent",  # a restored table's name
        "CREATE VIEW a_top AS SELECT 1 AS one",
        "CREATE PROCEDURE count_children() SELECT 42",
        "CREATE PROCEDURE old_only() SELECT 1",
        *(["CREATE EVENT old_event ON SCHEDULE EVERY 1 HOUR DISABLE DO DELETE FROM only_old"]
          if event else []),
        **login,
    )  # fmt: skip


def safesnap(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safesnap", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
        check=False,
    )  # fmt: skip


def error_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["ok"] is False
    error: dict[str, Any] = out["error"]
    return error


def backup(db: str, dest: Path) -> str:
    proc = safesnap("backup", "mysql", "-d", db, "--dest", str(dest), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    artifact: str = json.loads(proc.stdout)["artifact"]
    return artifact


@pytest.fixture
def target(scratch_db: str) -> Iterator[str]:
    """An existing database beside the source; every `<source>_*` database dropped after."""
    name = f"{scratch_db}_to"
    run_sql(None, f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        for leftover in databases(f"{scratch_db}_"):
            run_sql(None, f"DROP DATABASE IF EXISTS `{leftover}`")


@pytest.fixture
def restorer(scratch_db: str) -> Iterator[dict[str, str]]:
    """A user without SUPER / SET USER; each test grants what it needs. Yields its login."""
    user, password = f"sst_r_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    run_sql(None, f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
    try:
        yield {"user": user, "password": password}
    finally:
        run_sql(None, f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def grant(privileges: str, on: str, login: dict[str, str]) -> None:
    run_sql(None, f"GRANT {privileges} ON {on} TO '{login['user']}'@'127.0.0.1'")


def restore_as(login: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return safesnap("restore", *args, "--user", login["user"], "--password-env", PW_VAR,
                    "--json", env={PW_VAR: login["password"]})  # fmt: skip


def test_force_replaces_the_database_with_exactly_the_artifact(
    scratch_db: str, target: str, tmp_path: Path
) -> None:
    populate(scratch_db)
    occupy(target)
    artifact = backup(scratch_db, tmp_path)

    proc = safesnap("restore", artifact, "--to", target, "--force", "--json")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    restored = json.loads(proc.stdout)["restored"]
    assert restored["row_counts"] == {"audit": 50, "child": 200, "parent": 50}
    assert sorted(restored["replaced"]["replaced_tables"]) == ["only_old", "parent"]
    assert restored["replaced"]["kept_databases"] == []
    assert state(target) == state(scratch_db)  # nothing of the old database survives
    assert databases(f"{scratch_db}_") == {target}  # no scratch database left
    # The definitions work on the restored tables, in the target database.
    run_sql(target, "INSERT INTO parent VALUES (1000, 'new')")
    assert run_sql(target, "SELECT what FROM audit ORDER BY id DESC LIMIT 1") == [("added 1000",)]
    assert run_sql(target, "SELECT id, d FROM a_top ORDER BY id DESC LIMIT 1") == [(1000, 2000)]


def big_backup(db: str, dest: Path) -> str:
    """A dump whose load takes about a second here: long enough to be caught loading."""
    populate(db)
    run_sql(db, "CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(80)) ENGINE=InnoDB",
        "INSERT INTO big SELECT seq, REPEAT(SHA1(seq), 2) FROM seq_1_to_300000")  # fmt: skip
    return backup(db, dest)


def signal_while_loading(
    artifact: str, target: str, signum: int, tmp: Path
) -> tuple[int, str, str]:
    """Start `restore --force`, send `signum` once the scratch database is being filled.
    Its temporary files go to `tmp`: after SIGKILL the client's 0600 option file stays there
    (nothing can remove it; it must not litter the shared /tmp other tests check)."""
    loading = f"{like_escape(target)}\\_safesnap\\_new\\_%"
    tmp.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "safesnap", "restore", artifact, "--to", target, "--force",
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not run_sql(None, "SELECT id FROM information_schema.processlist WHERE db LIKE "
                      f"'{loading}' AND info LIKE 'INSERT INTO `big`%'"):  # fmt: skip
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the load never started"
            time.sleep(0.01)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode, out, err


def test_sigterm_during_the_load_leaves_the_original_database(
    scratch_db: str, target: str, tmp_path: Path
) -> None:
    artifact = big_backup(scratch_db, tmp_path)
    occupy(target)
    held = state(target)

    code, out, err = signal_while_loading(artifact, target, signal.SIGTERM, tmp_path / "tmp")

    assert code == 143, out + err
    assert json.loads(out)["error"]["code"] == "interrupted"
    assert not list((tmp_path / "tmp").iterdir())  # the client's option file removed too
    assert state(target) == held  # every row, view, trigger, routine and event
    assert databases(f"{scratch_db}_") == {target}  # the scratch database was dropped
    assert not run_sql(None, "SELECT id FROM information_schema.processlist WHERE db LIKE "
                   f"'{like_escape(target)}\\_%'")  # fmt: skip


def test_after_sigkill_the_next_restore_sweeps_the_scratch_copy(
    scratch_db: str, target: str, tmp_path: Path
) -> None:
    artifact = big_backup(scratch_db, tmp_path)
    occupy(target)
    held = state(target)
    replaced = f"{target}_safesnap_old_0a1b2c"  # as a kill right after the swap leaves it
    run_sql(None, f"CREATE DATABASE `{replaced}`", f"CREATE TABLE `{replaced}`.parent (id INT)")

    code, _, _ = signal_while_loading(artifact, target, signal.SIGKILL, tmp_path / "tmp")

    assert code == -signal.SIGKILL
    assert state(target) == held
    (left,) = databases(f"{scratch_db}_") - {target, replaced}  # nothing can clean up SIGKILL
    assert left.startswith(f"{target}_safesnap_new_")
    again = safesnap("restore", artifact, "--to", target, "--force", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert state(target) == state(scratch_db)  # and this time the restore did its job
    assert databases(f"{scratch_db}_") == {target, replaced}  # the copy swept, not the tables
    assert f"left the tables it replaced in database {replaced}" in again.stderr


def test_a_statement_refused_half_way_through_the_dump_leaves_the_original(
    scratch_db: str, target: str, restorer: dict[str, str], tmp_path: Path
) -> None:
    # The dump's trigger and views name root as their DEFINER: the server refuses them to a
    # user without SET USER, after the tables they belong to were created and filled.
    populate(scratch_db)
    occupy(target)
    grant("ALL", f"`{target}`.*", restorer)
    grant("ALL", f"`{like_escape(target)}\\_safesnap\\_%`.*", restorer)
    grant("SELECT", "mysql.proc", restorer)  # to read root's routines in the target
    held = state(target)
    artifact = backup(scratch_db, tmp_path)

    proc = restore_as(restorer, artifact, "--to", target, "--force")

    assert proc.returncode == 3, proc.stdout + proc.stderr
    error = error_of(proc)
    assert error["code"] == "privilege_missing"
    assert "restore cannot load the dump into its scratch database" in error["message"]
    assert "ERROR 1227" in error["message"] and "SET USER" in error["message"]
    assert state(target) == held
    assert databases(f"{scratch_db}_") == {target}
    assert restorer["password"] not in proc.stdout + proc.stderr


def test_a_failure_after_the_tables_moved_is_undone(
    scratch_db: str, target: str, restorer: dict[str, str], tmp_path: Path
) -> None:
    # Everything is the restorer's own (no definer trouble), but it may not create events in
    # the target: the tables are swapped, routines, views and triggers created, then CREATE
    # EVENT is refused. The swap is undone: the old tables, views, trigger and routines back.
    grant("ALL", f"`{scratch_db}`.*", restorer)
    grant("ALL", f"`{target}`.*", restorer)
    grant("ALL", f"`{like_escape(target)}\\_safesnap\\_%`.*", restorer)
    populate(scratch_db, user=restorer["user"], password=restorer["password"])
    occupy(target, event=False, user=restorer["user"], password=restorer["password"])
    run_sql(None, f"REVOKE EVENT ON `{target}`.* FROM '{restorer['user']}'@'127.0.0.1'")
    held = state(target)
    artifact = backup(scratch_db, tmp_path)

    proc = restore_as(restorer, artifact, "--to", target, "--force")

    assert proc.returncode == 3, proc.stdout + proc.stderr
    error = error_of(proc)
    assert error["code"] == "privilege_missing"
    assert f"restore cannot replace the contents of {target}" in error["message"]
    assert "moving the previous tables back" in proc.stderr  # it failed after the RENAME
    assert state(target) == held
    assert databases(f"{scratch_db}_") == {target}


def test_when_undoing_fails_too_no_row_is_lost_and_the_error_says_what_is_where(
    scratch_db: str, target: str, restorer: dict[str, str], tmp_path: Path
) -> None:
    # DROP but not CREATE VIEW in the target: the old views are dropped before the tables move,
    # the new ones cannot be created, and neither can the old ones when undoing.
    grant("ALL", f"`{scratch_db}`.*", restorer)
    grant("ALL", f"`{target}`.*", restorer)
    grant("ALL", f"`{like_escape(target)}\\_safesnap\\_%`.*", restorer)
    populate(scratch_db, user=restorer["user"], password=restorer["password"])
    occupy(target, user=restorer["user"], password=restorer["password"])
    run_sql(None, f"REVOKE CREATE VIEW ON `{target}`.* FROM '{restorer['user']}'@'127.0.0.1'")
    held_rows, held_objects = state(target)
    artifact = backup(scratch_db, tmp_path)

    proc = restore_as(restorer, artifact, "--to", target, "--force")

    assert proc.returncode == 3, proc.stdout + proc.stderr
    error = error_of(proc)
    assert error["code"] == "source_unusable"
    assert "putting back its previous content failed too" in error["message"]
    assert f"its tables are in {target}, not all of its previous definitions" in error["message"]
    assert rows(target) == held_rows  # every row is back
    now = objects(target)
    assert now["views"] == [] and held_objects["views"] != []  # these could not be re-created
    assert {k: v for k, v in now.items() if k not in ("views", "tables")} == {
        k: v for k, v in held_objects.items() if k not in ("views", "tables")
    }
    assert "previous definition of view" in proc.stderr  # logged, so nothing is lost
    assert databases(f"{scratch_db}_") == {target}


def test_without_the_create_privilege_restore_fails_clearly_and_changes_nothing(
    scratch_db: str, target: str, restorer: dict[str, str], tmp_path: Path
) -> None:
    populate(scratch_db)
    occupy(target)
    grant("ALL", f"`{target}`.*", restorer)  # but nothing on the scratch databases' names
    grant("SELECT", "mysql.proc", restorer)
    held = state(target)
    artifact = backup(scratch_db, tmp_path)

    forced = restore_as(restorer, artifact, "--to", target, "--force")
    fresh = restore_as(restorer, artifact, "--to", f"{scratch_db}_new")

    assert forced.returncode == 3, forced.stdout + forced.stderr
    error = error_of(forced)
    assert error["code"] == "privilege_missing"
    assert "restore cannot create its scratch database" in error["message"]
    assert f"`{like_escape(target)}\\_safesnap\\_%`" in error["hint"]
    assert fresh.returncode == 3, fresh.stdout + fresh.stderr
    assert f"restore cannot create the database {scratch_db}_new" in error_of(fresh)["message"]
    assert state(target) == held
    assert databases(f"{scratch_db}_") == {target}
