"""The plan: what to back up, where to, how long to keep it.

Sources, highest priority first: `SAFESNAP_*` environment variables (nested keys joined with
`__`, e.g. `SAFESNAP_DESTINATION__PATH`), the env file (`--env-file`, else `./.env`), then the
TOML plan file. Every model forbids unknown keys, so a typo is an error, not a silently
ignored setting. Secrets never sit in the plan: it names the environment variable that holds
them (`password_env`, `token_env`) and `resolve_secret` reads it as a `SecretStr`, from the
environment or the same env file. The env file's values are never copied into `os.environ`,
so no child process (the dump client, a command provider) inherits a secret from it.
"""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from safesnap.artifacts.codecs import LEVEL_RANGES
from safesnap.artifacts.encryption import RECIPIENT as _AGE_RECIPIENT
from safesnap.config.notify import Healthcheck, Notify
from safesnap.config.targets import FilesTarget as FilesTarget
from safesnap.config.targets import MysqlDumpOptions as MysqlDumpOptions
from safesnap.config.targets import MysqlTarget as MysqlTarget
from safesnap.config.targets import MysqlTls as MysqlTls
from safesnap.config.targets import SqliteTarget as SqliteTarget
from safesnap.config.targets import Strict as Strict
from safesnap.config.targets import Target as Target
from safesnap.errors import ConfigError
from safesnap_providers.aws.config import AwsSettings
from safesnap_providers.digitalocean.config import DigitalOceanSettings
from safesnap_providers.hetzner.config import HetznerSettings
from safesnap_providers.secrets import active_env_file as active_env_file
from safesnap_providers.secrets import read_secret
from safesnap_providers.secrets import use_env_file as use_env_file

Compression = Literal["zstd", "gzip", "xz", "none"]
ENV_PREFIX = "SAFESNAP_"


class Destination(Strict):
    path: Path = Field(description="Directory on the attached volume where artifacts are written.")
    compression: Compression = Field("zstd", description="Artifact compression.")
    compression_level: int | None = Field(
        None,
        description="Compression level; default is the codec's own. zstd 1-22, gzip 1-9, xz 0-9.",
    )
    compression_threads: int = Field(
        1,
        ge=0,
        le=16,
        description=(
            "zstd compression threads (0 = one per core; gzip/xz ignore it). More finishes "
            "sooner but takes CPU from the database being backed up."
        ),
    )

    @field_validator("compression_level")
    @classmethod
    def _level_fits_codec(cls, level: int | None, info: ValidationInfo) -> int | None:
        # The ranges compression.check_codec enforces when writing, so a level the codec
        # rejects fails `config check` and the start of a run, not the backup step at night.
        codec = info.data.get("compression")
        if level is not None and codec in LEVEL_RANGES and codec != "none":
            low, high = LEVEL_RANGES[codec]
            if not low <= level <= high:
                raise ValueError(f"{level} is out of range for {codec} ({low}-{high})")
        return level


class Retention(Strict):
    keep_last: int = Field(3, ge=0, description="Always keep the newest N backups.")
    keep_daily: int = Field(
        7, ge=0, description="Keep the newest backup of each of the last N days."
    )
    keep_weekly: int = Field(4, ge=0, description="Keep one backup for each of the last N weeks.")
    keep_monthly: int = Field(6, ge=0, description="Keep one backup for each of the last N months.")
    keep_yearly: int = Field(0, ge=0, description="Keep one backup for each of the last N years.")


class Providers(Strict):
    """`[providers.<name>]`: each provider's own settings model (safesnap_providers/<name>/)."""

    aws: AwsSettings | None = None
    digitalocean: DigitalOceanSettings | None = None
    hetzner: HetznerSettings | None = None


class ObjectStoreReplica(Strict):
    """An S3-compatible bucket that receives a copy of every artifact (cross-region DR)."""

    name: str
    bucket: str
    prefix: str = "safesnap"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_env: str | None = None
    secret_key_env: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        description="S3 addressing: `path` for MinIO and stores without bucket subdomains.",
    )
    retention: Retention | None = Field(
        None, description="Retention on this bucket; default: the plan's [retention]."
    )


class Encryption(Strict):
    """`[encryption]`: age public keys; every artifact is encrypted before it leaves the host."""

    recipients: list[str] = Field(
        min_length=1, description="age public keys (age1...); the plan holds no secret."
    )

    @field_validator("recipients")
    @classmethod
    def _age_keys(cls, recipients: list[str]) -> list[str]:
        bad = [r for r in recipients if not _AGE_RECIPIENT.match(r.strip())]
        if bad:
            raise ValueError(f"not an age public key (age1...): {', '.join(bad)}")
        return [r.strip() for r in recipients]


class RunOptions(Strict):
    lock_wait: float = Field(
        0, ge=0, description="Seconds a run waits for another run's lock before failing."
    )
    verify: bool = Field(
        True, description="Verify each new artifact restores (decompress + integrity check)."
    )
    report_file: Path | None = Field(None, description="Also write the JSON run report here.")
    metrics_file: Path | None = Field(
        None, description="node_exporter textfile (.prom) with per-target success and duration."
    )
    drill: str = Field(
        "off",
        description="How often a run also drills (restores each newest artifact into a scratch "
        "place and checks it): off, daily, weekly, monthly, '3d', or weekdays like 'sun'.",
    )
    drill_report_file: Path | None = Field(
        None, description="Also write the JSON drill report here (`safesnap drill` and runs)."
    )

    @field_validator("drill")
    @classmethod
    def _drill_cadence(cls, value: str) -> str:
        from safesnap.cadence import parse_cadence

        parse_cadence(value)  # the error names the accepted forms
        return value


_plan_file: ContextVar[Path | None] = ContextVar("_plan_file", default=None)
_env_file: ContextVar[Path | None] = ContextVar("_env_file", default=None)


class _PlanDotEnv(DotEnvSettingsSource):
    """`.env` source that ignores variables the plan does not define.

    A `.env` holds secrets too (SAFESNAP_MYSQL_PASSWORD, HCLOUD_TOKEN, ...) and those are read by
    name through `resolve_secret`, not as plan fields; pydantic-settings would flag them as extra.
    """

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        fields = set(self.settings_cls.model_fields)
        return {key: value for key, value in data.items() if key in fields}


class Plan(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        env_file=".env",
    )

    plan: str = Field("default", description="Name of this plan; labels every resource it creates.")
    destination: Destination
    retention: Retention = Field(default_factory=Retention)
    targets: list[Target] = Field(min_length=1)
    providers: Providers = Field(default_factory=Providers)
    replicas: list[ObjectStoreReplica] = Field(default_factory=list)
    run: RunOptions = Field(default_factory=RunOptions)
    notify: list[Notify] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    encryption: Encryption | None = None

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, targets: list[Any]) -> list[Any]:
        names = [t.name for t in targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique; repeated: {', '.join(dupes)}")
        return targets

    @model_validator(mode="after")
    def _retention_fits_snapshot_caps(self) -> Plan:
        # Retention keeps at most this many runs; a provider with a cap (DigitalOcean: 25 per
        # volume) refuses the snapshot after it, so the plan says so before anything runs.
        most = sum(self.retention.model_dump().values())
        for target in self.targets:
            spec = target.snapshot
            cap = spec.max_snapshots_per_volume() if spec is not None else None
            if cap is not None and most > cap:
                raise ValueError(
                    f"target {target.name}: retention can keep up to {most} snapshots per volume, "
                    f"but {spec.provider} allows {cap}; lower the keep_* counts"  # type: ignore[union-attr]
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 (replaced by _PlanDotEnv)
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        sources.append(_PlanDotEnv(settings_cls, env_file=_env_file.get() or active_env_file()))
        plan_file = _plan_file.get()
        if plan_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=plan_file))
        return tuple(sources)


def load_plan(path: Path | None, *, env_file: Path | None = None, **overrides: Any) -> Plan:
    """Load and validate a plan; raise ConfigError listing every problem with file and key."""
    if path is not None:
        _check_toml(path)
    token_plan, token_env = _plan_file.set(path), _env_file.set(env_file)
    try:
        return Plan(**overrides)
    except ValidationError as exc:
        where = str(path) if path is not None else "settings"
        problems = [f"{where}: {_loc(err['loc'])}: {_msg(err['msg'])}" for err in exc.errors()]
        raise ConfigError(
            f"{where}: {len(problems)} problem(s) in the plan",
            problems=problems,
            hint="Fix the keys listed; docs/reference/plan.md shows the shape of a plan.",
        ) from None
    finally:
        _plan_file.reset(token_plan)
        _env_file.reset(token_env)


def _check_toml(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(
            f"plan file not found: {path}", hint="Pass --config with an existing file."
        )
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _msg(message: str) -> str:
    # pydantic prefixes the text of every ValueError a validator raises; it says nothing.
    return message.removeprefix("Value error, ")


def _loc(loc: tuple[int | str, ...]) -> str:
    """('targets', 0, 'mysql', 'port') -> 'targets[0].port' (the union tag is noise to a user)."""
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS and (isinstance(previous, int) or previous == "snapshot"):
            pass
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out or "(plan)"


_UNION_TAGS = {"sqlite", "mysql", "files", "aws", "digitalocean", "hetzner", "command", "external"}


def resolve_secret(var_name: str, *, env_file: Path | None = None) -> SecretStr | None:
    """The value of the environment variable `var_name`, else its entry in the env file
    (`env_file`, else the process's --env-file, else ./.env); never logged, never exported."""
    return read_secret(var_name, env_file)


def unset_secret(var_name: str) -> str:
    """The message for a secret that was looked for and not found: names only, no value."""
    return f"environment variable {var_name} is not set (nor in {active_env_file().absolute()})"
