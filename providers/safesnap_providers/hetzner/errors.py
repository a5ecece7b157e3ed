"""Hetzner Cloud errors -> ProviderError, and one retry layer instead of two.

hcloud raises `APIException(code, message, details, correlation_id)`: `code` is the API's error
code string (or the HTTP status when the body was not JSON); the status and headers are gone.
`take_over_retries` records them from each response and switches off hcloud's own retry loop
(429/502/504 and conflict/rate_limit_exceeded/bad_gateway/timeout, 5 tries, backoff up to 60 s,
read in hcloud 2.27 `_client.py`), so `safesnap_providers.retry` is the only layer and retries never
multiply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from hcloud import APIException, Client

from safesnap.errors import ProviderError

PROVIDER = "hetzner"
# Codes from the Hetzner Cloud API's error list: contention, throttling and server-side trouble
# may pass; everything else (unauthorized, forbidden, not_found, invalid_input, protected,
# uniqueness_error, resource_limit_exceeded, ...) will fail the same way again.
TRANSIENT_CODES = frozenset(
    {
        "rate_limit_exceeded",
        "conflict",
        "locked",
        "timeout",
        "unavailable",
        "bad_gateway",
        "server_error",
        "maintenance",
        "robot_unavailable",
        "resource_unavailable",
    }
)
PERMANENT_HINTS = {
    "unauthorized": "Check the token named by providers.hetzner.token_env (Read & Write).",
    "forbidden": "The token is read-only: create a Read & Write token for this project.",
    "protected": "The snapshot has delete protection; it is lifted only once it has expired.",
}
ALL_METHODS = frozenset(
    {
        "create_snapshot",
        "wait",
        "list_snapshots",
        "delete_snapshot",
        "copy_to_region",
        "restore_volume",
    }
)
T = TypeVar("T")


class LastResponse(threading.local):
    """The status and headers of this thread's last HTTP response (hcloud's exceptions drop
    them). Class attributes are the defaults a thread sees before its first response."""

    status: int | None = None
    headers: Mapping[str, str] = {}  # replaced by each response, never mutated


def call(fn: Callable[[], T], last: LastResponse, resource_id: str | None) -> T:
    """Run one hcloud call; raise ProviderError (classified) instead of hcloud/requests errors."""
    try:
        return fn()
    except APIException as exc:
        raise classify(exc, last, resource_id) from None
    except requests.RequestException as exc:
        # Connection refused/reset, timeouts: the request may never have arrived.
        raise ProviderError(
            f"Hetzner API unreachable: {type(exc).__name__}",
            provider=PROVIDER,
            transient=True,
            resource_id=resource_id,
        ) from None


def classify(exc: APIException, last: LastResponse, resource_id: str | None) -> ProviderError:
    status = last.status
    code = exc.code
    if isinstance(code, int):
        transient = code == 429 or code >= 500
        status = code
    else:
        transient = code in TRANSIENT_CODES or (status is not None and status >= 500)
    throttled = code == "rate_limit_exceeded" or status == 429
    return ProviderError(
        f"Hetzner API error {code}: {str(exc.message)[:300]}",
        provider=PROVIDER,
        transient=transient,
        status=status,
        retry_after=retry_after(last.headers) if throttled else None,
        request_id=exc.correlation_id,
        resource_id=resource_id,
        hint=PERMANENT_HINTS.get(str(code)),
    )


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float:
    """Seconds until the API takes the next request, never less than 1 s.

    `Retry-After` when a proxy sends one. Else from `RateLimit-Reset`, the epoch second at which
    the bucket is *full* again: it refills evenly over an hour (`RateLimit-Limit` per hour,
    Hetzner Cloud API reference, "Rate Limiting"), so one request is back
    (limit - 1) refill steps before that. Without a limit header, the reset itself. A reset in
    the past (clock skew) gives the 1 s floor, which retry.py grows per attempt."""
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after")
    if value:
        try:
            return max(1.0, float(value))
        except ValueError:
            pass
    try:
        reset = float(lower["ratelimit-reset"])
    except (KeyError, ValueError):
        return 1.0
    left = reset - (time.time() if now is None else now)
    try:
        limit = float(lower["ratelimit-limit"])
    except (KeyError, ValueError):
        limit = 0.0
    if limit >= 1:
        left -= (limit - 1) * 3600.0 / limit
    return max(1.0, min(left, 3600.0))


def take_over_retries(client: Client, last: LastResponse) -> frozenset[str]:
    """Switch off hcloud's internal retry loop and record each response's status and headers.
    Both touch hcloud internals (ClientBase._retry_max_retries and ._session); if they ever
    move, hcloud keeps retrying and every method is declared client-retried (the returned
    set, the adapter's `client_retries`) so safesnap_providers.retry does not stack on top."""
    base = getattr(client, "_client", None)
    session = getattr(base, "_session", None)
    if base is None or not hasattr(base, "_retry_max_retries") or session is None:
        return ALL_METHODS
    base._retry_max_retries = 0

    def remember(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        last.status = response.status_code
        last.headers = dict(response.headers)

    session.hooks["response"].append(remember)
    return frozenset()
