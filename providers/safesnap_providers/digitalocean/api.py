"""The DigitalOcean HTTP layer: python-digitalocean's request machinery, with the status kept.

python-digitalocean's `get_data` turns every failure into `DataReadError(message)` /
`NotFoundError()` and drops the HTTP status and the `retry-after` header, so 429 cannot be told
from 500 or 422 (read in digitalocean/baseapi.py, v1.17). `DoApi` reuses the library's private
request function (auth header, URL joining, token-redacting debug log) and classifies the raw
`requests.Response` itself. It also fixes two library behaviours:

- the endpoint: `BaseAPI` reads `DIGITALOCEAN_END_POINT` and child objects it builds (e.g.
  `Volume.get_snapshots()` -> `Snapshot`) never get the constructor's `end_point`; every call
  here goes through one `DoApi` built with the configured endpoint, so nothing leaks to prod;
- the timeout: the library sends requests without one unless an environment variable is set,
  so a dead connection would hang a run; `DoApi` always passes one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from digitalocean.baseapi import DELETE, GET, POST, BaseAPI

from safesnap.errors import ProviderError

PROVIDER = "digitalocean"
DEFAULT_ENDPOINT = "https://api.digitalocean.com"
MAX_PAGES = 500  # 500 pages x 200 items: far beyond the 25-per-volume cap; stops a looping API
_AUTH_HINT = "Check the token named by providers.digitalocean.token_env (read+write scopes)."
# A decoded response body: every DO API v2 answer is a JSON object (or empty, for 204).
Json = dict[str, Any]


def api_root(endpoint_url: str | None) -> str:
    """'https://api.digitalocean.com' or '.../v2' -> 'https://api.digitalocean.com/v2/'."""
    base = (endpoint_url or DEFAULT_ENDPOINT).rstrip("/")
    if not base.endswith("/v2"):
        base += "/v2"
    return base + "/"


class DoApi(BaseAPI):  # type: ignore[misc]  # python-digitalocean ships no type hints
    """One authenticated connection to the DigitalOcean API v2."""

    def __init__(
        self,
        token: str,
        endpoint_url: str | None,
        *,
        timeout: float = 60.0,
        max_pages: int = MAX_PAGES,
    ) -> None:
        super().__init__(token=token, end_point=api_root(endpoint_url))
        self._request_timeout = timeout
        self.max_pages = max_pages
        self.last_date: str | None = None  # HTTP Date of the last answer: DO's own clock

    def get_timeout(self) -> float:
        return self._request_timeout

    def __repr__(self) -> str:  # never show the token
        return f"DoApi({self.end_point!r})"

    def call(self, path: str, method: str = GET, params: dict[str, Any] | None = None) -> Json:
        """One request; returns the decoded JSON body ({} for 204). Raises ProviderError."""
        try:
            response = self._BaseAPI__perform_request(path, method, params or {})
        except requests.RequestException as exc:
            # Connection refused/reset and timeouts: the request may not have been seen.
            raise ProviderError(
                f"DigitalOcean API unreachable: {type(exc).__name__}",
                provider=PROVIDER,
                transient=True,
            ) from None
        self.last_date = response.headers.get("Date") or self.last_date
        return _check(response, method, path)

    def get(self, path: str, **params: Any) -> Json:
        return self.call(path, GET, params)

    def post(self, path: str, body: dict[str, Any]) -> Json:
        return self.call(path, POST, body)

    def delete(self, path: str) -> Json:
        return self.call(path, DELETE)

    def pages(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following `links.pages.next` (bounded)."""
        params.setdefault("per_page", 200)
        for _ in range(self.max_pages):
            data = self.call(path, GET, dict(params))
            yield from data.get(key) or []
            next_url = ((data.get("links") or {}).get("pages") or {}).get("next")
            if not next_url:
                return
            path, params = self._relative(next_url)
        raise ProviderError(
            f"listing {path.split('?')[0]} did not end after {self.max_pages} pages: the API "
            "keeps answering with a next page",
            provider=PROVIDER,
            hint="Retry later; if it persists, report it to DigitalOcean support.",
        )

    def _relative(self, url: str) -> tuple[str, dict[str, Any]]:
        """Split a `next` link into a path under our endpoint and its query. A link to another
        host is refused: following it would send the token there."""
        parts, root = urlsplit(url), urlsplit(self.end_point)
        if (parts.scheme, parts.netloc) != (root.scheme, root.netloc):
            raise ProviderError("pagination link points to another host", provider=PROVIDER)
        path = parts.path[len(root.path) :] if parts.path.startswith(root.path) else parts.path
        return path.lstrip("/"), dict(parse_qsl(parts.query))


def _check(response: requests.Response, method: str, path: str) -> Json:
    if response.status_code == 204 or (response.ok and not response.content):
        return {}
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.ok:
        return body if isinstance(body, dict) else {}
    raise classify(response.status_code, response.headers, body, f"{method} {path}")


def classify(status: int, headers: Mapping[str, str], body: object, what: str) -> ProviderError:
    """HTTP status -> ProviderError. 429 and 5xx are transient (429 with `retry-after`, which
    DO documents for rate limiting); 401/403/404/422/other 4xx are permanent."""
    fields: Json = body if isinstance(body, dict) else {}
    message = str(fields.get("message") or "")[:300]
    request_id = fields.get("request_id") or headers.get("x-request-id")
    transient = status == 429 or status >= 500
    hint = _AUTH_HINT if status in (401, 403) else None
    return ProviderError(
        f"DigitalOcean {what} failed: HTTP {status} {fields.get('id', '')}: {message}".rstrip(": "),
        provider=PROVIDER,
        transient=transient,
        status=status,
        request_id=request_id,
        retry_after=retry_after(headers) if status == 429 else None,
        hint=hint,
    )


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after` (seconds or an HTTP date), else from
    `ratelimit-reset` (epoch seconds when the window resets)."""
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = headers.get("ratelimit-reset")
    if reset:
        try:
            return max(0.0, min(float(reset) - now, 3600.0))
        except ValueError:
            return None
    return None
