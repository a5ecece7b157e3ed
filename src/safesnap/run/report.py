"""The run report (one JSON object) and a Prometheus textfile for node_exporter.

The report is the contract for automation (`safesnap run --json`): per target its steps, the
artifact, sha256, seconds, and an overall `ok`. Keys are only ever added, never renamed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safesnap.errors import (
    DestinationError,
    InternalError,
    SafesnapError,
)
from safesnap.output import log


@dataclass
class StepResult:
    # snapshot | snapshot-prune | backup | verify | prune | replicate (run/pipeline.py), and
    # target (a failure outside any step), stopped / not-run (after a signal)
    name: str
    ok: bool = True
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    skipped: str | None = None  # why the step did not run

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ok": self.ok, "seconds": round(self.seconds, 3)}
        out.update(self.details)
        if self.error is not None:
            out["error"] = self.error
        if self.skipped is not None:
            out["skipped"] = self.skipped
        return out


@dataclass
class TargetResult:
    name: str
    engine: str
    steps: list[StepResult] = field(default_factory=list)
    artifact: str | None = None
    sha256: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # lock times, binlog, snapshot ids...
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "engine": self.engine,
            "ok": self.ok,
            "artifact": self.artifact,
            "sha256": self.sha256,
            "seconds": round(self.seconds, 3),
            "steps": [step.to_dict() for step in self.steps],
        }
        out.update(self.facts)
        return out


@dataclass
class RunReport:
    run_id: str
    plan: str
    kind: str
    dry_run: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    targets: list[TargetResult] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(target.ok for target in self.targets)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "run_id": self.run_id,
            "plan": self.plan,
            "kind": self.kind,
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "targets": [target.to_dict() for target in self.targets],
        }
        out.update(self.extra)
        return out


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def failed_step(name: str, exc: SafesnapError, seconds: float) -> StepResult:
    return StepResult(name=name, ok=False, seconds=seconds, error=exc.to_dict())


def write_report_file(path: Path, report: RunReport) -> None:
    """The JSON report, written atomically (a reader never sees half of it)."""
    from safesnap.artifacts.atomic import atomic_write

    with atomic_write(path, overwrite=True) as out:
        out.write(json.dumps(report.to_dict(), indent=2, default=str).encode())


def write_report_files(
    report: RunReport, *, report_file: Path | None, metrics_file: Path | None
) -> list[SafesnapError]:
    """Write the report file and the metrics textfile, each on its own: one that cannot be
    written never stops the other, nor the report on stdout. Returns the failures (logged)."""
    return write_each(report, [(report_file, write_report_file), (metrics_file, write_metrics)])


ReportWriter = Callable[[Path, "RunReport"], None]


def write_each(
    report: RunReport, writers: list[tuple[Path | None, ReportWriter]], *, what: str = "run"
) -> list[SafesnapError]:
    """Run each writer whose path is set, whatever the others did; return the failures, each
    classified and logged. Shared by the run's and the drill's outputs."""
    problems: list[SafesnapError] = []
    for path, write in writers:
        if path is None:
            continue
        try:
            write(path, report)
        except Exception as exc:  # every failure is classified and reported
            problem = _write_problem(path, exc, what)
            log.error("%s", problem.message)
            problems.append(problem)
    return problems


def _write_problem(path: Path, exc: Exception, what: str) -> SafesnapError:
    if isinstance(exc, DestinationError):  # name the file the operator configured
        return DestinationError(f"cannot write {path} ({exc.message})", hint=exc.hint)
    if isinstance(exc, SafesnapError):
        return exc
    if isinstance(exc, OSError):
        return DestinationError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint=f"Create its directory or fix its permissions; the {what} itself is done.",
        )
    return InternalError.from_exception(exc)


def write_metrics(path: Path, report: RunReport) -> None:
    """node_exporter textfile collector format, written atomically (a scrape never sees half).
    Only the `safesnap_run_*` lines are replaced: a drill's lines in the same file stay."""
    from safesnap.run.textfile import rewrite

    families = {
        "safesnap_run_success": ("gauge", "1 when the last run of the target succeeded."),
        "safesnap_run_timestamp_seconds": ("gauge", "When the last run of the target ended."),
        "safesnap_run_duration_seconds": (
            "gauge",
            "How long the target took in the last run.",
        ),
    }
    now = time.time()
    samples: dict[str, str] = {}
    for target in report.targets:
        labels = f'{{plan="{report.plan}",target="{target.name}"}}'
        samples[f"safesnap_run_success{labels}"] = str(int(target.ok))
        samples[f"safesnap_run_timestamp_seconds{labels}"] = f"{now:.0f}"
        samples[f"safesnap_run_duration_seconds{labels}"] = f"{target.seconds:.3f}"
    rewrite(path, "safesnap_run_", families, samples)
