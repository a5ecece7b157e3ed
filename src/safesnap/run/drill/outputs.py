"""What a finished drill leaves: the report file, the metrics, and when it ran (the cadence).

- `[run] drill_report_file`: the JSON drill report, replaced atomically;
- `[run] metrics_file`: the `safesnap_drill_*` families (run/textfile.py keeps the run's lines),
  per target: success of the last drill, when it ended, when a drill last succeeded (kept
  across failed drills, so "no drill succeeded for 8 days" is one alert rule), restored bytes
  and duration;
- `<destination>/.safesnap-drill-state.json`: when the last drill ran, read by the run's cadence.
Each output is written on its own: one that fails never stops the others.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from safesnap.config.plan import Plan
from safesnap.errors import SafesnapError
from safesnap.output import log
from safesnap.run.report import ReportWriter, RunReport, write_each, write_report_file
from safesnap.run.textfile import own_samples, read_lines, rewrite

STATE_NAME = ".safesnap-drill-state.json"
PREFIX = "safesnap_drill_"
FAMILIES = {
    "safesnap_drill_success": ("gauge", "1 when the last drill of the target succeeded."),
    "safesnap_drill_timestamp_seconds": ("gauge", "When the last drill of the target ended."),
    "safesnap_drill_last_success_timestamp_seconds": (
        "gauge",
        "When a drill of the target last succeeded.",
    ),
    "safesnap_drill_restored_bytes": ("gauge", "Bytes restored by the last drill of the target."),
    "safesnap_drill_duration_seconds": ("gauge", "How long the last drill of the target took."),
}


def write_drill_outputs(plan: Plan, report: RunReport) -> list[SafesnapError]:
    """State, metrics and report file; returns the failures (each logged)."""
    writers: list[tuple[Path | None, ReportWriter]] = [
        (plan.destination.path / STATE_NAME, write_state),
        (plan.run.metrics_file, write_drill_metrics),
        (plan.run.drill_report_file, write_report_file),
    ]
    return write_each(report, writers, what="drill")


def write_state(path: Path, report: RunReport) -> None:
    from safesnap.artifacts.atomic import atomic_write

    state = {"last_drill_at": datetime.now().astimezone().isoformat(), "ok": report.ok}
    state["run_id"] = report.run_id
    with atomic_write(path, overwrite=True) as out:
        out.write(json.dumps(state).encode())


def last_drill(dest: Path) -> datetime | None:
    """When the last drill ran (local time), None if never or the state is unreadable."""
    try:
        state = json.loads((dest / STATE_NAME).read_text(encoding="utf-8"))
        return datetime.fromisoformat(str(state["last_drill_at"])).astimezone()
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable %s: %s", dest / STATE_NAME, exc)
        return None


def write_drill_metrics(path: Path, report: RunReport) -> None:
    """Replace this drill's targets' series; other targets' last drill stays in the file."""
    samples = own_samples(read_lines(path), PREFIX)
    now = f"{time.time():.0f}"
    for target in report.targets:
        labels = f'{{plan="{report.plan}",target="{target.name}"}}'
        for series in [s for s in samples if s.endswith(labels) and "last_success" not in s]:
            del samples[series]
        samples[f"safesnap_drill_success{labels}"] = str(int(target.ok))
        samples[f"safesnap_drill_timestamp_seconds{labels}"] = now
        samples[f"safesnap_drill_duration_seconds{labels}"] = f"{target.seconds:.3f}"
        restored = target.facts.get("restored_bytes")
        if restored is not None:
            samples[f"safesnap_drill_restored_bytes{labels}"] = str(int(restored))
        if target.ok:
            samples[f"safesnap_drill_last_success_timestamp_seconds{labels}"] = now
    rewrite(path, PREFIX, FAMILIES, samples)
