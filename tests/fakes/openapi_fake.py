"""A small threaded HTTP fake whose every request and response is checked against an OpenAPI file.

DigitalOcean and Hetzner Cloud have no local emulator, so their fakes are held to the published
API descriptions in tests/specs/ instead (see its README). openapi-core validates:

- every request: an invalid one (unknown path, wrong body, missing auth, bad parameter) gets the
  provider's error response AND is recorded in `violations`, so the test fails at teardown even
  when the client swallowed the error (a fake that accepts what the real API rejects is a bug);
- every response the fake sends: a violation is a bug in the fake and is recorded loudly too.

A concrete fake subclasses `OpenApiFake`, registers handlers with `route(method, template)` and
implements `error_body`. Failure injection (`inject`), action timing (`action_polls`,
`action_seconds`, `fail_actions`), pagination (`page_size`), per-request `latency` and request
counting live here so both fakes behave alike.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

JSON = dict[str, Any]


@dataclass
class Reply:
    status: int
    body: JSON | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """What a handler sees: the normalised request."""

    method: str
    path: str
    params: dict[str, str]  # path template parameters
    query: ImmutableMultiDict[str, str]
    json: JSON
    headers: Headers


Handler = Callable[[Call], Reply]


@dataclass
class Fault:
    """An injected failure: answer the next `times` matching requests with `reply`. With
    `after=True` the request is carried out first and only its answer is replaced: the
    client sees a failure although the cloud acted (a lost response, a proxy timeout)."""

    reply: Reply
    times: int = 1
    method: str | None = None
    path: str | None = None  # regex searched in the request path
    after: bool = False
    skip: int = 0  # let this many matching requests through first ("a 503 at poll N")

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not self.path or re.search(self.path, path) is not None


@dataclass
class _SpecRequest:
    """openapi-core's Request protocol over a normalised werkzeug request."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters


@dataclass
class _SpecResponse:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Tests count calls through `OpenApiFake.calls`; an access log is noise."""


class OpenApiFake:
    """Threaded HTTP server on 127.0.0.1 (free port) validating traffic against `spec`."""

    base_path = ""  # path prefix of the API under the server URL ("/v1" for Hetzner)

    def __init__(self, spec: JSON, *, token: str = "test-token") -> None:
        self.token = token
        self.violations: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self.call_times: list[float] = []  # time.monotonic() of each request (benchmarks)
        self.faults: list[Fault] = []
        self.latency = 0.0  # seconds slept before answering each request (benchmarks)
        self.page_size: int | None = None  # cap on per_page, to force pagination in tests
        self.action_polls = 0  # an action reports success only after this many reads...
        self.action_seconds = 0.0  # ...and this many seconds after it started
        self.fail_actions = False  # new actions end in error
        self._lock = threading.RLock()
        self._id = 1000
        self.actions: dict[int, FakeAction] = {}
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}{self.base_path}"
        self._api = OpenAPI.from_dict(
            self._with_server(spec), config=Config(spec_validator_cls=None)
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # ---- life cycle -------------------------------------------------------------------------
    def start(self) -> OpenApiFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def assert_clean(self) -> None:
        """Fail the test if any request or response broke the API description."""
        if self.violations:
            raise AssertionError("OpenAPI violations:\n" + "\n".join(self.violations))

    # ---- for subclasses ---------------------------------------------------------------------
    def route(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def error_body(self, status: int, code: str, message: str) -> JSON:
        raise NotImplementedError

    def error(self, status: int, code: str, message: str, **headers: str) -> Reply:
        return Reply(status, self.error_body(status, code, message), dict(headers))

    def normalise(self, method: str, path: str, body: bytes) -> tuple[str, bytes]:
        """Undo client quirks the real API tolerates (subclasses override)."""
        return path, body

    # ---- knobs ------------------------------------------------------------------------------
    def inject(
        self,
        reply: Reply,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        after: bool = False,
        skip: int = 0,
    ) -> None:
        with self._lock:
            self.faults.append(Fault(reply, times, method, path, after, skip))

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for m, p in self.calls
                if (method is None or m == method.upper()) and (path is None or re.search(path, p))
            )

    def paginate(
        self, call: Call, items: list[JSON], default_per_page: int
    ) -> tuple[list[JSON], int, int, int]:
        """(page items, page, per_page, total) honouring `page`, `per_page` and `page_size`."""
        page = max(1, int(call.query.get("page", "1")))
        per_page = int(call.query.get("per_page", str(default_per_page)))
        if self.page_size is not None:
            per_page = min(per_page, self.page_size)
        start = (page - 1) * per_page
        return items[start : start + per_page], page, per_page, len(items)

    def new_action(
        self,
        command: str,
        resource_id: int | str,
        on_success: Callable[[], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> FakeAction:
        action = FakeAction(
            id=self._next_id(),
            command=command,
            resource_id=resource_id,
            started=time.monotonic(),
            started_iso=now_iso(),
            polls_needed=self.action_polls,
            seconds=self.action_seconds,
            fail=self.fail_actions,
            on_success=on_success,
            on_failure=on_failure,
        )
        self.actions[action.id] = action
        if self.action_polls == 0 and self.action_seconds == 0:
            action.advance()  # instant actions finish at once, as small ones often do
        return action

    def _next_id(self) -> int:
        with self._lock:
            self._id += 1
            return self._id

    # ---- plumbing ---------------------------------------------------------------------------
    def _with_server(self, spec: JSON) -> JSON:
        """Point the top-level and every path-level `servers` entry at this fake (shallow copies,
        so one parsed spec serves many fakes)."""
        servers = [{"url": self.url}]
        paths = {
            p: ({**item, "servers": servers} if "servers" in item else item)
            for p, item in spec["paths"].items()
        }
        return {**spec, "servers": servers, "paths": paths}

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._answer(request)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        method = request.method.upper()
        path, body = self.normalise(method, request.path, request.get_data())
        with self._lock:  # counted on arrival, so a client that times out still shows up
            self.calls.append((method, path))
            self.call_times.append(time.monotonic())
        if self.latency:
            time.sleep(self.latency)
        spec_request = _SpecRequest(
            host_url=request.host_url,
            path=path,
            method=method.lower(),
            body=body,
            content_type=request.content_type or "application/octet-stream",
            parameters=RequestParameters(
                query=ImmutableMultiDict(request.args),
                header=Headers(request.headers),
                cookie=request.cookies,
            ),
        )
        reply = self._dispatch(spec_request, request, method, path, body)
        return self._send(spec_request, reply)

    def _dispatch(
        self, spec_request: _SpecRequest, request: Request, method: str, path: str, body: bytes
    ) -> Reply:
        try:
            self._api.validate_request(spec_request)
        except PathError as exc:  # no such endpoint (or method) in the published API
            self._violation(f"request {method} {path}: {_explain(exc)}")
            return self.error(404, "not_found", "no such endpoint in the API description")
        except Exception as exc:  # every other openapi-core validation error: record and refuse
            detail = _explain(exc)
            self._violation(f"request {method} {path}: {detail}")
            return self.error(400, "invalid_input", detail[:500])
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.error(401, "unauthorized", "Unable to authenticate you")
        fault = self._take_fault(method, path)
        if fault is not None and not fault.after:
            return fault.reply
        reply = self._route(request, method, path, body)
        return fault.reply if fault is not None else reply

    def _route(self, request: Request, method: str, path: str, body: bytes) -> Reply:
        local = path[len(self.base_path) :] if path.startswith(self.base_path) else path
        for route_method, pattern, handler in self._routes:
            match = pattern.match(local)
            if match and route_method == method:
                payload = json.loads(body) if body else {}
                call = Call(
                    method, local, match.groupdict(), request.args, payload, request.headers
                )
                with self._lock:
                    return handler(call)
        self._violation(f"request {method} {path}: valid per spec but not implemented by the fake")
        return self.error(404, "not_found", "not implemented by the fake")

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None

    def _send(self, spec_request: _SpecRequest, reply: Reply) -> Response:
        data = json.dumps(reply.body).encode() if reply.body is not None else b""
        headers = Headers(reply.headers)
        if reply.body is not None:
            headers["Content-Type"] = "application/json"
        spec_response = _SpecResponse(
            reply.status, "application/json" if data else "", headers, data if data else None
        )
        try:
            self._api.validate_response(spec_request, spec_response)
        except Exception as exc:  # the fake itself broke the contract: a bug in the fake
            self._violation(
                f"RESPONSE {reply.status} to {spec_request.method.upper()} "
                f"{spec_request.path}: {_explain(exc)}"
            )
        return Response(data or None, status=reply.status, headers=headers)

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)


@dataclass
class FakeAction:
    """A long-running action: succeeds after `polls` reads and `seconds` of wall time, or fails."""

    id: int
    command: str
    resource_id: int | str
    started: float
    started_iso: str
    polls_needed: int
    seconds: float
    fail: bool
    on_success: Callable[[], None] | None = None
    on_failure: Callable[[], None] | None = None
    polls: int = 0
    status: str = "running"  # running | success | error
    finished_iso: str | None = None

    def advance(self) -> str:
        """One client read of the action: maybe finish it (calling on_success exactly once)."""
        if self.status != "running":
            return self.status
        self.polls += 1
        if self.polls < self.polls_needed or time.monotonic() - self.started < self.seconds:
            return self.status
        self.status = "error" if self.fail else "success"
        self.finished_iso = now_iso()
        hook = self.on_success if self.status == "success" else self.on_failure
        if hook is not None:
            hook()
        return self.status


def _explain(exc: BaseException) -> str:
    """openapi-core wraps the useful jsonschema messages in causes / schema_errors."""
    parts = [f"{type(exc).__name__}: {exc}"]
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        errors = getattr(cause, "schema_errors", None)
        if errors:
            parts.extend(str(getattr(e, "message", e))[:300] for e in errors)
        else:
            parts.append(f"{type(cause).__name__}: {cause}"[:300])
        cause = cause.__cause__
    return "; ".join(parts)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def header_map(pairs: Mapping[str, str | int | float]) -> dict[str, str]:
    return {k: str(v) for k, v in pairs.items()}
