"""The metrics textfile node_exporter reads, and the JSON report shape."""

from __future__ import annotations

from pathlib import Path

from safesnap.errors import SourceError
from safesnap.run.report import RunReport, StepResult, TargetResult, failed_step, write_metrics


def report() -> RunReport:
    good = TargetResult("tracker", "sqlite", steps=[StepResult("backup", seconds=1.5)], seconds=2)
    bad = TargetResult("db", "mysql", steps=[failed_step("backup", SourceError("down"), 0.1)])
    return RunReport(run_id="r1", plan="prod", kind="nightly", dry_run=False, targets=[good, bad])


def test_metrics_textfile_is_readable_by_node_exporter(tmp_path: Path) -> None:
    path = tmp_path / "safesnap.prom"
    write_metrics(path, report())
    text = path.read_text()
    assert 'safesnap_run_success{plan="prod",target="tracker"} 1' in text
    assert 'safesnap_run_success{plan="prod",target="db"} 0' in text
    assert 'safesnap_run_duration_seconds{plan="prod",target="tracker"} 2.000' in text
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["safesnap.prom"]  # no temp left


def test_report_ok_only_when_every_step_of_every_target_is_ok() -> None:
    data = report().to_dict()
    assert data["ok"] is False
    good, bad = data["targets"]
    assert good["ok"] is True
    assert bad["steps"][0]["error"]["code"] == "source_unusable"
