"""`safesnap restore ARTIFACT --to PATH`: checksum first, then the engine restores atomically.

From a replica: `--config PLAN --replica NAME --target T [--at latest|TIMESTAMP]`, or
`s3://BUCKET/KEY --config PLAN`. The backup is downloaded into a private scratch directory
(`--tmp-dir`, else the system's), both checksums are checked and it is decrypted on the way
(replicas/fetch.py); then it restores exactly as a local artifact does, and the scratch
directory is removed whatever happens. A missing or wrong identity fails before anything is
written at `--to`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from safesnap.artifacts.scratch import scratch_dir
from safesnap.artifacts.store import resolve_artifact
from safesnap.cli.options import (
    ClientOpt,
    ConfigOpt,
    EnvFileOpt,
    HostOpt,
    JsonOpt,
    PasswordEnvOpt,
    PortOpt,
    PrefixOpt,
    SocketOpt,
    TmpDirOpt,
    UserOpt,
)
from safesnap.cli.verify import engine_options
from safesnap.engines import get_engine
from safesnap.engines.verify import check_checksums
from safesnap.errors import ConfigError
from safesnap.output import log, print_json, progress, say


def restore(
    artifact: str | None = typer.Argument(
        None,
        help="The artifact file (or its .manifest.json), or s3://BUCKET/KEY of a replica "
        "(with --config). Omit it with --replica.",
    ),
    to: str = typer.Option(
        ..., "--to", help="SQLite: the database file to create; MySQL: the database name."
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing data at --to."),
    config: Path | None = ConfigOpt,
    replica: str | None = typer.Option(
        None, "--replica", help="Restore from this replica bucket of the plan (needs --target)."
    ),
    target: str | None = typer.Option(None, "--target", help="With --replica: which target."),
    at: str | None = typer.Option(
        None, "--at", help="With --replica: latest (default), a timestamp or an artifact name."
    ),
    identity: Path | None = typer.Option(
        None,
        "--identity",
        help="age identity file for encrypted backups (default: $SAFESNAP_AGE_IDENTITY_FILE).",
    ),
    host: str | None = HostOpt,
    port: int | None = PortOpt,
    user: str | None = UserOpt,
    socket: Path | None = SocketOpt,
    password_env: str | None = PasswordEnvOpt,
    tmp_dir: Path | None = TmpDirOpt,
    client: str | None = ClientOpt,
    command_prefix: str | None = PrefixOpt,
    database: str | None = typer.Option(
        None, "--database", help="MySQL: which database of a multi-database dump to restore."
    ),
    json_out: bool = JsonOpt,
    env_file: Path | None = EnvFileOpt,
) -> None:
    """Restore a backup. Refuses to overwrite existing data without --force."""
    started = time.monotonic()
    options = engine_options(
        host, port, user, socket, password_env, tmp_dir, client, command_prefix, database=database
    )
    source = _Source(artifact, config, replica, target, at, identity, env_file)
    with source.local(tmp_dir, show=not json_out) as path:
        with progress(f"checksum {path.name}", enabled=not json_out) as update:
            manifest = check_checksums(path, update)
        engine = get_engine(str(manifest.get("engine")))
        log.info("restore %s: into %s", path.name, to)
        details = engine.restore(path, manifest, to, force=force, options=options)
    result = {
        "ok": True,
        "artifact": source.describe(path),
        "to": to,
        "engine": engine.name,
        "checksum_ok": True,
        "restored": details,
        "seconds": round(time.monotonic() - started, 3),
    }
    if json_out:
        print_json(result)
        return
    say(f"restored {path.name} -> {to} ({result['seconds']:.1f} s)")


class _Source:
    """Where the backup comes from: a local file, or a replica (then fetched first)."""

    def __init__(
        self,
        artifact: str | None,
        config: Path | None,
        replica: str | None,
        target: str | None,
        at: str | None,
        identity: Path | None,
        env_file: Path | None,
    ) -> None:
        self.artifact, self.config, self.replica, self.target = artifact, config, replica, target
        self.at, self.identity, self.env_file = at, identity, env_file
        self.url: str | None = None
        remote = replica is not None or (artifact or "").startswith("s3://")
        if not remote and (at or target):
            raise ConfigError("--at and --target go with --replica NAME")
        if artifact is None and replica is None:
            raise ConfigError("give the artifact to restore, or --replica NAME --target T")
        if replica is not None and (artifact is not None or target is None):
            raise ConfigError("--replica NAME takes --target T and no artifact argument")
        self.remote = remote

    def describe(self, fetched: Path) -> str:
        return self.url or str(fetched)

    @contextmanager
    def local(self, tmp_dir: Path | None, *, show: bool) -> Iterator[Path]:
        if not self.remote:
            assert self.artifact is not None
            yield resolve_artifact(Path(self.artifact))
            return
        # The download is the whole artifact: a killed restore's copy is swept by the next one.
        with scratch_dir(tmp_dir, "fetch", "replica", sweep=True) as scratch:
            yield self._fetch(scratch, show)

    def _fetch(self, scratch: Path, show: bool) -> Path:
        from safesnap.cli.run import resolve_plan
        from safesnap.replicas.client import replica_for_url, replica_named
        from safesnap.replicas.fetch import fetch_key, fetch_latest

        plan = resolve_plan(self.config, self.env_file)
        with progress("download", enabled=show) as update:
            if self.replica is not None:
                assert self.target is not None
                replica = replica_named(plan.replicas, self.replica)
                path = fetch_latest(
                    replica, self.target, scratch, identity=self.identity,
                    env_file=self.env_file, at=self.at, progress=update,
                )  # fmt: skip
            else:
                assert self.artifact is not None
                replica, key = replica_for_url(plan.replicas, self.artifact)
                path = fetch_key(
                    replica, key, scratch, identity=self.identity, env_file=self.env_file,
                    progress=update,
                )  # fmt: skip
        from safesnap.artifacts.store import read_manifest

        self.url = str(read_manifest(path).get("fetched_from"))
        return path
