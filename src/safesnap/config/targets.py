"""The targets of a plan: what to back up (SQLite, MySQL/MariaDB, files) and how.

Apart from the plan loader (plan.py) because engines and one-off commands (`backup sqlite`)
need these models without pydantic-settings and the plan's sources: importing them costs the
SQLite path only pydantic itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from safesnap.config.snapshots import SnapshotSpec

IntegrityCheck = Literal["quick", "full", "off"]


class Strict(BaseModel):
    """Base for every plan section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class SqliteTarget(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    engine: Literal["sqlite"] = "sqlite"
    path: Path = Field(description="The live SQLite database file.")
    integrity_check: IntegrityCheck = Field(
        "quick", description="Check run on the copy before it counts as a backup."
    )
    busy_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for a lock on the source before giving up."
    )
    max_lock_hold_seconds: float = Field(
        30, gt=0, description="Watchdog: the snapshot-time write lock is released after this long."
    )
    snapshot: SnapshotSpec | None = None


class MysqlTls(Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify_identity: bool = True


class MysqlDumpOptions(Strict):
    routines: bool = True
    triggers: bool = True
    events: bool = True
    client: str | None = Field(
        None, description="Dump program; default: mariadb-dump, else mysqldump, found on PATH."
    )
    command_prefix: list[str] = Field(
        default_factory=list,
        description="Run the dump client through this, e.g. 'docker compose exec -T mysql'.",
    )
    extra_args: list[str] = Field(default_factory=list)

    @field_validator("command_prefix", mode="before")
    @classmethod
    def _split_prefix(cls, value: Any) -> Any:
        # Accept "docker compose exec -T mysql" as well as a list: operators write it both ways.
        if isinstance(value, str):
            import shlex

            return shlex.split(value)
        return value


class MysqlTarget(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    engine: Literal["mysql"] = "mysql"
    host: str = "127.0.0.1"
    port: int = Field(3306, ge=1, le=65535)
    socket: Path | None = None
    user: str = "root"
    password_env: str | None = Field(
        None,
        description="Name of the environment variable holding the password (never the password).",
    )
    databases: list[str] = Field(min_length=1)
    quiesce: Literal["lock", "dump"] = "dump"
    lock_mode: Literal["ftwrl", "backup_stage", "instance"] = Field(
        "ftwrl",
        description="ftwrl: FLUSH TABLES WITH READ LOCK; backup_stage: MariaDB BACKUP STAGE "
        "BLOCK_COMMIT; instance: MySQL 8 LOCK INSTANCE FOR BACKUP.",
    )
    lock_wait_timeout: float = Field(1.0, gt=0, le=60, description="Seconds per lock attempt.")
    lock_attempts: int = Field(3, ge=1, le=20)
    lock_retry_pause: float = Field(1.0, ge=0, le=60, description="Seconds between attempts.")
    long_query_seconds: float = Field(
        10, gt=0, description="Do not lock while a query older than this runs."
    )
    kill_long_queries: bool = Field(False, description="Kill long queries after the grace period.")
    kill_long_queries_after: float = Field(
        20, gt=0, description="Grace period in seconds before long queries are killed."
    )
    max_lock_hold_seconds: float = Field(
        30, gt=0, description="Watchdog: the lock is released after this long, whatever happens."
    )
    connect_timeout: float = Field(5, gt=0)
    tls: MysqlTls | None = None
    dump: MysqlDumpOptions = Field(default_factory=MysqlDumpOptions)
    snapshot: SnapshotSpec | None = None

    @model_validator(mode="after")
    def _lock_needs_snapshot(self) -> MysqlTarget:
        if self.quiesce == "lock" and self.snapshot is None:
            raise ValueError(
                "quiesce = 'lock' needs a snapshot step (the lock is held only across the "
                "snapshot request); add snapshot = { provider = ... } or use quiesce = 'dump'"
            )
        return self


class FilesTarget(Strict):
    """Config files and small directories (tracker.toml, the compose stack's files)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    engine: Literal["files"] = "files"
    paths: list[Path] = Field(min_length=1, description="Files or directories to archive.")
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns matched against paths relative to each listed directory "
        "(a pattern without '/' also matches any single name); a matching directory is not "
        "walked at all.",
    )
    live_databases: Literal["skip", "copy"] = Field(
        "skip",
        description="A SQLite file or MySQL data directory found in the tree that no target "
        "backs up: 'skip' leaves it out with a warning (a tar of a live database is not a "
        "backup), 'copy' archives its bytes anyway.",
    )
    snapshot: SnapshotSpec | None = None

    @field_validator("exclude")
    @classmethod
    def _patterns_are_relative(cls, patterns: list[str]) -> list[str]:
        # Matched against paths relative to each listed root, so a leading '/' never matches:
        # say so now rather than back up what the operator meant to leave out.
        bad = [p for p in patterns if not p.strip() or p.startswith("/")]
        if bad:
            raise ValueError(
                f"exclude patterns are relative to each listed path (no leading '/'): {bad}"
            )
        return [p.rstrip("/") for p in patterns]


def _target_tag(value: Any) -> str:
    engine = value.get("engine") if isinstance(value, dict) else getattr(value, "engine", None)
    return str(engine or "sqlite")


Target = Annotated[
    Annotated[SqliteTarget, Tag("sqlite")]
    | Annotated[MysqlTarget, Tag("mysql")]
    | Annotated[FilesTarget, Tag("files")],
    Discriminator(_target_tag),
]
