"""Reading Torrust deployments: which database, which login, which port; the plan text that
follows validates, and never holds a secret's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from safesnap.config.plan import load_plan
from safesnap.errors import ConfigError
from safesnap.init.torrust import MysqlDb, SqliteDb, read_deployment
from safesnap.init.writer import torrust_plan

OVERRIDE = "TORRUST_TRACKER_CONFIG_OVERRIDE_CORE__DATABASE__"


def deployment(root: Path, *, toml: str, env: str, compose: str) -> Path:
    (root / "storage/tracker/etc").mkdir(parents=True)
    (root / "storage/tracker/etc/tracker.toml").write_text(toml)
    (root / ".env").write_text(env)
    (root / "docker-compose.yml").write_text(compose)
    return root


TRACKER = """\
services:
  tracker:
    image: torrust/tracker:develop
    environment:
      - {OVERRIDE}PATH=${{{OVERRIDE}PATH:-/var/lib/torrust/tracker/database/sqlite3.db}}
    volumes:
      - ./storage/tracker/lib:/var/lib/torrust/tracker:Z
      - ./storage/tracker/etc:/etc/torrust/tracker:Z
      - tracker_data:/var/lib/other
"""
# The same service without the environment: the URL in tracker.toml stands.
PLAIN = (
    "\n".join(
        line for line in TRACKER.splitlines() if "environment" not in line and "PATH=" not in line
    )
    + "\n"
)
MYSQL = """\
  db:
    image: mysql:8.4
    ports:
      - "127.0.0.1:3307:3306"
"""


def plan_text(tmp_path: Path, root: Path, provider: str | None = None) -> str:
    text = torrust_plan(read_deployment(root), tmp_path / "dest", provider, "safesnap init")
    (tmp_path / "plan.toml").write_text(text)
    load_plan(tmp_path / "plan.toml")  # raises if the text is not a valid plan
    return text


def test_sqlite_path_from_the_override_through_the_volume(tmp_path: Path) -> None:
    root = deployment(
        tmp_path / "d",
        toml='[core.database]\ndriver = "sqlite3"\npath = "/somewhere/else.db"\n',
        env=f"{OVERRIDE}PATH=/var/lib/torrust/tracker/database/custom.db\n",
        compose=TRACKER.format(OVERRIDE=OVERRIDE),
    )
    found = read_deployment(root).database
    assert isinstance(found, SqliteDb)
    assert found.host_path == root.resolve() / "storage/tracker/lib/database/custom.db"
    text = plan_text(tmp_path, root, provider="hetzner")
    assert '# snapshot = { provider = "hetzner", server_id = 123 }' in text


def test_mysql_root_login_and_a_remapped_port(tmp_path: Path) -> None:
    secret = "root-s3cret-value"
    root = deployment(
        tmp_path / "d",
        toml='[core.database]\ndriver = "mysql"\npath = "mysql://torrust:pw1@db:3306/torrust"\n',
        env=f"MYSQL_ROOT_PASSWORD={secret}\nMYSQL_PASSWORD=pw1\n",
        compose=PLAIN + MYSQL,
    )
    found = read_deployment(root).database
    assert found == MysqlDb("db", "torrust", "root", "MYSQL_ROOT_PASSWORD", 3307, 3306)
    text = plan_text(tmp_path, root, provider="aws")
    assert secret not in text and "pw1" not in text
    assert "port = 3307" in text and 'extra_args = ["--port=3306"]' in text
    assert '"exec", "-T", "db"]' in text


def test_mysql_password_variable_found_by_value_never_copied(tmp_path: Path) -> None:
    root = deployment(
        tmp_path / "d",
        toml='[core.database]\ndriver = "mysql"\npath = "mysql://torrust:p%40ss@db/torrust"\n',
        env="OTHER=x\nTRACKER_DB_PW=p@ss\n",
        compose=PLAIN + MYSQL,
    )
    found = read_deployment(root).database
    assert isinstance(found, MysqlDb)
    assert (found.user, found.password_env) == ("torrust", "TRACKER_DB_PW")
    assert "p@ss" not in plan_text(tmp_path, root)


def test_database_on_a_named_volume_is_a_clear_error(tmp_path: Path) -> None:
    root = deployment(
        tmp_path / "d",
        toml='[core.database]\ndriver = "sqlite3"\npath = "/var/lib/other/tracker.db"\n',
        env=f"{OVERRIDE}PATH=/var/lib/other/tracker.db\n",
        compose=TRACKER.format(OVERRIDE=OVERRIDE),
    )
    with pytest.raises(ConfigError, match="not on a bind mount"):
        read_deployment(root)
