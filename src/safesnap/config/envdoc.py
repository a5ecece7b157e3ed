"""Generate `.env.example` from the settings model, so it can never drift from the code.

A test compares the committed file with this output; `safesnap config env-example > .env.example`
regenerates it after a settings change.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from safesnap.config.plan import ENV_PREFIX, Plan

HEADER = """\
# safesnap settings from the environment (generated from the settings model by
# `safesnap config env-example`; do not edit by hand).
#
# Every plan key can be set as SAFESNAP_<SECTION>__<KEY>; these override the TOML plan file.
# List sections (targets, replicas) are whole JSON values, e.g.
#   SAFESNAP_TARGETS='[{"name": "tracker", "engine": "sqlite", "path": "/data/tracker.db"}]'
# Secrets are never plan values: the plan names the variable (password_env, token_env,
# access_key_env, secret_key_env) and safesnap reads it from the environment or this file.
# safesnap reads ./.env, or the file given with --env-file (use that under cron or systemd,
# whose working directory is not yours). Variables set in the environment win over the file.
# Values in this file stay inside safesnap: they are not exported to the programs it runs
# (the MySQL password reaches mariadb-dump only through a 0600 option file).
"""

SECRETS = """\
# --- secrets (names are examples and defaults the plan refers to; keep this file 0600) ---
# SAFESNAP_MYSQL_PASSWORD=
# DIGITALOCEAN_TOKEN=
# HCLOUD_TOKEN=
# AWS credentials come from the usual AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, instance role).
"""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (
            isinstance(arg, type)
            and issubclass(arg, BaseModel)
            and get_origin(annotation) is not list
        ):
            return arg
    return None


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return ""
    value = field.get_default(call_default_factory=True)
    if value is None or isinstance(value, BaseModel):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[]" if not value else str(value)
    return str(value)


def _lines(model: type[BaseModel], prefix: str, section: str = "") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name.upper()}"
        nested = _model_of(field.annotation)
        if nested is not None and get_origin(field.annotation) is not list:
            dotted = f"{section}.{name}" if section else name
            out.append(f"\n# [{dotted}]")
            out.extend(_lines(nested, f"{key}__", dotted))
            continue
        if field.description:
            out.append(f"# {field.description}")
        elif get_origin(field.annotation) is list:
            out.append(f"# [[{name}]] tables as one JSON list (see docs/reference/plan.md)")
        out.append(f"# {key}={_default(field)}")
    return out


def env_example() -> str:
    body = "\n".join(_lines(Plan, ENV_PREFIX))
    return f"{HEADER}\n{body}\n\n{SECRETS}"
