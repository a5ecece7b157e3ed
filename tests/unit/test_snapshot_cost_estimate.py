"""`config check` estimates the snapshot storage a plan's retention keeps (issue #9): the
DigitalOcean default retention keeps up to ~20 full images per volume, which costs real money."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from safesnap.cli.app import main
from safesnap.config.check import snapshot_cost_estimates
from safesnap.config.plan import load_plan, use_env_file


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for key in list(os.environ):
        if key.startswith("SAFESNAP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "t")
    yield
    use_env_file(None)


def _plan(tmp_path: Path, db_bytes: int) -> Path:
    db = tmp_path / "tracker.db"
    with db.open("wb") as fh:
        fh.truncate(db_bytes)  # a sparse file: its size is what config check can read
    path = tmp_path / "plan.toml"
    path.write_text(
        f'plan = "cost"\n[destination]\npath = "{tmp_path / "dest"}"\n'
        "[retention]\nkeep_last = 2\nkeep_daily = 7\nkeep_weekly = 4\nkeep_monthly = 6\n"
        f'[[targets]]\nname = "tracker"\npath = "{db}"\n'
        'snapshot = { provider = "digitalocean", volume_ids = ["v1"] }\n'
        f'[[targets]]\nname = "other"\npath = "{tmp_path / "missing.db"}"\n'
        'snapshot = { provider = "aws", volume_ids = ["vol-1"], keep_days = 3 }\n'
    )
    return path


def test_estimate_uses_the_retention_and_the_size_this_host_reads(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path, 5 * 10**9), env_file=tmp_path / "none.env")
    tracker, other = snapshot_cost_estimates(plan)
    # 19 full DigitalOcean images of 5 GB at $0.06/GB-month.
    assert "up to 19 snapshots per volume (full images)" in tracker
    assert "about 5.70 USD/month (5.00 GB read on this host" in tracker
    # AWS: incremental; the size is unknown here, so per 10 GB, and only the first is sure.
    assert "at least 0.50 USD/month (per 10 GB of data" in other


def test_config_check_prints_and_returns_the_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path, 10**9)
    (tmp_path / "missing.db").write_bytes(b"")
    code: object = 0
    try:
        main(["config", "check", "--config", str(plan), "--json"])
    except SystemExit as exc:  # typer may or may not exit explicitly on success
        code = exc.code or 0
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert any("1.14 USD/month" in line for line in report["snapshot_cost_estimates"])
