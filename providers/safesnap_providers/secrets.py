"""Reading a secret by the name of the variable that holds it: the environment first, then an
env file. Plans name variables (`token_env`), never values; the value is a SecretStr from here
on, so it never reaches a log line, a repr or an exception. The app (safesnap.config) uses the
same function, adding its process-wide `--env-file` default."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr

from safesnap.errors import ConfigError

DEFAULT_ENV_FILE = Path(".env")


def read_secret(var_name: str, env_file: Path | None = None) -> SecretStr | None:
    """`var_name` from the environment, else from `env_file` (default ./.env), else None."""
    value = os.environ.get(var_name)
    if value is None:
        dotenv = env_file or DEFAULT_ENV_FILE
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
