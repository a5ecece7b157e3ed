"""Reading a secret by the name of the variable that holds it: the environment first, then an
env file. Plans name variables (`token_env`), never values; the value is a SecretStr from here
on, so it never reaches a log line, a repr or an exception. The app (safesnap.config) uses the
same functions, so a provider token and a MySQL password follow one rule."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr

from safesnap.errors import ConfigError

DEFAULT_ENV_FILE = Path(".env")
# The env file of this process (`--env-file`). Process-wide on purpose: secrets are read deep
# inside engines, quiesce and providers (a MySQL password when the dump starts, again when a
# run verifies the artifact), often on other threads, long after the command parsed its
# options; one setting made by the CLI reaches all of them. Functions that take an explicit
# `env_file` still honour it first.
_process_env_file: Path | None = None


def use_env_file(path: Path | None) -> None:
    """Read secrets and SAFESNAP_* settings from `path` (None: ./.env) for this process.
    Raises ConfigError when `path` is given but cannot be read, so a cron job with a wrong
    path fails with that path in the message instead of a missing password later."""
    if path is not None:
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"env file {path}: {exc.strerror or exc}",
                hint="Pass --env-file with the path of a readable file (mode 0600).",
            ) from None
        path = path.absolute()
    global _process_env_file  # one setting for the whole process, see above
    _process_env_file = path


def active_env_file() -> Path:
    """The env file secrets are read from: the one given with --env-file, else ./.env."""
    return _process_env_file or DEFAULT_ENV_FILE


def read_secret(var_name: str, env_file: Path | None = None) -> SecretStr | None:
    """`var_name` from the environment, else from `env_file` (default: the process's
    --env-file, else ./.env), else None."""
    value = os.environ.get(var_name)
    if value is None:
        dotenv = env_file or active_env_file()
        if dotenv.is_file():
            value = dotenv_values(dotenv).get(var_name)
    return SecretStr(value) if value is not None else None


def require_token(var_name: str, env_file: Path | None, *, provider: str) -> str:
    """An API token that must be set: its value, or a ConfigError naming the variable (never
    the value) and how to set it."""
    token = read_secret(var_name, env_file)
    if token is None or not token.get_secret_value():
        raise ConfigError(
            f"{provider} token not set: environment variable {var_name} is empty",
            hint=f"Export {var_name} (or put it in the --env-file / .env, mode 0600).",
        )
    return token.get_secret_value()
