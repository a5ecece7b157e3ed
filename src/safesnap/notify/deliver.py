"""Deliver a notice to the plan's `[[notify]]` entries and its `[healthcheck]`.

Each delivery is bounded by its entry's `timeout` and never raises: a notification that
cannot be delivered must not fail or hold up the backup it reports on. Its outcome is a
Delivery (in the run report's `notifications`) and, when it failed, a warning on stderr that
names the entry and scheme, the error code and what to do; never the URL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from safesnap.config.notify import Event, Healthcheck, Notify
from safesnap.config.plan import Plan, resolve_secret
from safesnap.errors import NotifyError
from safesnap.notify.channels import ChannelFailed, PingKind, ping, send_apprise
from safesnap.notify.message import Notice
from safesnap.notify.redact import scheme_of
from safesnap.output import log


@dataclass
class Delivery:
    channel: str  # notify[0] (json), or healthcheck
    event: str  # failure | success | drill_failure | test, or the ping: start | success | fail
    ok: bool
    seconds: float
    error: NotifyError | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "channel": self.channel,
            "event": self.event,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


def _url(entry: Notify | Healthcheck) -> str:
    if entry.url is not None:
        return entry.url
    assert entry.url_env is not None  # the model requires one of them
    secret = resolve_secret(entry.url_env)
    if secret is None or not secret.get_secret_value():
        raise ChannelFailed(f"variable {entry.url_env} (url_env) is not set or empty")
    return secret.get_secret_value()


def channel_name(index: int, entry: Notify) -> str:
    label = entry.name or f"notify[{index}]"
    where = f"${entry.url_env}" if entry.url_env else ""
    try:
        return f"{label} ({scheme_of(_url(entry))}{' from ' + where if where else ''})"
    except ChannelFailed:
        return f"{label} (from {where})"


def _attempt(channel: str, event: str, send: Any, hint: str) -> Delivery:
    started = time.monotonic()
    try:
        send()
    except ChannelFailed as exc:
        error = NotifyError(f"{channel}: {event} not delivered: {exc}", hint=hint, target=channel)
        log.warning("%s (%s); next step: %s", error.message, error.code, hint)
        return Delivery(channel, event, False, time.monotonic() - started, error)
    return Delivery(channel, event, True, time.monotonic() - started)


_NOTIFY_HINT = (
    "check the URL (its variable) and that this host reaches the service; "
    "`safesnap notify test --config PLAN` sends a test message"
)
_PING_HINT = "check [healthcheck] url / url_env and that this host reaches the service"


def dispatch(plan: Plan, event: Event | str, notice: Notice) -> list[Delivery]:
    """Send `notice` to every `[[notify]]` entry whose `on` lists `event` (every entry for
    the event "test"). Never raises; returns one Delivery per entry it tried."""
    failure = event in ("failure", "drill_failure")
    deliveries = []
    for index, entry in enumerate(plan.notify):
        if event != "test" and event not in entry.on:
            continue

        def send(entry: Notify = entry) -> None:
            send_apprise(_url(entry), notice, failure=failure, timeout=entry.timeout)

        deliveries.append(_attempt(channel_name(index, entry), str(event), send, _NOTIFY_HINT))
    return deliveries


def ping_healthcheck(plan: Plan, kind: PingKind, summary: str) -> Delivery | None:
    """One ping of `[healthcheck]` (None when the plan has none). Never raises."""
    check = plan.healthcheck
    if check is None:
        return None

    def send() -> None:
        ping(_url(check), kind, summary, method=check.method, timeout=check.timeout)

    return _attempt("healthcheck", kind, send, _PING_HINT)
