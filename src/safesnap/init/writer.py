"""The plan `safesnap init` writes: TOML text with a comment for every choice it made, so the
operator can read why each target is there and what to change. Strings are quoted with
json.dumps, whose escapes are a subset of TOML basic strings'.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from safesnap.init.torrust import Deployment, MysqlDb, SqliteDb

PROVIDER_KEYS = {
    "aws": 'volume_ids = ["vol-..."]  # or instance_id = "i-..." (all its volumes at one instant)',
    "digitalocean": 'volume_ids = ["..."]  # `doctl compute volume list`; or droplet_id = 123',
    "hetzner": "server_id = 123  # `hcloud server list` (Hetzner volumes cannot be snapshotted)",
}


def comment(text: str) -> list[str]:
    """A paragraph as `# ` lines that fit the 100-column style of the docs."""
    return [f"# {line}" for line in textwrap.wrap(text, 90, break_on_hyphens=False)]


def _bullet(text: str) -> list[str]:
    """A note as a list item of the intro (header() adds the '# ')."""
    wrapped = textwrap.wrap(text, 88, break_on_hyphens=False)
    return [("- " if i == 0 else "  ") + line for i, line in enumerate(wrapped)]


def q(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def qlist(values: list[str]) -> str:
    return "[" + ", ".join(q(v) for v in values) + "]"


def header(plan: str, dest: Path, intro: list[str]) -> list[str]:
    return [
        *[f"# {line}" if line else "#" for line in intro],
        f"plan = {q(plan)}",
        "",
        "[destination]",
        "# Artifacts (compressed, checksummed, with a manifest) go here: an attached volume, not",
        "# the disk the deployment lives on, so losing that disk does not lose the backups.",
        f"path = {q(dest)}",
        'compression = "zstd"',
        "",
        "[retention]",
        "# Per target: the newest N, plus one per day / week / month for the last N of each.",
        "keep_last = 3",
        "keep_daily = 7",
        "keep_weekly = 4",
        "keep_monthly = 6",
        "",
    ]


def torrust_plan(d: Deployment, dest: Path, provider: str | None, command: str) -> str:
    lines = header(
        "torrust",
        dest,
        [
            f"Written by `{command}`",
            f"from the deployment in {d.root}. Check it with",
            "`safesnap config check --config <this file>"
            + (f" --env-file {d.env_file}`" if d.env_file else "`"),
            "then run it once by hand before scheduling it. Reference: docs/reference/plan.md;",
            "scopes (selective, full storage, layered): docs/how-to/scopes.md.",
            *(["", "Notes from reading the deployment:"] if d.notes else []),
            *[line for note in d.notes for line in _bullet(note)],
        ],
    )
    db = _sqlite_target(d, d.database) if isinstance(d.database, SqliteDb) else None
    db = db or _mysql_target(d, d.database)  # type: ignore[arg-type]
    # The snapshot key belongs to the target's own table, before any sub-table.
    at = db.index("[targets.dump]") if "[targets.dump]" in db else len(db) - 1
    lines += db[:at] + _provider_block(provider) + db[at:]
    lines += _config_target(d)
    lines += _storage_target(d)
    return "\n".join(lines).rstrip() + "\n"


def _sqlite_target(d: Deployment, db: SqliteDb) -> list[str]:
    return [
        "# The tracker's database, copied consistently by the SQLite engine while the tracker",
        f'# runs. {d.tracker_toml.name} says driver = "sqlite3", decided by',
        f"#   {d.driver_from},",
        f"# with path {db.container_path} in the container,",
        "# which the tracker service's volumes map to the host path below.",
        "[[targets]]",
        'name = "tracker-db"',
        'engine = "sqlite"',
        f"path = {q(db.host_path)}",
        'integrity_check = "quick"',
        "",
    ]


def _mysql_target(d: Deployment, db: MysqlDb) -> list[str]:
    prefix = ["docker", "compose", "-f", str(d.compose_file), "exec", "-T", db.service]
    extra = [f"--port={db.container_port}"] if db.port not in (None, db.container_port) else []
    password = (
        [
            f"# The password is read at run time from {db.password_env} in {d.env_file}",
            "# (pass that file with --env-file); it is never written here nor put in argv.",
            f"password_env = {q(db.password_env)}",
        ]
        if db.password_env
        else ['# password_env = "..."   # the .env variable holding the password (not the value)']
    )
    return [
        f'# The tracker\'s database. {d.tracker_toml.name} says driver = "mysql", decided by',
        f"#   {d.driver_from}.",
        "# It is dumped with --single-transaction (no global lock) by the",
        f"# client inside the `{db.service}` compose service, so the host needs no MySQL client",
        "# for the dump; safesnap itself connects to the published port to check the server.",
        "[[targets]]",
        'name = "tracker-db"',
        'engine = "mysql"',
        'host = "127.0.0.1"',
        f"port = {db.port or db.container_port}",
        f"user = {q(db.user)}",
        *password,
        f"databases = [{q(db.database)}]",
        'quiesce = "dump"',
        "",
        "[targets.dump]",
        f"command_prefix = {qlist(prefix)}",
        *([f"extra_args = {qlist(extra)}"] if extra else []),
        "",
    ]


def _provider_block(provider: str | None) -> list[str]:
    if provider is None:
        return []
    keys, where = (part.strip() for part in PROVIDER_KEYS[provider].split("#"))
    return [
        f"# --provider {provider}: a volume snapshot of the disk that holds the deployment adds",
        "# a whole-disk restore point. Fill in the id and uncomment (a wrong id would fail the",
        "# run, so init does not guess it):",
        f'# snapshot = {{ provider = "{provider}", {keys} }}',
        f"#   {where.removeprefix('# ')}",
    ]


def _config_target(d: Deployment) -> list[str]:
    return [
        "# The deployment's configuration, small and worth its own artifact: restoring it",
        "# alone rebuilds the stack. The .env file holds secrets: the artifact is written with",
        "# mode 0600 and its checksums are in the manifest, but keep the destination private.",
        "[[targets]]",
        'name = "config"',
        'engine = "files"',
        "paths = [",
        *[f"  {q(p)}," for p in d.config_files],
        "]",
        "",
    ]


def _storage_target(d: Deployment) -> list[str]:
    if d.storage is None:
        return ["# No storage/ directory was found, so there is no storage target.", ""]
    mysql = " and any MySQL data directory" if isinstance(d.database, MysqlDb) else ""
    return [
        *comment(
            "Everything else the services keep (the layered scope: the database by its engine "
            "above, the rest as files). A database another target backs up is left out of this "
            f"tree automatically, with its -wal/-shm/-journal files{mysql}; any other live "
            'SQLite file is skipped with a warning unless live_databases = "copy". Exclude '
            'what you can rebuild, e.g. logs: exclude = ["tracker/log", "*.log"].'
        ),
        "[[targets]]",
        'name = "storage"',
        'engine = "files"',
        f"paths = [{q(d.storage)}]",
        "exclude = []",
        'live_databases = "skip"',
        "",
    ]


GENERIC = """\
# A starting plan written by `safesnap init`. Edit the paths, then check it with
# `safesnap config check --config {output}` and run it once by hand:
# `safesnap run --config {output}`. Every key: docs/reference/plan.md.
# For a Torrust Tracker deployment, `safesnap init --torrust DIR` fills this in for you.
plan = "default"

[destination]
# Artifacts go here: an attached volume, not the disk the data lives on.
path = {dest}
compression = "zstd"

[retention]
keep_last = 3
keep_daily = 7
keep_weekly = 4
keep_monthly = 6

# One [[targets]] table per thing to back up. Uncomment and edit the ones you need;
# the files target below is active so the plan is valid as written.

# A SQLite database, copied consistently while it is in use:
# [[targets]]
# name = "app-db"
# engine = "sqlite"
# path = "/var/lib/app/app.db"

# A MySQL/MariaDB database, dumped with --single-transaction. The password comes from the
# environment variable named here (or the --env-file), never from this file:
# [[targets]]
# name = "app-mysql"
# engine = "mysql"
# host = "127.0.0.1"
# user = "backup"
# password_env = "SAFESNAP_MYSQL_PASSWORD"
# databases = ["app"]
# [targets.dump]
# command_prefix = ["docker", "compose", "exec", "-T", "mysql"]   # client in a container

# Files and directories. exclude: globs relative to each listed directory. A SQLite file or
# MySQL data directory found inside is left out (a tar of a live database is not a backup)
# unless another target backs it up or live_databases = "copy".
[[targets]]
name = "files"
engine = "files"
paths = [{files}]
exclude = ["*.log", "cache"]
live_databases = "skip"
"""


def generic_plan(dest: Path, files: Path, output: Path) -> str:
    return GENERIC.format(dest=q(dest), files=q(files), output=output)
