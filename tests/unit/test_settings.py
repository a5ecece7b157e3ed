"""The plan contract: the TOML shapes from the issues load as written; errors name file and key;
environment and .env override the file; secrets are read by variable name only."""

from __future__ import annotations

from pathlib import Path

import pytest

from safesnap.config.envdoc import env_example
from safesnap.config.plan import MysqlTarget, SqliteTarget, load_plan, resolve_secret
from safesnap.errors import ConfigError
from safesnap_providers.aws.config import AwsSnapshot
from safesnap_providers.command.config import CommandSnapshot
from safesnap_providers.hetzner.config import HetznerSnapshot

FOUNDATION_PLAN = """
[destination]
path = "/mnt/backup-volume/safesnap"   # the attached volume

[retention]
keep_last = 3
keep_daily = 7
keep_weekly = 4
keep_monthly = 6

[[targets]]
name = "tracker"
engine = "sqlite"
path = "/opt/torrust/storage/tracker/lib/database/tracker.db"
"""

MYSQL_TARGET = """
[[targets]]
name = "tracker-mysql"
engine = "mysql"
host = "127.0.0.1"
port = 3306
user = "root"
password_env = "SAFESNAP_MYSQL_PASSWORD"   # the name of the variable, never the password itself
databases = ["torrust_tracker"]
quiesce = "lock"            # or "dump"
lock_wait_timeout = 1.0     # seconds per attempt
lock_attempts = 3
long_query_seconds = 10     # do not lock while a query older than this runs
snapshot = { provider = "command", create = "lvcreate --snapshot --name {name} --size 1G vg/mysql" }
"""

PROVIDERS = """
[providers.aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:5000"

[providers.digitalocean]
token_env = "DIGITALOCEAN_TOKEN"

[providers.hetzner]
token_env = "HCLOUD_TOKEN"

[[targets]]
name = "tracker-aws"
engine = "sqlite"
path = "/opt/torrust/storage/tracker/lib/database/tracker.db"
snapshot = { provider = "aws", volume_ids = ["vol-0abc"], copy_to = ["eu-west-1"] }

[[targets]]
name = "tracker-hetzner"
path = "/data/t.db"
snapshot = { provider = "hetzner", server_id = 42 }
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's directory
    for key in list(__import__("os").environ):
        if key.startswith("SAFESNAP_"):
            monkeypatch.delenv(key)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_issue_plan_shapes_load_as_written(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, FOUNDATION_PLAN + MYSQL_TARGET + PROVIDERS))
    sqlite, mysql, aws, hetzner = plan.targets
    assert isinstance(sqlite, SqliteTarget)
    assert sqlite.path == Path("/opt/torrust/storage/tracker/lib/database/tracker.db")
    assert plan.retention.keep_daily == 7
    assert isinstance(mysql, MysqlTarget)
    assert mysql.quiesce == "lock" and mysql.lock_attempts == 3
    assert isinstance(mysql.snapshot, CommandSnapshot)
    assert isinstance(aws.snapshot, AwsSnapshot) and aws.snapshot.copy_to == ["eu-west-1"]
    assert isinstance(hetzner.snapshot, HetznerSnapshot) and hetzner.snapshot.server_id == 42
    assert plan.providers.aws is not None
    assert plan.providers.aws.endpoint_url == "http://127.0.0.1:5000"


def test_every_problem_is_listed_with_file_and_key(tmp_path: Path) -> None:
    bad = """
[destination]
pth = "/x"
[[targets]]
name = "db"
engine = "mysql"
port = "not-a-port"
databases = []
[[targets]]
name = "db"
path = "/x.db"
snapshot = { provider = "hetzner", volume_ids = ["123"] }
"""
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    problems = "\n".join(info.value.problems)
    assert f"{path}: destination.path: Field required" in problems
    assert "destination.pth: Extra inputs are not permitted" in problems
    assert "targets[0].port" in problems
    assert "targets[0].databases" in problems
    assert "targets[1].snapshot" in problems and "no volume snapshot API" in problems


def test_compression_threads_default_range_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, FOUNDATION_PLAN)
    assert load_plan(path).destination.compression_threads == 1  # the database keeps a core
    monkeypatch.setenv("SAFESNAP_DESTINATION__COMPRESSION_THREADS", "0")
    assert load_plan(path).destination.compression_threads == 0  # one per core
    for bad in ("17", "-1"):
        monkeypatch.setenv("SAFESNAP_DESTINATION__COMPRESSION_THREADS", bad)
        with pytest.raises(ConfigError) as info:
            load_plan(path)
        assert "destination.compression_threads" in "\n".join(info.value.problems)


def test_duplicate_target_names_rejected(tmp_path: Path) -> None:
    text = FOUNDATION_PLAN + '\n[[targets]]\nname = "tracker"\npath = "/other.db"\n'
    with pytest.raises(ConfigError) as info:
        load_plan(write(tmp_path, text))
    assert "repeated: tracker" in "\n".join(info.value.problems)


def test_lock_mode_needs_a_snapshot_step(tmp_path: Path) -> None:
    text = FOUNDATION_PLAN + MYSQL_TARGET.replace(
        'snapshot = { provider = "command", create = "lvcreate --snapshot --name {name} '
        '--size 1G vg/mysql" }',
        "",
    )
    with pytest.raises(ConfigError) as info:
        load_plan(write(tmp_path, text))
    assert "needs a snapshot step" in "\n".join(info.value.problems)


def test_digitalocean_volume_snapshots_cannot_be_copied(tmp_path: Path) -> None:
    text = FOUNDATION_PLAN.replace(
        'tracker.db"',
        'tracker.db"\nsnapshot = { provider = "digitalocean", '
        'volume_ids = ["v1"], copy_to = ["fra1"] }',
    )
    with pytest.raises(ConfigError) as info:
        load_plan(write(tmp_path, text))
    assert "cannot change region" in "\n".join(info.value.problems)


def test_environment_and_dotenv_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, FOUNDATION_PLAN)
    (tmp_path / ".env").write_text(
        "SAFESNAP_RETENTION__KEEP_LAST=9\nSAFESNAP_MYSQL_PASSWORD=not-a-plan-field\n"
    )
    plan = load_plan(path)
    assert plan.retention.keep_last == 9  # .env beats the file
    monkeypatch.setenv("SAFESNAP_DESTINATION__PATH", "/elsewhere")
    monkeypatch.setenv("SAFESNAP_RETENTION__KEEP_LAST", "1")
    plan = load_plan(path)
    assert plan.destination.path == Path("/elsewhere")
    assert plan.retention.keep_last == 1  # the environment beats .env


def test_secrets_resolve_by_name_from_env_or_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("SAFESNAP_MYSQL_PASSWORD=from-dotenv\n")
    secret = resolve_secret("SAFESNAP_MYSQL_PASSWORD")
    assert secret is not None and secret.get_secret_value() == "from-dotenv"
    assert "from-dotenv" not in repr(secret) and "from-dotenv" not in str(secret)
    monkeypatch.setenv("SAFESNAP_MYSQL_PASSWORD", "from-env")
    secret = resolve_secret("SAFESNAP_MYSQL_PASSWORD")
    assert secret is not None and secret.get_secret_value() == "from-env"
    assert resolve_secret("SAFESNAP_NOT_SET_ANYWHERE") is None


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_plan(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan(write(tmp_path, "[destination\npath = 1"))


def test_env_example_is_current() -> None:
    committed = (Path(__file__).parents[2] / ".env.example").read_text()
    assert committed == env_example(), "regenerate: safesnap config env-example > .env.example"


def test_retention_that_could_exceed_digitalocean_volume_cap_is_rejected(tmp_path: Path) -> None:
    text = FOUNDATION_PLAN.replace("keep_monthly = 6", "keep_monthly = 12").replace(
        'tracker.db"', 'tracker.db"\nsnapshot = { provider = "digitalocean", volume_ids = ["v1"] }'
    )
    with pytest.raises(ConfigError) as info:
        load_plan(write(tmp_path, text))
    assert "up to 26 snapshots per volume" in "\n".join(info.value.problems)
    load_plan(write(tmp_path, text.replace("keep_monthly = 12", "keep_monthly = 11")))


def test_compression_threads_reach_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safesnap.engines import BackupContext
    from safesnap.run import pipeline

    seen: list[BackupContext] = []

    class Engine:
        def backup(self, target: object, ctx: BackupContext) -> None:
            seen.append(ctx)

    monkeypatch.setattr(pipeline, "get_engine", lambda name: Engine())
    plan = load_plan(write(tmp_path, FOUNDATION_PLAN + "\n"))
    plan = plan.model_copy(
        update={"destination": plan.destination.model_copy(update={"compression_threads": 2})}
    )
    pipeline._backup(plan, plan.targets[0], pipeline.RunRequest(), "run", tmp_path)
    assert seen[0].threads == 2
