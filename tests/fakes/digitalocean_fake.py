"""Stateful fake of the DigitalOcean v2 endpoints safesnap uses, held to the published OpenAPI file.

State: volumes, volume snapshots (synchronous, as on DO), droplets, droplet snapshots (images that
appear when the droplet `snapshot` action succeeds), actions, tags. Every request and response
is validated against tests/specs/digitalocean-openapi.yaml by `OpenApiFake`.

Quirks of python-digitalocean undone before validation (tests/specs/README.md): trailing slashes on
paths and a `{}` body on DELETE; the real API accepts both.
"""

from __future__ import annotations

import functools
import uuid

import yaml

from tests.fakes.openapi_fake import (
    JSON,
    Call,
    OpenApiFake,
    Reply,
    header_map,
    now_iso,
)
from tests.fakes.schema_skeleton import skeleton
from tests.fakes.specs import SPECS_DIR

SPEC_PATH = SPECS_DIR / "digitalocean-openapi.yaml"
MAX_SNAPSHOTS_PER_VOLUME = 25  # documented cap (specs/README.md)
RATE_HEADERS = {"ratelimit-limit": 5000, "ratelimit-remaining": 4999, "ratelimit-reset": 1}


@functools.lru_cache(maxsize=1)
def load_spec() -> JSON:
    """Parsed once per process (0.7 s with the C loader); fakes copy only what they change."""
    with SPEC_PATH.open("rb") as fh:
        loaded: JSON = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return loaded


class DigitalOceanFake(OpenApiFake):
    base_path = ""

    def __init__(self, *, token: str = "do-test-token") -> None:
        super().__init__(load_spec(), token=token)
        self.volumes: dict[str, JSON] = {}
        self.snapshots: dict[str, JSON] = {}  # id -> snapshot (volume and droplet kinds)
        self.droplets: dict[int, JSON] = {}
        self.tags: set[str] = set()
        self.endless_pages = False  # every list page names a next page (a looping API)
        self.droplet_polls = 0  # a created droplet is `new` for this many reads, then `active`
        self._routes_do()

    # ---- test helpers (direct state, no HTTP) ----------------------------------------------
    def add_volume(self, region: str = "nyc3", size_gb: int = 10) -> str:
        vid = str(uuid.uuid4())
        self.volumes[vid] = {
            "id": vid,
            "name": f"vol-{len(self.volumes)}",
            "size_gigabytes": size_gb,
            "created_at": now_iso(),
            "droplet_ids": [],
            "tags": [],
            "region": _region(region),
            "filesystem_type": "ext4",
            "filesystem_label": "",
        }
        return vid

    def add_droplet(self, region: str = "nyc3", disk: int = 25) -> int:
        did = self._next_id()
        self.droplets[did] = {
            "id": did, "region": region, "disk": disk, "tags": [], "status": "active",
            "polls_left": 0,
        }  # fmt: skip
        return did

    def add_droplet_image(self, droplet_id: int, name: str) -> str:
        """A finished droplet snapshot with no tags (made by hand, or left by a failed wait)."""
        self._finish_droplet_snapshot(self.droplets[droplet_id], name)
        return max((k for k in self.snapshots if k.isdigit()), key=int)

    def rate_limit(
        self,
        retry_after: int | None = 1,
        *,
        times: int = 1,
        path: str | None = None,
        reset_at: float | None = None,
    ) -> None:
        """429 with DigitalOcean's headers. `retry_after=None` leaves `retry-after` out, so
        only `ratelimit-reset` (epoch seconds; `reset_at`, e.g. in the past) tells the wait."""
        pairs: dict[str, str | int | float] = {**RATE_HEADERS, "ratelimit-remaining": 0}
        if retry_after is not None:
            pairs["retry-after"] = retry_after
        if reset_at is not None:
            pairs["ratelimit-reset"] = int(reset_at)
        headers = header_map(pairs)
        self.inject(
            self.error(429, "too_many_requests", "API rate limit exceeded.", **headers),
            times=times,
            path=path,
        )

    def server_error(
        self, status: int = 500, *, times: int = 1, path: str | None = None, skip: int = 0
    ) -> None:
        """`skip`: let that many matching requests through first (a 503 at poll N)."""
        self.inject(
            self.error(status, "server_error", "Server Error"), times=times, path=path, skip=skip
        )

    # ---- OpenApiFake hooks -----------------------------------------------------------------
    def error_body(self, status: int, code: str, message: str) -> JSON:
        ids = {
            400: "bad_request",
            401: "unauthorized",
            404: "not_found",
            422: "unprocessable_entity",
        }
        return {"id": ids.get(status, code), "message": message, "request_id": str(uuid.uuid4())}

    def normalise(self, method: str, path: str, body: bytes) -> tuple[str, bytes]:
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        if method in ("DELETE", "GET") and body.strip() in (b"{}", b""):
            body = b""
        return path, body

    # ---- routes ----------------------------------------------------------------------------
    def _routes_do(self) -> None:
        r = self.route
        r("GET", "/v2/volumes/{volume_id}", self._get_volume)
        r("GET", "/v2/droplets/{droplet_id}", self._get_droplet)
        r("DELETE", "/v2/volumes/{volume_id}", self._delete_volume)
        r("DELETE", "/v2/droplets/{droplet_id}", self._delete_droplet)
        r("POST", "/v2/volumes", self._create_volume)
        r("GET", "/v2/volumes/{volume_id}/snapshots", self._list_volume_snapshots)
        r("POST", "/v2/volumes/{volume_id}/snapshots", self._snapshot_volume)
        r("GET", "/v2/snapshots", self._list_snapshots)
        r("GET", "/v2/snapshots/{snapshot_id}", self._get_snapshot)
        r("DELETE", "/v2/snapshots/{snapshot_id}", self._delete_snapshot)
        r("POST", "/v2/droplets/{droplet_id}/actions", self._droplet_action)
        r("GET", "/v2/droplets/{droplet_id}/actions", self._list_droplet_actions)
        r("GET", "/v2/droplets/{droplet_id}/snapshots", self._list_droplet_snapshots)
        r("POST", "/v2/droplets", self._create_droplet)
        r("GET", "/v2/sizes", self._list_sizes)
        r("GET", "/v2/actions/{action_id}", self._get_action)
        r("POST", "/v2/images/{image_id}/actions", self._image_action)
        r("POST", "/v2/tags", self._create_tag)
        r("POST", "/v2/tags/{tag_id}/resources", self._tag_resources)
        r("GET", "/v2/tags/{tag_id}", self._get_tag)
        r("DELETE", "/v2/tags/{tag_id}", self._delete_tag)

    def _ok(self, status: int, body: JSON | None = None) -> Reply:
        return Reply(status, body, header_map(RATE_HEADERS))

    def _get_volume(self, call: Call) -> Reply:
        vol = self.volumes.get(call.params["volume_id"])
        if vol is None:
            return self.error(
                404, "not_found", "The resource you were accessing could not be found."
            )
        return self._ok(200, {"volume": vol})

    def _get_droplet(self, call: Call) -> Reply:
        droplet = self.droplets.get(int(call.params["droplet_id"]))
        if droplet is None:
            return self.error(404, "not_found", "droplet not found")
        if droplet["status"] == "new":  # booting: `active` after `droplet_polls` reads
            droplet["polls_left"] -= 1
            if droplet["polls_left"] < 0:
                droplet["status"] = "active"
        return self._ok(200, {"droplet": self._droplet_json(droplet)})

    def _delete_volume(self, call: Call) -> Reply:
        if self.volumes.pop(call.params["volume_id"], None) is None:
            return self.error(404, "not_found", "volume not found")
        return self._ok(204)

    def _delete_droplet(self, call: Call) -> Reply:
        if self.droplets.pop(int(call.params["droplet_id"]), None) is None:
            return self.error(404, "not_found", "droplet not found")
        return self._ok(204)

    def _droplet_json(self, droplet: JSON) -> JSON:
        """The droplet object is large; only id, disk and region matter to safesnap."""
        schema = load_spec()["components"]["schemas"]["droplet"]
        body: JSON = skeleton(load_spec(), schema)
        body.update(
            id=droplet["id"],
            name=f"droplet-{droplet['id']}",
            disk=droplet["disk"],
            region=_region(droplet["region"]),
            status=droplet["status"],
            tags=list(droplet["tags"]),
            memory=1024,
        )
        body["size"]["memory"] = 1024  # the schema wants multiples of 8 MiB
        return body

    def _create_volume(self, call: Call) -> Reply:
        body = call.json
        snap_id = body.get("snapshot_id")
        if snap_id is not None:
            snap = self.snapshots.get(snap_id)
            if snap is None or snap["resource_type"] != "volume":
                return self.error(404, "not_found", "snapshot not found")
            if body["region"] not in snap["regions"]:
                return self.error(422, "unprocessable_entity", "snapshot is not in that region")
        vid = self.add_volume(body["region"], body["size_gigabytes"])
        self.volumes[vid]["name"] = body["name"]
        self.volumes[vid]["tags"] = list(body.get("tags") or [])
        self.tags.update(body.get("tags") or [])  # DigitalOcean creates tags named at creation
        return self._ok(201, {"volume": self.volumes[vid]})

    def _snapshot_volume(self, call: Call) -> Reply:
        vid = call.params["volume_id"]
        vol = self.volumes.get(vid)
        if vol is None:
            return self.error(404, "not_found", "volume not found")
        existing = [s for s in self.snapshots.values() if s["resource_id"] == vid]
        if len(existing) >= MAX_SNAPSHOTS_PER_VOLUME:
            return self.error(422, "unprocessable_entity", "volume has reached its snapshot limit")
        tags = list(call.json.get("tags") or [])
        self.tags.update(tags)
        snap = {
            "id": str(uuid.uuid4()),
            "name": call.json["name"],
            "created_at": now_iso(),
            "regions": [vol["region"]["slug"]],
            "min_disk_size": vol["size_gigabytes"],
            "size_gigabytes": 0.5,
            "resource_id": vid,
            "resource_type": "volume",
            "tags": tags,
        }
        self.snapshots[snap["id"]] = snap
        return self._ok(201, {"snapshot": snap})

    def _page(self, call: Call, key: str, items: list[JSON]) -> Reply:
        page_items, page, per_page, total = self.paginate(call, items, 20)
        pages: JSON = {}
        if page * per_page < total or self.endless_pages:
            base = f"{self.url}{call.path}?"
            extra = "".join(
                f"&{k}={v}" for k, v in call.query.items() if k not in ("page", "per_page")
            )
            pages["next"] = f"{base}page={page + 1}&per_page={per_page}{extra}"
            pages["last"] = (
                f"{base}page={(total + per_page - 1) // per_page}&per_page={per_page}{extra}"
            )
        return self._ok(200, {key: page_items, "links": {"pages": pages}, "meta": {"total": total}})

    def _list_volume_snapshots(self, call: Call) -> Reply:
        vid = call.params["volume_id"]
        if vid not in self.volumes:
            return self.error(404, "not_found", "volume not found")
        items = [s for s in self.snapshots.values() if s["resource_id"] == vid]
        return self._page(call, "snapshots", items)

    def _list_snapshots(self, call: Call) -> Reply:
        kind = call.query.get("resource_type")
        items = [s for s in self.snapshots.values() if kind in (None, s["resource_type"])]
        return self._page(call, "snapshots", items)

    def _get_snapshot(self, call: Call) -> Reply:
        snap = self.snapshots.get(call.params["snapshot_id"])
        if snap is None:
            return self.error(404, "not_found", "snapshot not found")
        for action in list(self.actions.values()):
            # Real transfers run on their own; here they move when the image is read too, so a
            # client that lost the action id (another process) still sees the region arrive.
            if action.command == "transfer" and str(action.resource_id) == snap["id"]:
                action.advance()
        return self._ok(200, {"snapshot": snap})

    def _delete_snapshot(self, call: Call) -> Reply:
        if self.snapshots.pop(call.params["snapshot_id"], None) is None:
            return self.error(404, "not_found", "snapshot not found")
        return self._ok(204)

    def _droplet_action(self, call: Call) -> Reply:
        did = int(call.params["droplet_id"])
        droplet = self.droplets.get(did)
        if droplet is None:
            return self.error(404, "not_found", "droplet not found")
        if call.json.get("type") != "snapshot":
            return self.error(422, "unprocessable_entity", "the fake only implements 'snapshot'")
        if any(a.resource_id == did and a.status == "running" for a in self.actions.values()):
            # DigitalOcean runs one action per droplet at a time.
            return self.error(422, "unprocessable_entity", "Droplet already has a pending event.")
        name = call.json.get("name") or f"snapshot-{did}"
        action = self.new_action(
            "snapshot", did, lambda: self._finish_droplet_snapshot(droplet, name)
        )
        return self._ok(201, {"action": self._action_json(action.id)})

    def _list_droplet_actions(self, call: Call) -> Reply:
        did = int(call.params["droplet_id"])
        if did not in self.droplets:
            return self.error(404, "not_found", "droplet not found")
        mine = [
            a for a in self.actions.values() if a.resource_id == did and a.command != "transfer"
        ]
        newest_first = sorted(mine, key=lambda a: a.id, reverse=True)
        return self._page(call, "actions", [self._action_json(a.id) for a in newest_first])

    def _finish_droplet_snapshot(self, droplet: JSON, name: str) -> None:
        sid = str(self._next_id())
        self.snapshots[sid] = {
            "id": sid,
            "name": name,
            "created_at": now_iso(),
            "regions": [droplet["region"]],
            "min_disk_size": droplet["disk"],
            "size_gigabytes": 1.5,
            "resource_id": str(droplet["id"]),
            "resource_type": "droplet",
            "tags": [],
        }

    def _list_droplet_snapshots(self, call: Call) -> Reply:
        did = call.params["droplet_id"]
        if int(did) not in self.droplets:
            return self.error(404, "not_found", "droplet not found")
        items = [
            {
                **{
                    k: s[k]
                    for k in ("name", "created_at", "regions", "min_disk_size", "size_gigabytes")
                },
                "id": int(s["id"]),
                "type": "snapshot",
            }
            for s in self.snapshots.values()
            if s["resource_type"] == "droplet" and s["resource_id"] == did
        ]
        return self._page(call, "snapshots", items)

    def _list_sizes(self, call: Call) -> Reply:
        return self._page(call, "sizes", [dict(s) for s in SIZES])

    def _create_droplet(self, call: Call) -> Reply:
        image = str(call.json.get("image"))
        if (
            image not in self.snapshots
            or call.json.get("region") not in self.snapshots[image]["regions"]
        ):
            return self.error(422, "unprocessable_entity", "image not available in that region")
        size = next((s for s in SIZES if s["slug"] == call.json.get("size")), None)
        if size is None:
            return self.error(422, "unprocessable_entity", "invalid size")
        if size["disk"] < self.snapshots[image]["min_disk_size"]:
            # What DigitalOcean answers for an image larger than the size's disk.
            return self.error(
                422, "unprocessable_entity", "image requires a larger disk than the size has"
            )
        did = self.add_droplet(call.json["region"])
        tags = list(call.json.get("tags") or [])
        self.tags.update(tags)  # DigitalOcean creates tags named at creation
        self.droplets[did].update(tags=tags, status="new", polls_left=self.droplet_polls)
        return self._ok(202, {"droplet": self._droplet_json(self.droplets[did]), "links": {}})

    def _get_action(self, call: Call) -> Reply:
        action = self.actions.get(int(call.params["action_id"]))
        if action is None:
            return self.error(404, "not_found", "action not found")
        action.advance()
        return self._ok(200, {"action": self._action_json(action.id)})

    def _action_json(self, action_id: int) -> JSON:
        a = self.actions[action_id]
        status = {"running": "in-progress", "success": "completed", "error": "errored"}[a.status]
        region = getattr(a, "region", "nyc3")
        return {
            "id": a.id,
            "status": status,
            "type": a.command,
            "started_at": a.started_iso,
            "completed_at": a.finished_iso,
            "resource_id": int(a.resource_id),
            "resource_type": "image" if a.command == "transfer" else "droplet",
            "region": _region(region),
            "region_slug": region,
        }

    def _image_action(self, call: Call) -> Reply:
        image_id = call.params["image_id"]
        snap = self.snapshots.get(image_id)
        if snap is None or snap["resource_type"] != "droplet":
            return self.error(404, "not_found", "image not found")
        region = call.json.get("region")
        if call.json.get("type") != "transfer" or not region:
            return self.error(422, "unprocessable_entity", "the fake only implements 'transfer'")

        def land() -> None:
            if region not in snap["regions"]:
                snap["regions"].append(region)

        action = self.new_action("transfer", int(image_id), land)
        action.region = region  # type: ignore[attr-defined]
        return self._ok(201, {"action": self._action_json(action.id)})

    def _create_tag(self, call: Call) -> Reply:
        name = call.json["name"]
        self.tags.add(name)
        return self._ok(201, {"tag": {"name": name, "resources": {"count": 0}}})

    def _get_tag(self, call: Call) -> Reply:
        tag = call.params["tag_id"]
        if tag not in self.tags:
            return self.error(404, "not_found", "tag not found")
        tagged = [*self.snapshots.values(), *self.volumes.values(), *self.droplets.values()]
        count = sum(tag in s["tags"] for s in tagged)
        return self._ok(200, {"tag": {"name": tag, "resources": {"count": count}}})

    def _delete_tag(self, call: Call) -> Reply:
        tag = call.params["tag_id"]
        if tag not in self.tags:
            return self.error(404, "not_found", "tag not found")
        self.tags.discard(tag)
        for snap in self.snapshots.values():  # deleting a tag untags what it labelled
            if tag in snap["tags"]:
                snap["tags"].remove(tag)
        return self._ok(204)

    def _tag_resources(self, call: Call) -> Reply:
        tag = call.params["tag_id"]
        if tag not in self.tags:
            return self.error(404, "not_found", "tag not found")
        for res in call.json["resources"]:
            snap = self.snapshots.get(str(res["resource_id"]))
            if snap is None:
                return self.error(404, "not_found", f"resource {res['resource_id']} not found")
            if tag not in snap["tags"]:
                snap["tags"].append(tag)
        return self._ok(204)


def _size(slug: str, disk: int, memory: int, price: float) -> JSON:
    return {
        "slug": slug,
        "memory": memory,
        "vcpus": 1,
        "disk": disk,
        "transfer": 1.0,
        "price_monthly": price,
        "price_hourly": round(price / 730, 5),
        "regions": ["nyc3", "fra1", "ams3"],
        "available": True,
        "description": "Basic",
    }


# A few of DigitalOcean's published sizes (slug, disk GB, memory MB, $/month).
SIZES = [
    _size("s-1vcpu-1gb", 25, 1024, 6.0),
    _size("s-1vcpu-2gb", 50, 2048, 12.0),
    _size("s-2vcpu-4gb", 80, 4096, 24.0),
    _size("s-4vcpu-8gb", 160, 8192, 48.0),
]


def _region(slug: str) -> JSON:
    return {"name": slug, "slug": slug, "features": [], "available": True, "sizes": []}
