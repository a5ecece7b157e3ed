"""`safesnap config check`: what it can know before a run (source files, secrets by name,
compression levels), every problem at once with file and key, exit 2; through cli.main."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from safesnap.artifacts.codecs import check_codec
from safesnap.cli.app import main
from safesnap.config.plan import Destination, use_env_file
from safesnap.errors import ConfigError

SECRET = "s3cr3t-value-never-printed"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code: Any = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    try:
        return int(code), json.loads(out), err
    except json.JSONDecodeError:
        return int(code), out, err


@pytest.fixture(autouse=True)
def _cron_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """cwd with no .env, none of the test's variables in the environment."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for key in list(os.environ):
        if key.startswith(("SAFESNAP_", "SSTEST_")) or key in ("HCLOUD_TOKEN", "MYSQL_PWD"):
            monkeypatch.delenv(key)
    yield
    use_env_file(None)  # --env-file is process-wide; later in-process tests expect ./.env


def sqlite_file(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    return path


def plan(tmp_path: Path, db: Path, *, level: str = "") -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(
        f'plan = "check"\n[destination]\npath = "{tmp_path / "dest"}"\ncompression = "gzip"\n'
        f"{level}\n"
        f'[[targets]]\nname = "tracker"\npath = "{db}"\n'
        '[[targets]]\nname = "db"\nengine = "mysql"\ndatabases = ["torrust"]\n'
        'password_env = "SSTEST_MYSQL_PW"\nsnapshot = { provider = "hetzner", server_id = 7 }\n'
        '[[replicas]]\nname = "offsite"\nbucket = "b"\n'
        'access_key_env = "SSTEST_KEY_ID"\nsecret_key_env = "SSTEST_KEY"\n'
    )
    return path


def env_file(directory: Path, mode: int = 0o600) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "safesnap.env"
    path.write_text(
        f"SSTEST_MYSQL_PW={SECRET}\nHCLOUD_TOKEN={SECRET}\n"
        f"SSTEST_KEY_ID=AKIDEXAMPLE\nSSTEST_KEY={SECRET}\n"
    )
    path.chmod(mode)
    return path


def test_every_problem_listed_with_file_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = plan(tmp_path, tmp_path / "missing.db")
    code, out, err = cli(capsys, "config", "check", "--config", str(config), "--json")
    assert code == 2, err
    assert out["ok"] is False and out["error"]["code"] == "config_invalid"
    problems = out["error"]["problems"]
    keys = [p.split(": ")[1] for p in problems]
    assert keys == [
        "targets[0].path",
        "targets[1].password_env",
        "targets[1].snapshot (providers.hetzner.token_env)",
        "replicas[0].access_key_env",
        "replicas[0].secret_key_env",
    ]
    assert all(p.startswith(f"{config}: ") for p in problems)
    assert "No such file or directory" in problems[0]
    assert "SSTEST_MYSQL_PW is not set" in problems[1] and "HCLOUD_TOKEN" in problems[2]

    code, out, err = cli(capsys, "config", "check", "--config", str(config))
    assert (code, out) == (2, "")
    assert "targets[1].password_env" in err and "5 problem(s)" in err


def test_env_file_in_another_directory_satisfies_the_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = plan(tmp_path, sqlite_file(tmp_path / "live.db"))
    secrets = env_file(tmp_path / "etc")
    code, out, err = cli(
        capsys, "config", "check", "--config", str(config), "--env-file", str(secrets), "--json"
    )
    assert code == 0, err
    assert (out["ok"], out["problems"], out["warnings"]) == (True, [], [])
    assert SECRET not in json.dumps(out) + err
    code, out, err = cli(capsys, "config", "check", "--config", str(config), "--env-file",
                         str(secrets))  # fmt: skip
    assert code == 0, err
    assert "plan 'check' is valid: 2 target(s)" in out and "valid" not in err


def test_a_readable_env_file_is_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = plan(tmp_path, sqlite_file(tmp_path / "live.db"))
    secrets = env_file(tmp_path / "etc", mode=0o644)
    code, out, _ = cli(capsys, "config", "check", "-c", str(config), "--env-file", str(secrets),
                       "--json")  # fmt: skip
    assert code == 0
    assert out["warnings"] == [
        f"{secrets}: mode 0644 lets other users read its secrets; chmod 600 {secrets}"
    ]


def test_missing_env_file_names_the_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = plan(tmp_path, sqlite_file(tmp_path / "live.db"))
    code, out, _ = cli(capsys, "config", "check", "-c", str(config), "--env-file",
                       str(tmp_path / "nope.env"), "--json")  # fmt: skip
    assert code == 2
    assert out["error"]["message"] == f"env file {tmp_path / 'nope.env'}: No such file or directory"


def test_a_directory_is_not_a_sqlite_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = plan(tmp_path, tmp_path)
    secrets = env_file(tmp_path / "etc")
    code, out, _ = cli(capsys, "config", "check", "-c", str(config), "--env-file", str(secrets),
                       "--json")  # fmt: skip
    assert code == 2
    [problem] = out["error"]["problems"]
    assert "targets[0].path" in problem and "not a regular file" in problem


def test_compression_level_the_codec_rejects_fails_check_and_run_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = plan(tmp_path, sqlite_file(tmp_path / "live.db"), level="compression_level = 15")
    secrets = env_file(tmp_path / "etc")
    code, out, _ = cli(capsys, "config", "check", "-c", str(config), "--env-file", str(secrets),
                       "--json")  # fmt: skip
    assert code == 2
    assert out["error"]["problems"] == [
        f"{config}: destination.compression_level: 15 is out of range for gzip (1-9)"
    ]
    code, out, _ = cli(capsys, "run", "-c", str(config), "--env-file", str(secrets), "--json")
    assert (code, out["error"]["code"]) == (2, "config_invalid")
    assert not (tmp_path / "dest").exists()  # nothing ran, nothing was written


@pytest.mark.parametrize("codec", ["zstd", "gzip", "xz"])
def test_plan_accepts_exactly_the_levels_the_codec_accepts(codec: str) -> None:
    for level in range(-3, 25):
        try:
            check_codec(codec, level)
            codec_ok = True
        except ConfigError:
            codec_ok = False
        try:
            Destination(path=Path("/d"), compression=codec, compression_level=level)
            plan_ok = True
        except ValueError:
            plan_ok = False
        assert plan_ok == codec_ok, (codec, level)
