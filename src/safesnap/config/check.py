"""What `safesnap config check` can know about a valid plan before a run: the things the plan
model cannot see because they live on this host (files, secrets in the environment).

Each problem is one line `file: key: what is wrong`, like the plan model's own problems, and
names variables, never their values. Checks only read: nothing is connected to or created.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from safesnap.config.plan import (
    FilesTarget,
    MysqlTarget,
    Plan,
    SqliteTarget,
    active_env_file,
    resolve_secret,
    unset_secret,
)
from safesnap_providers.digitalocean.config import DigitalOceanSettings
from safesnap_providers.hetzner.config import HetznerSettings


def plan_problems(plan: Plan, where: str) -> list[str]:
    """Every problem found, each prefixed with `where` (the plan file)."""
    found = [*_source_files(plan), *_secrets(plan), *_notify_secrets(plan), *_recipients(plan)]
    return [f"{where}: {key}: {what}" for key, what in found]


def env_file_warnings() -> list[str]:
    """The env file holds secrets: say so when others can read it (it still works)."""
    path = active_env_file()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return []
    if mode & 0o077:
        return [f"{path}: mode {mode:04o} lets other users read its secrets; chmod 600 {path}"]
    return []


def _source_files(plan: Plan) -> Iterator[tuple[str, str]]:
    for i, target in enumerate(plan.targets):
        if isinstance(target, SqliteTarget):
            problem = _file_problem(target.path)
            if problem:
                yield f"targets[{i}].path", problem
        elif isinstance(target, FilesTarget):
            for j, path in enumerate(target.paths):
                if not path.exists():
                    yield f"targets[{i}].paths[{j}]", f"{path}: {os.strerror(2)}"


def _file_problem(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return f"{path}: not a regular file (the live SQLite database file is expected)"
    if not os.access(path, os.R_OK):
        return f"{path}: {os.strerror(13)}"
    return None


def _secrets(plan: Plan) -> Iterator[tuple[str, str]]:
    for i, target in enumerate(plan.targets):
        # A password may be empty (a passwordless user), so only an unset one is a problem.
        password_env = target.password_env if isinstance(target, MysqlTarget) else None
        if password_env and resolve_secret(password_env) is None:
            yield f"targets[{i}].password_env", _unset(password_env)
        token = _token_env(plan, target.snapshot.provider if target.snapshot else None)
        if token is not None and not _has_value(token[1]):
            yield f"targets[{i}].snapshot ({token[0]})", _unset(token[1])
    for i, replica in enumerate(plan.replicas):
        for key in ("access_key_env", "secret_key_env"):
            name = getattr(replica, key)
            if name and not _has_value(name):
                yield f"replicas[{i}].{key}", _unset(name)


def _token_env(plan: Plan, provider: str | None) -> tuple[str, str] | None:
    """(plan key, variable name) of the API token a provider reads; None if it reads none."""
    if provider == "digitalocean":
        do = plan.providers.digitalocean or DigitalOceanSettings()
        return "providers.digitalocean.token_env", do.token_env
    if provider == "hetzner":
        hz = plan.providers.hetzner or HetznerSettings()
        return "providers.hetzner.token_env", hz.token_env
    return None  # AWS uses the AWS credential chain; command providers their own environment


def _has_value(var_name: str) -> bool:
    # Tokens and keys: an empty value is as good as none (the adapters refuse it too).
    secret = resolve_secret(var_name)
    return secret is not None and bool(secret.get_secret_value())


def _unset(var_name: str) -> str:
    return f"{unset_secret(var_name)}; set it in the --env-file, or export it"


def _notify_secrets(plan: Plan) -> Iterator[tuple[str, str]]:
    """Notification URLs named by variable: a missing one would only show at night."""
    entries = [(f"notify[{i}].url_env", entry.url_env) for i, entry in enumerate(plan.notify)]
    if plan.healthcheck is not None:
        entries.append(("healthcheck.url_env", plan.healthcheck.url_env))
    for key, name in entries:
        if name and not _has_value(name):
            yield key, _unset(name)


def _recipients(plan: Plan) -> Iterator[tuple[str, str]]:
    """The plan's shape check cannot see a bech32 checksum; a mistyped key would fail the
    nightly upload. pyrage is imported only for plans with [encryption]."""
    if plan.encryption is None:
        return
    from safesnap.artifacts.encryption import parse_recipients
    from safesnap.errors import ConfigError

    for i, recipient in enumerate(plan.encryption.recipients):
        try:
            parse_recipients([recipient])
        except ConfigError:
            yield f"encryption.recipients[{i}]", "not a valid age public key (bad checksum?)"


# Snapshot storage prices per GB-month (docs/reference/providers.md, "Costs", gives each
# source and the date it was read). full=True: every snapshot is a full image (DigitalOcean,
# Hetzner); False: incremental after the first (EBS), so only the first is sure to be full.
SNAPSHOT_PRICES: dict[str, tuple[float, str, bool]] = {
    "digitalocean": (0.06, "USD", True),
    "hetzner": (0.0119, "EUR", True),
    "aws": (0.05, "USD", False),
}


def snapshot_cost_estimates(plan: Plan) -> list[str]:
    """One line per target with cloud snapshots: how many snapshots the retention keeps per
    volume and what that storage costs per month, for the data size this host can read (the
    SQLite file, the files' total), else per 10 GB. An estimate: providers bill the used or
    compressed size, which this host cannot see."""
    kept = sum(plan.retention.model_dump().values())
    lines = []
    for target in plan.targets:
        spec = target.snapshot
        price = SNAPSHOT_PRICES.get(spec.provider) if spec is not None else None
        if price is None:
            continue
        per_gb, currency, full = price
        size = _readable_gb(target)
        basis = f"{size:.2f} GB read on this host" if size is not None else "per 10 GB of data"
        gb = size if size is not None else 10.0
        monthly = (kept if full else 1) * gb * per_gb
        how = "full images" if full else "incremental: the first is full, later ones add changes"
        lines.append(
            f"{target.name}: retention keeps up to {kept} snapshots per volume ({how}); "
            f"{'about' if full else 'at least'} {monthly:.2f} {currency}/month ({basis}, "
            f"{per_gb:g} {currency}/GB-month)"
        )
    return lines


def _readable_gb(target: object) -> float | None:
    paths: list[Path] = []
    if isinstance(target, SqliteTarget):
        paths = [target.path]
    elif isinstance(target, FilesTarget):
        paths = list(target.paths)
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            return None
    return sum(sizes) / 1e9 if sizes else None
