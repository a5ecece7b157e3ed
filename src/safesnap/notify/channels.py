"""The two ways out: an Apprise notification and a healthchecks.io-style ping.

Both are bounded by a hard deadline (bounded.call_within) and raise ChannelFailed with a
message that has passed through redact: the caller records it and the run goes on.
Heavy imports (apprise, requests) happen here, inside the functions, only when a plan has a
`[[notify]]` or `[healthcheck]` to deliver: `safesnap --version` and `backup sqlite` never
load them (tests/cli/test_startup_imports.py, tests/integration/test_notify.py).
"""

from __future__ import annotations

import logging
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from safesnap.notify.bounded import DeadlinePassed, call_within
from safesnap.notify.message import Notice
from safesnap.notify.redact import redact

PingKind = Literal["start", "success", "fail"]
_SUFFIX: dict[PingKind, str] = {"start": "/start", "success": "", "fail": "/fail"}


class ChannelFailed(Exception):
    """A delivery failed; the message is safe to log (already redacted)."""


def send_apprise(url: str, notice: Notice, *, failure: bool, timeout: float) -> None:
    """Deliver `notice` to one Apprise URL within `timeout` seconds, or raise ChannelFailed."""
    try:
        call_within(lambda: _apprise_notify(url, notice, failure, timeout), timeout)
    except DeadlinePassed as exc:
        raise ChannelFailed(f"timed out: {exc}") from None
    except ChannelFailed:
        raise
    except Exception as exc:  # a plugin's own error: name it, without the URL
        raise ChannelFailed(redact(f"{type(exc).__name__}: {exc}", url)) from None


def _apprise_notify(url: str, notice: Notice, failure: bool, timeout: float) -> None:
    import apprise

    client = apprise.Apprise()
    # WARNING and up only: at DEBUG apprise logs the payload and more of the URL. The capture
    # also keeps apprise's messages off stderr (its logger has no handler of its own, so
    # Python's last-resort handler would print them, URL parts included).
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:  # type: ignore[no-untyped-call]
        if not client.add(_with_socket_timeouts(url, timeout)):
            raise ChannelFailed("not a URL Apprise understands (check its scheme and form)")
        kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.SUCCESS
        if client.notify(title=notice.title, body=notice.body, notify_type=kind):
            return
        detail = " ".join(captured.getvalue().split()) or "the service did not accept it"
    raise ChannelFailed(redact(detail, url))


def _with_socket_timeouts(url: str, timeout: float) -> str:
    """Apprise's per-URL `cto`/`rto` (connect/read timeouts, default 4 s each), unless set."""
    parts = urlsplit(url)
    have = {item.split("=", 1)[0] for item in parts.query.split("&") if item}
    extra = [f"{key}={timeout:g}" for key in ("cto", "rto") if key not in have]
    query = "&".join(filter(None, [parts.query, *extra]))
    return urlunsplit(parts._replace(query=query))


def ping_url(url: str, kind: PingKind) -> str:
    """{url}/start, {url}, {url}/fail: the suffix goes on the path, before any query."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + _SUFFIX[kind]))


def ping(url: str, kind: PingKind, body: str, *, method: str, timeout: float) -> None:
    """One healthcheck ping within `timeout` seconds; ChannelFailed unless it got a 2xx."""
    try:
        status = call_within(lambda: _request(method, ping_url(url, kind), body, timeout), timeout)
    except DeadlinePassed as exc:
        raise ChannelFailed(f"timed out: {exc}") from None
    except Exception as exc:  # requests' messages quote host and path: redacted
        raise ChannelFailed(redact(f"{type(exc).__name__}: {exc}", url)) from None
    if not 200 <= status < 300:
        raise ChannelFailed(f"the service answered HTTP {status}")


def _request(method: str, url: str, body: str, timeout: float) -> int:
    import requests

    response = requests.request(
        method, url, data=body.encode(), timeout=(timeout, timeout), allow_redirects=True
    )
    response.close()
    return response.status_code
