"""The MySQL / MariaDB engine: logical dump, guarded lock for snapshots, restore, verify.

One artifact per target: a single `mariadb-dump --single-transaction --databases ...` run, so
all of a target's databases come from ONE consistent InnoDB snapshot. `--no-create-db` leaves
only `USE` lines naming the databases, which restore rewrites (mysql_sql.SectionFilter) to load
a database under any name. Row counts in the manifest are counted from the dump stream itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pymysql

from safesnap.artifacts.store import ArtifactInfo, write_artifact, write_manifest
from safesnap.config.targets import MysqlTarget
from safesnap.engines import BackupContext, BackupOutcome
from safesnap.engines.mysql.client import client_program, client_version, dump_args, run_dump
from safesnap.engines.mysql.conn import (
    ConnParams,
    ServerInfo,
    connect,
    detect_server,
    execute,
    params_from_options,
    params_from_target,
    query_all,
    quote_ident,
)
from safesnap.engines.mysql.dumpfile import RowCounter
from safesnap.engines.mysql.lock import guarded_lock
from safesnap.engines.mysql.scratch import (
    VERIFY,
    VERIFY_PREFIX,
    Load,
    check_stored,
    create_scratch,
    drop_scratch,
    like_escape,
    restore_names,
    restore_use,
    sweep_restore_leftovers,
)
from safesnap.engines.mysql.swap import check_replaceable, swap_in
from safesnap.errors import (
    ArtifactError,
    RefusedError,
    SourceError,
)
from safesnap.output import log

# Engines whose tables a --single-transaction dump reads from one consistent snapshot.
TRANSACTIONAL = frozenset({"innodb", "rocksdb", "tokudb"})
LAYOUT = "mysqldump-databases/1"


def table_inventory(params: ConnParams, databases: list[str]) -> dict[str, dict[str, str]]:
    """{db: {table: engine}} for base tables; SourceError if a database does not exist."""
    conn = connect(params)
    try:
        marks = ", ".join(["%s"] * len(databases))
        present = {
            r[0]
            for r in query_all(conn, f"SHOW DATABASES WHERE `Database` IN ({marks})", databases)
        }
        missing = [db for db in databases if db not in present]
        if missing:
            raise SourceError(
                f"database(s) not found on {params.where()}: {', '.join(missing)}",
                target=params.target,
            )
        rows = query_all(
            conn,
            "SELECT table_schema, table_name, engine FROM information_schema.tables "
            f"WHERE table_schema IN ({marks}) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
            databases,
        )
    finally:
        conn.close()
    out: dict[str, dict[str, str]] = {db: {} for db in databases}
    for schema, table, engine in rows:
        out[str(schema)][str(table)] = str(engine or "")
    return out


def consistency_warnings(tables: Mapping[str, Mapping[str, str]]) -> list[str]:
    risky = [
        f"{db}.{table} ({engine})"
        for db, per_db in tables.items()
        for table, engine in per_db.items()
        if engine.lower() not in TRANSACTIONAL
    ]
    if not risky:
        return []
    return [
        "not transactional, so not consistent in the dump (rows written during the dump may be "
        "half-included; --single-transaction only covers InnoDB): " + ", ".join(risky)
    ]


class MysqlEngine:
    name = "mysql"

    def backup(self, target: MysqlTarget, ctx: BackupContext) -> BackupOutcome:
        params = params_from_target(target)
        server = _server(params)
        tables = table_inventory(params, target.databases)
        warnings = consistency_warnings(tables)
        program = client_program("dump", target.dump.client, target.dump.command_prefix, server)
        counter = RowCounter(default_db=target.databases[0])
        extras = _manifest_extras(target, params, server, tables, warnings, program)
        progress = ctx.progress

        def filled() -> None:
            # Runs at the dump's clean EOF, before write_artifact writes the manifest (it can
            # only do so after the source is consumed), so the counts are in its one write.
            extras["mysql"]["row_counts"].update(_row_counts(counter, tables))

        with run_dump(
            params, dump_args(target.dump, target.databases), program,
            target.dump.command_prefix, counter, on_complete=filled,
        ) as stream:  # fmt: skip
            info = write_artifact(
                stream,  # type: ignore[arg-type]  # RawIOBase is a binary stream
                ctx.dest,
                target=target.name,
                engine=self.name,
                ext="sql",
                compression=ctx.compression,
                level=ctx.level,
                threads=ctx.threads,
                kind=ctx.kind,
                manifest=extras,
                progress=(lambda done: progress(done, None)) if progress else None,
            )
        info = _ensure_counts(info, counter, tables)
        counts = info.manifest["mysql"]["row_counts"]
        details = {"warnings": warnings, "row_counts": counts, "databases": target.databases}
        details["server"] = server.as_dict()
        return BackupOutcome(artifact=info, details=details)

    def quiesce(self, target: MysqlTarget) -> AbstractContextManager[dict[str, Any]]:
        return guarded_lock(target)

    def verify(
        self, artifact: Path, manifest: Mapping[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Load each database into a scratch database, compare row counts, drop it.

        A user without the privileges to create, fill and drop `safesnap_verify_*` databases
        gets PrivilegeError (never IntegrityError: the artifact may be fine, it is unchecked).
        """
        meta = _mysql_meta(manifest)
        params = _params(meta, options)
        check_stored(artifact, manifest)
        checked = {db: _verify_one(artifact, params, meta, db, options) for db in meta["databases"]}
        rows = sum(sum(c.values()) for c in checked.values())
        return {"databases": list(checked), "row_counts": checked, "rows": rows}

    def restore(
        self,
        artifact: Path,
        manifest: Mapping[str, Any],
        to: str,
        *,
        force: bool,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Load one database of the artifact into database `to`.

        A missing `to` is created, loaded and checked (and dropped again on failure). An
        existing one (empty, or anything with `force`) is never loaded into: the dump goes
        into a scratch database, is checked, and only then swapped in (engines/mysql/swap.py), so a
        failure at any point, SIGTERM included, leaves `to` as it was."""
        meta = _mysql_meta(manifest)
        params = _params(meta, options)
        source = _pick_database(meta, options)
        existing = _existing(params, to, force=force)  # refuses before reading the artifact
        check_stored(artifact, manifest)
        load = Load(artifact, params, source, meta["row_counts"].get(source, {}), options)
        out: dict[str, Any] = {"database": to, "source_database": source}
        if existing:
            return out | _restore_over(load, to)
        use = restore_use(to)
        create_scratch(params, to, use, what=f"restore cannot create the database {to}")
        try:
            counts = load.into(to, use, scratch=False)
        except BaseException:
            _drop_database(params, to)  # we created it: leave nothing half-loaded
            raise
        return out | {"row_counts": counts}


def _restore_over(load: Load, to: str) -> dict[str, Any]:
    """Load into `<to>_safesnap_new_*`, check, swap in; drop the scratch database on failure."""
    params, use = load.params, restore_use(to)
    check_replaceable(params, to)  # before the long load, not after it
    sweep_restore_leftovers(params, to)
    new, old = restore_names(to)
    create_scratch(params, new, use)
    try:
        counts = load.into(new, use)
        swapped = swap_in(params, new, to, old)
    except BaseException:
        _drop_database(params, new)
        raise
    return {"row_counts": counts, "replaced": swapped}


def _row_counts(counter: RowCounter, tables: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    # Every base table appears, 0 when the dump had no INSERT for it.
    out = {db: dict.fromkeys(per_db, 0) for db, per_db in tables.items()}
    for db, per_db in counter.counts.items():
        out.setdefault(db, {}).update(per_db)
    return out


def _ensure_counts(info: ArtifactInfo, counter: RowCounter, tables: Any) -> ArtifactInfo:
    mysql = info.manifest.get("mysql") or {}
    if mysql.get("row_counts"):
        return info
    data = dict(info.manifest)
    data["mysql"] = {**mysql, "row_counts": _row_counts(counter, tables)}
    write_manifest(info.path, data)
    return ArtifactInfo(
        info.path, info.manifest_path, info.sha256, info.bytes, info.source_bytes,
        info.seconds, data,
    )  # fmt: skip


def _manifest_extras(
    target: MysqlTarget,
    params: ConnParams,
    server: ServerInfo,
    tables: dict[str, dict[str, str]],
    warnings: list[str],
    program: str,
) -> dict[str, Any]:
    where = f"unix:{params.socket}" if params.socket else f"{params.host}:{params.port}"
    return {
        "source": f"mysql://{params.user}@{where}/{','.join(target.databases)}",
        "warnings": warnings,
        "mysql": {
            "layout": LAYOUT,
            "databases": list(target.databases),
            "server": server.as_dict(),
            "client": client_version(program, target.dump.command_prefix, params) or program,
            "tables": tables,
            "row_counts": {},
            # Non-secret connection facts so `verify` in a run can reach the same server.
            "connection": {
                "host": params.host,
                "port": params.port,
                "user": params.user,
                "socket": str(params.socket) if params.socket else None,
                "password_env": params.password_env,
            },
        },
    }


def _server(params: ConnParams) -> ServerInfo:
    conn = connect(params)
    try:
        return detect_server(conn)
    finally:
        conn.close()


def _mysql_meta(manifest: Mapping[str, Any]) -> dict[str, Any]:
    meta = manifest.get("mysql")
    if not isinstance(meta, dict) or meta.get("layout") != LAYOUT:
        raise ArtifactError(
            f"{manifest.get('artifact')}: not a safesnap MySQL dump (layout {LAYOUT} expected)"
        )
    return meta


def _params(meta: Mapping[str, Any], options: Mapping[str, Any]) -> ConnParams:
    """CLI options win; the manifest's recorded (non-secret) connection fills the gaps."""
    recorded = meta.get("connection") or {}
    merged = {k: v for k, v in recorded.items() if v is not None}
    merged.update({k: v for k, v in options.items() if v is not None})
    return params_from_options(merged)


def _pick_database(meta: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    databases: list[str] = list(meta["databases"])
    wanted = options.get("database")
    if wanted:
        if wanted not in databases:
            raise ArtifactError(f"the artifact has no database {wanted!r}; it holds {databases}")
        return str(wanted)
    if len(databases) > 1:
        raise RefusedError(
            f"the artifact holds {len(databases)} databases ({', '.join(databases)})",
            hint="Choose one with --database; restore each into its own name.",
        )
    return databases[0]


def _existing(params: ConnParams, name: str, *, force: bool) -> bool:
    """Whether database `name` exists; RefusedError if it holds anything and not `force`."""
    conn = connect(params)
    try:
        if not query_all(conn, "SHOW DATABASES LIKE %s", (like_escape(name),)):
            return False
        objects = query_all(
            conn,
            "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s)"
            " + (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = %s)"
            " + (SELECT COUNT(*) FROM information_schema.events WHERE event_schema = %s)",
            (name, name, name),
        )
    finally:
        conn.close()
    if int(objects[0][0]) and not force:
        raise RefusedError(
            f"database {name} is not empty ({int(objects[0][0])} tables/routines/events); "
            "refusing to overwrite it",
            hint="Restore into a new name, or pass --force to replace its contents (the dump "
            "is loaded and checked in a scratch database first, then swapped in).",
        )
    return True


def _verify_one(
    artifact: Path,
    params: ConnParams,
    meta: Mapping[str, Any],
    db: str,
    options: Mapping[str, Any],
) -> dict[str, int]:
    scratch = f"{VERIFY_PREFIX}{uuid.uuid4().hex[:12]}"
    create_scratch(params, scratch)
    load = Load(artifact, params, db, meta["row_counts"].get(db, {}), options)
    try:
        counts = load.into(scratch, VERIFY)
    except BaseException:
        _drop_database(params, scratch)  # best effort: the load's error is the one to report
        raise
    drop_scratch(params, scratch)
    return counts


def _drop_database(params: ConnParams, name: str) -> None:
    """Best-effort cleanup on a failure path: never raises, so the original error survives."""
    try:
        conn = connect(params)
        try:
            execute(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        finally:
            conn.close()
    except (SourceError, pymysql.err.MySQLError) as exc:
        log.warning("could not drop database %s on %s: %s", name, params.where(), exc)


ENGINE = MysqlEngine()
