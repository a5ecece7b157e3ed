"""A plan run's start and end, told to the plan's healthcheck and notify entries.

Start: `GET {url}/start`, so the healthcheck service measures the run and notices one that
never ends. End: a `failure` or `success` notice to the `[[notify]]` entries that asked for
it, and `GET {url}` or `{url}/fail` with the one-line summary as body. A dry run sends
nothing (it changes nothing and proves nothing about tonight's backup). Every delivery is
recorded in the report's `notifications` list, so report_file and `--json` show it.
"""

from __future__ import annotations

from safesnap.config.plan import Plan
from safesnap.errors import SafesnapError
from safesnap.notify.deliver import Delivery, dispatch, ping_healthcheck
from safesnap.notify.message import notice_for_run
from safesnap.run.report import RunReport


def _record(report: RunReport, deliveries: list[Delivery | None]) -> None:
    done = [d.to_dict() for d in deliveries if d is not None]
    if done:
        report.extra.setdefault("notifications", []).extend(done)


def run_started(plan: Plan, report: RunReport) -> None:
    if report.dry_run:
        return
    summary = f"safesnap plan {report.plan}, run {report.run_id} ({report.kind}): started"
    _record(report, [ping_healthcheck(plan, "start", summary)])


def run_finished(plan: Plan, report: RunReport, stopped: SafesnapError | None = None) -> None:
    """`stopped`: what ended the run early (a signal, the lock), when no target says it."""
    if report.dry_run:
        return
    error = stopped.to_dict() if stopped is not None else None
    content = notice_for_run(report, error)
    ok = report.ok and stopped is None
    deliveries: list[Delivery | None] = list(
        dispatch(plan, "success" if ok else "failure", content)
    )
    deliveries.append(ping_healthcheck(plan, "success" if ok else "fail", content.summary))
    _record(report, deliveries)
