"""What a notification says: pure functions from a run report (or an error) to text.

The operator reading it at 03:20 needs four things (issue #11): what failed, on which target,
the error code, and the next step. The one-line summary is also the body of a healthcheck ping,
so it stays on one line and short enough for any service's log view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safesnap.run.report import RunReport

SUMMARY_MAX = 300  # healthchecks.io shows the first bytes of a ping body; keep it readable


@dataclass(frozen=True)
class Notice:
    """A notification's content: `title`, a multi-line `body`, and a one-line `summary`."""

    title: str
    body: str
    summary: str


def _step_failures(report: RunReport) -> list[tuple[str, str, dict[str, Any]]]:
    """(target, step, error object) for every failed step that carries an error."""
    found = []
    for target in report.targets:
        for step in target.steps:
            if not step.ok and step.error is not None:
                found.append((target.name, step.name, step.error))
    return found


def _failure_line(target: str, step: str, error: dict[str, Any]) -> str:
    line = f"{target}: {step} failed [{error.get('code', 'error')}] {error.get('message', '')}"
    hint = error.get("hint")
    return f"{line}\n  next step: {hint}" if hint else line


def notice_for_run(report: RunReport, error: dict[str, Any] | None = None) -> Notice:
    """The notice for a finished (or stopped) run; `error` is what stopped it, if anything."""
    failed = [t.name for t in report.targets if not t.ok]
    ok = not failed and error is None
    where = f"plan {report.plan}, run {report.run_id} ({report.kind})"
    if ok:
        count = len(report.targets)
        title = f"safesnap: plan {report.plan} ok"
        summary = f"safesnap {where}: ok, {count} target(s) in {report.seconds:.0f} s"
        return Notice(title=title, body=summary, summary=summary)
    lines = [_failure_line(*found) for found in _step_failures(report)]
    if error is not None:
        lines.insert(0, _failure_line("run", "run", error))
    if not lines:
        lines = [f"{name}: failed" for name in failed]
    first = lines[0].splitlines()[0]
    more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
    title = f"safesnap: plan {report.plan} FAILED" + (f": {', '.join(failed)}" if failed else "")
    summary = _one_line(f"safesnap {where} FAILED: {first}{more}")
    body = "\n".join([f"safesnap {where} failed.", *lines, _report_hint(failed)])
    return Notice(title=title, body=body, summary=summary)


def _report_hint(failed: list[str]) -> str:
    if not failed:
        return "The run did not complete; see the error above and the service's log."
    return (
        "The other targets ran. The run report (--json, [run] report_file) has every step; "
        "docs/how-to/nightly.md#a-bad-night says what to do."
    )


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SUMMARY_MAX else flat[: SUMMARY_MAX - 3] + "..."


def notice(title: str, body: str, summary: str | None = None) -> Notice:
    """A notice from free text (the drill, `safesnap notify test`)."""
    return Notice(title=title, body=body, summary=_one_line(summary or body))
