"""The shape of a manifest, checked before anything trusts a field of it.

A manifest is JSON that anyone with write access to the destination can edit; verify, restore,
list and prune read fields from it (sizes, hashes, per-file records, row counts). A field of the
wrong type must end as one `artifact_invalid` line, never as a TypeError deep inside an engine.

Every field checked here has been written, with this type, by every safesnap version that wrote
`safesnap-manifest/1` (the fields date from the first artifact commit), so old artifacts still
pass; unknown extra fields are allowed (newer writers may add some). Per-engine sections are
checked only for the fields the engines read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safesnap.errors import ArtifactError

_SHA256 = r"^[0-9a-f]{64}$"


class _Model(BaseModel):
    # strict: "5" is not an int and 1 is not a str; extra keys belong to newer writers.
    model_config = ConfigDict(strict=True, extra="allow")


class _Common(_Model):
    format: str
    artifact: str
    target: str
    engine: str
    kind: str
    compression: str
    created_at: str
    sha256: str = Field(pattern=_SHA256)
    bytes: int = Field(ge=0)
    source_sha256: str = Field(pattern=_SHA256)
    source_bytes: int = Field(ge=0)
    verified: bool = False
    protected_until: str | None = None


class _Sqlite(_Model):
    row_counts: dict[str, int] | None = None


class _FileRecord(_Model):
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=_SHA256)


class _Files(_Model):
    files: dict[str, _FileRecord] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)  # symlinks (written since 2026-12)


class _MysqlMeta(_Model):
    layout: str
    databases: list[str]
    row_counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    connection: dict[str, str | int | None] | None = None


class _Mysql(_Model):
    mysql: _MysqlMeta | None = None  # missing: the engine itself says it is not its dump


_ENGINES: dict[str, type[_Model]] = {"sqlite": _Sqlite, "files": _Files, "mysql": _Mysql}


def check_manifest(data: Mapping[str, Any], path: Path) -> None:
    """ArtifactError naming the first bad field (and how many more) if `data` is malformed."""
    models: list[type[_Model]] = [_Common]
    name = data.get("engine")
    if isinstance(name, str) and name in _ENGINES:
        models.append(_ENGINES[name])
    for model in models:
        try:
            model.model_validate(dict(data))
        except ValidationError as exc:
            raise _invalid(exc, path) from None


def _invalid(exc: ValidationError, path: Path) -> ArtifactError:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ArtifactError(
        f"manifest {path}: field {where}: {first['msg']}{more}",
        hint="The manifest was edited or damaged; this artifact cannot be trusted.",
    )
