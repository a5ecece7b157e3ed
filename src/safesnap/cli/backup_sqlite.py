"""`safesnap backup sqlite DB_PATH --dest DIR`: one consistent, checked, compressed copy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from safesnap.cli.options import JsonOpt
from safesnap.errors import ConfigError

if TYPE_CHECKING:
    from safesnap.engines.sqlite.job import SqliteJob

COMPRESSIONS = ("zstd", "gzip", "xz", "none")
INTEGRITY = ("quick", "full", "off")


def backup_sqlite(
    db_path: Path = typer.Argument(..., help="The live SQLite database file."),
    dest: Path = typer.Option(..., "--dest", help="Directory the artifact and manifest go to."),
    compress: str = typer.Option("zstd", "--compress", help="zstd | gzip | xz | none"),
    threads: int = typer.Option(
        1,
        "--threads",
        min=0,
        max=16,
        help="zstd compression threads (0 = one per core). More is faster but takes CPU from "
        "the database's own work; 1 is what `zstd -T1` does.",
    ),
    integrity: str = typer.Option(
        "quick", "--integrity", help="Check of the copy before it counts: quick | full | off"
    ),
    busy_timeout: float = typer.Option(
        10.0, "--busy-timeout", help="Seconds to wait for a lock on the source before giving up."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Target name used in the artifact name (default: the file's stem)."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Back up a live SQLite database (WAL or rollback journal) without stopping its writers."""
    # Imported here, not at the top: `backup sqlite --help` and the other commands' startup
    # should not pay for the engine, rich and pydantic (safesnap.cli.lazy).
    from safesnap.artifacts.catalog import sweep_temporaries
    from safesnap.engines import BackupContext
    from safesnap.engines.sqlite.engine import ENGINE
    from safesnap.output import print_json, progress

    _check_choice("--compress", compress, COMPRESSIONS)
    _check_choice("--integrity", integrity, INTEGRITY)
    target = _target(db_path, name, integrity, busy_timeout)
    swept = sweep_temporaries(dest)  # what a killed earlier backup left (never a live one's)
    with progress(f"backup {target.name}", enabled=not json_out) as update:
        ctx = BackupContext(
            dest=dest, compression=compress, threads=threads, kind="manual", progress=update
        )
        outcome = ENGINE.backup(target, ctx)
    info = outcome.artifact
    result: dict[str, Any] = {
        "ok": True,
        "target": target.name,
        "artifact": str(info.path),
        "manifest": str(info.manifest_path),
        "sha256": info.sha256,
        "bytes": info.bytes,
        "source_bytes": info.source_bytes,
        "seconds": round(info.seconds, 3),
        **{k: info.manifest.get(k) for k in _FACTS},
        **swept.report(),
    }
    if json_out:
        print_json(result)
    else:
        _print_human(result)


_FACTS = (
    "journal_mode",
    "method",
    "integrity_check",
    "integrity_result",
    "writer_lockout_seconds",
    "page_size",
    "page_count",
    "copy_seconds",
    "stream_skipped",
)


def _check_choice(option: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")


def default_name(db_path: Path) -> str:
    """A target name from the file name that fits the plan's name pattern."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", db_path.stem)[:64]
    return stem if stem[:1].isalnum() else f"db{stem}"[:64]


def _target(db_path: Path, name: str | None, integrity: str, busy_timeout: float) -> SqliteJob:
    from safesnap.engines.sqlite.job import SqliteJob

    return SqliteJob(
        name=name or default_name(db_path),
        path=db_path,
        integrity_check=integrity,  # checked by _check_choice
        busy_timeout=busy_timeout,
    )


def _print_human(r: dict[str, Any]) -> None:
    from safesnap.output import say

    lockout = r.get("writer_lockout_seconds") or 0.0
    say(f"ok {r['artifact']}")
    say(
        f"  {r['source_bytes']:,} bytes -> {r['bytes']:,} bytes in {r['seconds']:.2f} s, "
        f"journal_mode={r['journal_mode']}, integrity={r['integrity_result']}, "
        f"writers locked out {lockout:.3f} s"
    )
