"""Stateful fake of the Hetzner Cloud endpoints safesnap uses, held to the published OpenAPI file.

State: servers, images (snapshots) with labels and delete protection, actions. Every request
and response is validated against tests/specs/hcloud-openapi.json, loaded with the three
normalisations listed in tests/specs/README.md (done here in memory, once per process):
`4xx`/`5xx` response keys upper-cased, path-level `servers` pointed at the fake (done by
`OpenApiFake`), and `nullable` + one-element `allOf: [$ref]` inlined so `"error": null` validates.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.openapi_fake import (
    JSON,
    Call,
    FakeAction,
    OpenApiFake,
    Reply,
    header_map,
    now_iso,
)
from tests.fakes.schema_skeleton import skeleton
from tests.fakes.specs import SPECS_DIR

SPEC_PATH = SPECS_DIR / "hcloud-openapi.json"
RATE_LIMIT = 3600  # requests per hour per project, refilled 1/s (documented)


@functools.lru_cache(maxsize=1)
def load_spec() -> JSON:
    spec: JSON = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "responses" in op:
                op["responses"] = {k.upper(): v for k, v in op["responses"].items()}
    return _inline_nullable(spec, spec)  # type: ignore[no-any-return]


def _inline_nullable(node: Any, spec: JSON) -> Any:
    if isinstance(node, list):
        return [_inline_nullable(v, spec) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline_nullable(v, spec) for k, v in node.items()}
    parts = out.get("allOf")
    if out.get("nullable") and isinstance(parts, list) and len(parts) == 1 and "$ref" in parts[0]:
        target: Any = spec
        for part in parts[0]["$ref"][2:].split("/"):
            target = target[part]
        merged = {**copy.deepcopy(target), **{k: v for k, v in out.items() if k != "allOf"}}
        return _inline_nullable(merged, spec)
    return out


# A few published server types: (name, disk GB, EUR/month gross, architecture).
SERVER_TYPES = [
    ("cx22", 40, "4.5100", "x86"),
    ("cax11", 40, "4.5100", "arm"),
    ("cx32", 80, "7.7300", "x86"),
    ("cx42", 160, "19.0000", "x86"),
]


class HetznerFake(OpenApiFake):
    base_path = "/v1"

    def __init__(self, *, token: str = "hcloud-test-token") -> None:
        super().__init__(load_spec(), token=token)
        self.spec = load_spec()
        self.servers: dict[int, JSON] = {}
        self.images: dict[int, JSON] = {}
        self.remaining = RATE_LIMIT
        self.endless_pages = False  # every list page names a next page (a looping API)
        # Server creation only (deleting keeps `action_polls` / `fail_actions`): its action
        # needs this many reads (None: `action_polls`), and ends in error when `fail_servers`.
        self.server_polls: int | None = None
        self.fail_servers = False
        r = self.route
        r("GET", "/servers/{id}", self._get_server)
        r("POST", "/servers", self._create_server)
        r("DELETE", "/servers/{id}", self._delete_server)
        r("GET", "/server_types", self._list_server_types)
        r("POST", "/servers/{id}/actions/create_image", self._create_image)
        r("GET", "/actions/{id}", self._get_action)
        r("GET", "/images", self._list_images)
        r("GET", "/images/{id}", self._get_image)
        r("PUT", "/images/{id}", self._update_image)
        r("DELETE", "/images/{id}", self._delete_image)
        r("POST", "/images/{id}/actions/change_protection", self._change_protection)

    # ---- test helpers ----------------------------------------------------------------------
    def add_server(self, name: str | None = None, disk: int = 20) -> int:
        sid = self._next_id()
        self.servers[sid] = {
            "id": sid, "name": name or f"server-{sid}", "primary_disk_size": disk,
            "labels": {}, "status": "running",
        }  # fmt: skip
        return sid

    def rate_limit(
        self,
        *,
        times: int = 1,
        path: str | None = None,
        retry_after: float | None = None,
        limit: int = RATE_LIMIT,
        reset_in: float | None = None,
    ) -> None:
        """429 `rate_limit_exceeded` with the documented RateLimit-* headers (Reset: when the
        bucket is full again; it refills `limit` requests per hour, so an empty one is full
        after 3600 s). `reset_in` sets another Reset (negative: in the past, clock skew).
        Hetzner documents no `Retry-After`; pass `retry_after` to add one anyway, as a proxy
        in front of the API might."""
        headers: dict[str, float] = {
            "RateLimit-Limit": limit,
            "RateLimit-Remaining": 0,
            "RateLimit-Reset": int(time.time() + (3600 if reset_in is None else reset_in)),
        }
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        self.inject(
            self.error(
                429,
                "rate_limit_exceeded",
                "limit of 3600 requests per hour reached",
                **header_map(headers),
            ),
            times=times,
            path=path,
        )

    def server_error(
        self,
        status: int = 503,
        code: str = "unavailable",
        *,
        times: int = 1,
        path: str | None = None,
        skip: int = 0,
    ) -> None:
        """`skip`: let that many matching requests through first (a 503 at poll N)."""
        self.inject(
            self.error(status, code, "service unavailable"), times=times, path=path, skip=skip
        )

    # ---- OpenApiFake hooks -----------------------------------------------------------------
    def error_body(self, status: int, code: str, message: str) -> JSON:
        return {"error": {"code": code, "message": message, "details": None}}

    def error(self, status: int, code: str, message: str, **headers: str) -> Reply:
        # Hetzner tags every response with a correlation id; support quotes it.
        reply = super().error(status, code, message, **headers)
        reply.headers.setdefault("X-Correlation-Id", f"corr-{self._next_id()}")
        return reply

    def _ok(self, status: int, body: JSON | None = None) -> Reply:
        self.remaining = max(0, self.remaining - 1)
        return Reply(
            status,
            body,
            header_map({"RateLimit-Limit": RATE_LIMIT, "RateLimit-Remaining": self.remaining}),
        )

    def _missing(self, what: str) -> Reply:
        return self.error(404, "not_found", f"{what} not found")

    def _list_server_types(self, call: Call) -> Reply:
        items = [self._server_type_json(i, *t) for i, t in enumerate(SERVER_TYPES, 1)]
        page_items, page, per_page, total = self.paginate(call, items, 25)
        last = max(1, (total + per_page - 1) // per_page)
        pagination = {
            "page": page,
            "per_page": per_page,
            "total_entries": total,
            "last_page": last,
            "next_page": page + 1 if page < last else None,
            "previous_page": page - 1 if page > 1 else None,
        }
        return self._ok(200, {"server_types": page_items, "meta": {"pagination": pagination}})

    def _server_type_json(self, tid: int, name: str, disk: int, euros: str, arch: str) -> JSON:
        body: JSON = skeleton(self.spec, self.spec["components"]["schemas"]["server_type"])
        price = {"gross": euros, "net": euros}
        body.update(
            id=tid,
            name=name,
            disk=disk,
            architecture=arch,
            deprecated=False,
            cores=2,
            memory=4.0,
            prices=[
                {
                    "location": "fsn1",
                    "included_traffic": 21990232555520,
                    "price_hourly": price,
                    "price_monthly": price,
                    "price_per_tb_traffic": price,
                }
            ],
        )
        return body

    # ---- servers ---------------------------------------------------------------------------
    def _server_json(self, server: JSON) -> JSON:
        schema = self.spec["components"]["schemas"]["server"]
        body: JSON = skeleton(self.spec, schema)
        body.update(
            {
                "id": server["id"],
                "name": server["name"],
                "status": server["status"],
                "primary_disk_size": server["primary_disk_size"],
                "labels": dict(server["labels"]),
            }
        )
        return body

    def _get_server(self, call: Call) -> Reply:
        server = self.servers.get(int(call.params["id"]))
        if server is None:
            return self._missing("server")
        self._touch(server)  # a client watching the status, not the action, gets on too
        return self._ok(200, {"server": self._server_json(server)})

    def _create_server(self, call: Call) -> Reply:
        image = self.images.get(int(call.json["image"])) if call.json["image"].isdigit() else None
        if image is None or image["status"] != "available":
            return self.error(422, "invalid_input", "image not found or not available")
        kind = next((t for t in SERVER_TYPES if t[0] == call.json["server_type"]), None)
        if kind is None:
            return self.error(422, "invalid_input", "server type not found")
        if kind[1] < image["disk_size"]:
            return self.error(422, "invalid_input", "image disk is bigger than server type disk")
        sid = self.add_server(call.json["name"], disk=kind[1])
        server = self.servers[sid]
        server.update(labels=dict(call.json.get("labels") or {}), status="initializing")
        done = "running" if call.json.get("start_after_create", True) else "off"
        action = self._create_server_action(sid, lambda: server.update(status=done))
        server["_action"] = action.id
        return self._ok(
            201,
            {
                "server": self._server_json(self.servers[sid]),
                "action": self._action_json(action.id),
                "next_actions": [],
                "root_password": None,
            },
        )

    def _create_server_action(self, sid: int, on_success: Callable[[], None]) -> FakeAction:
        polls, fail = self.action_polls, self.fail_actions
        self.action_polls = polls if self.server_polls is None else self.server_polls
        self.fail_actions = fail or self.fail_servers
        try:
            # A failed create leaves the server `off` (Hetzner keeps it; the caller deletes it).
            return self.new_action(
                "create_server", sid, on_success, lambda: self.servers[sid].update(status="off")
            )
        finally:
            self.action_polls, self.fail_actions = polls, fail

    def _delete_server(self, call: Call) -> Reply:
        sid = int(call.params["id"])
        server = self.servers.get(sid)
        if server is None:
            return self._missing("server")
        server["status"] = "deleting"
        action = self.new_action("delete_server", sid, lambda: self.servers.pop(sid, None))
        return self._ok(200, {"action": self._action_json(action.id)})

    def _create_image(self, call: Call) -> Reply:
        server = self.servers.get(int(call.params["id"]))
        if server is None:
            return self._missing("server")
        image = self._new_image(server, call.json)
        action = self.new_action(
            "create_image",
            server["id"],
            on_success=lambda: image.update(status="available"),
            on_failure=lambda: image.update(status="unavailable"),
        )
        image["_action"] = action.id
        return self._ok(
            201, {"action": self._action_json(action.id), "image": self._image_json(image)}
        )

    def _new_image(self, server: JSON, body: JSON) -> JSON:
        iid = self._next_id()
        image = {
            "id": iid,
            "type": body.get("type", "snapshot"),
            "status": "creating",
            "description": body.get("description") or f"snapshot of {server['name']}",
            "labels": dict(body.get("labels") or {}),
            "created": now_iso(),
            "created_from": {"id": server["id"], "name": server["name"]},
            "protection": {"delete": False},
            "disk_size": server["primary_disk_size"],
            "image_size": None,
        }
        self.images[iid] = image
        return image

    # ---- actions ---------------------------------------------------------------------------
    def _get_action(self, call: Call) -> Reply:
        action = self.actions.get(int(call.params["id"]))
        if action is None:
            return self._missing("action")
        action.advance()
        return self._ok(200, {"action": self._action_json(action.id)})

    def _action_json(self, action_id: int) -> JSON:
        a = self.actions[action_id]
        error = (
            {"code": "action_failed", "message": "Action failed"} if a.status == "error" else None
        )
        return {
            "id": a.id,
            "command": a.command,
            "status": a.status,
            "started": a.started_iso,
            "finished": a.finished_iso,
            "progress": 100 if a.status != "running" else 50,
            "resources": [{"id": int(a.resource_id), "type": "server"}],
            "error": error,
        }

    # ---- images ----------------------------------------------------------------------------
    def _touch(self, image: JSON) -> JSON:
        """The real action runs on its own; here it moves when it or its image is read, so a
        client that only watches the image status (it lost the action id) gets on too."""
        action = self.actions.get(image.get("_action", -1))
        if action is not None:
            action.advance()
        return image

    def _image_json(self, image: JSON) -> JSON:
        body = {k: v for k, v in image.items() if not k.startswith("_")}
        body.update(
            {
                "architecture": "x86",
                "bound_to": None,
                "deleted": None,
                "deprecated": None,
                "name": None,
                "os_flavor": "debian",
                "os_version": None,
                "rapid_deploy": False,
            }
        )
        return body

    def _list_images(self, call: Call) -> Reply:
        types = call.query.getlist("type")
        selector = call.query.get("label_selector", "")
        items = [
            self._image_json(self._touch(i))
            for i in sorted(self.images.values(), key=lambda i: i["id"])
            if (not types or i["type"] in types) and selector_matches(selector, i["labels"])
        ]
        page_items, page, per_page, total = self.paginate(call, items, 25)
        last = max(1, (total + per_page - 1) // per_page)
        if self.endless_pages:
            last = page + 1
        pagination = {
            "page": page,
            "per_page": per_page,
            "total_entries": total,
            "last_page": last,
            "next_page": page + 1 if page < last else None,
            "previous_page": page - 1 if page > 1 else None,
        }
        return self._ok(200, {"images": page_items, "meta": {"pagination": pagination}})

    def _get_image(self, call: Call) -> Reply:
        image = self.images.get(int(call.params["id"]))
        if image is None:
            return self._missing("image")
        return self._ok(200, {"image": self._image_json(self._touch(image))})

    def _update_image(self, call: Call) -> Reply:
        image = self.images.get(int(call.params["id"]))
        if image is None:
            return self._missing("image")
        if "labels" in call.json:
            image["labels"] = dict(call.json["labels"])
        if "description" in call.json:
            image["description"] = call.json["description"]
        return self._ok(200, {"image": self._image_json(image)})

    def _delete_image(self, call: Call) -> Reply:
        image = self.images.get(int(call.params["id"]))
        if image is None:
            return self._missing("image")
        if image["protection"]["delete"]:
            return self.error(423, "protected", "image is delete protected")
        del self.images[image["id"]]
        return self._ok(204)

    def _change_protection(self, call: Call) -> Reply:
        image = self.images.get(int(call.params["id"]))
        if image is None:
            return self._missing("image")
        if "delete" in call.json:
            image["protection"]["delete"] = bool(call.json["delete"])
        action = self.new_action("change_protection", image["id"])
        return self._ok(201, {"action": self._action_json(action.id)})


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Hetzner label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
    comma-separated (all must hold)."""
    for term in re.split(r",(?![^()]*\))", selector):
        term = term.strip()
        if not term:
            continue
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            if (labels.get(m.group(1)) in values) != (m.group(2) == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = re.split(r"==?", term, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True
