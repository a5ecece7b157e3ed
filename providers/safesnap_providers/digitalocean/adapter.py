"""DigitalOcean: volume snapshots, droplet snapshots and their transfer to other regions.

What the API allows (specs/README.md, checked against DO's documentation):
- volume snapshots are synchronous (`POST /v2/volumes/{id}/snapshots` returns the finished
  snapshot) and accept `tags`, so labels are attached at creation; they cannot change region;
- droplet snapshots are a droplet action (`snapshot`) to poll; the image appears only when it
  succeeds and the action takes no tags, so labels are attached right after (a crash in between
  leaves an unlabelled image that retention never touches, the safe side);
- droplet snapshots (images) move with the image action `transfer`; the image keeps its id and
  gains a region, so a "copy" is the same id listed in another region;
- 25 snapshots per volume, one volume snapshot per 10 minutes; 250 requests/min, 5,000/h.

Labels become tags (names only, `[A-Za-z0-9:_-]`): `safesnap:<key>:<value>` with every other
character of the value escaped as `_xx` (hex), so any label round-trips.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from safesnap.errors import ProviderError, ProviderTimeoutError
from safesnap_providers.base import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    Capabilities,
    Snapshot,
    SnapshotRequest,
    http_date,
    labels_match,
)
from safesnap_providers.digitalocean import restored
from safesnap_providers.digitalocean.api import PROVIDER, DoApi
from safesnap_providers.digitalocean.config import (
    DO_VOLUME_CAP,
    DigitalOceanSettings,
    DigitalOceanSnapshot,
)
from safesnap_providers.polling import Pace, PollState, wait_done
from safesnap_providers.secrets import require_token

TAG_PREFIX = "safesnap:"
PER_RUN_KEYS = frozenset({"run-id", "expires-at"})  # labels whose tags one run makes alone
log = logging.getLogger("safesnap.providers.digitalocean")
_PLAIN = re.compile(r"[A-Za-z0-9-]")
PENDING_PREFIX = "action-"  # id of a droplet snapshot whose image does not exist yet
# An action's `status` is in-progress, completed or errored (DO API reference, Actions).
_ACTION_STATES: dict[str, PollState] = {"completed": "completed", "errored": "error"}


def label_tags(labels: Mapping[str, str]) -> list[str]:
    return [f"{TAG_PREFIX}{_escape(k)}:{_escape(v)}" for k, v in sorted(labels.items())]


def tag_labels(tags: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags or []:
        if tag.startswith(TAG_PREFIX) and tag.count(":") >= 2:
            key, _, value = tag[len(TAG_PREFIX) :].partition(":")
            out[_unescape(key)] = _unescape(value)
    return out


def _escape(value: str) -> str:
    return "".join(
        c if _PLAIN.match(c) else "".join(f"_{b:02x}" for b in c.encode()) for c in value
    )


def _unescape(value: str) -> str:
    # Plain characters never include '%' or '_', so every '%' below comes from an escape.
    return unquote(re.sub(r"_([0-9a-f]{2})", r"%\1", value))


class DigitalOcean:
    name = PROVIDER
    client_retries: frozenset[str] = frozenset()  # python-digitalocean never retries

    def __init__(
        self,
        api: DoApi,
        *,
        region: str | None = None,
        poll_interval: float = 10.0,
        max_poll_interval: float = 60.0,
        droplet_copies: bool = False,
        home: tuple[str, str] | None = None,
        restore_size: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self._region = region
        self._home = home  # ("volumes"|"droplets", id): where to read the home region from
        self.pace = Pace(poll_interval, max_poll_interval, sleep=sleep, clock=clock)
        self.droplet_copies = droplet_copies
        self.restore_size = restore_size  # plan's size slug for restored droplets (None: fit)
        self._transfers: dict[tuple[str, str], int] = {}  # (image id, region) -> action id
        self._known_tags: set[str] = set()

    def __repr__(self) -> str:
        return f"DigitalOcean(region={self._region!r}, api={self.api!r})"

    @property
    def region(self) -> str | None:
        """The home region: given, or read once from the plan's first volume/droplet (the plan
        does not name it, and run/list/prune need it next to the `copy_to` regions)."""
        if self._region is None and self._home is not None:
            kind, ident = self._home
            self._home = None  # one attempt; without it, listing covers every region
            with contextlib.suppress(ProviderError, KeyError, TypeError):
                self._region = str(self.api.get(f"{kind}/{ident}")[kind[:-1]]["region"]["slug"])
        return self._region

    def capabilities(self) -> Capabilities:
        return Capabilities(
            volume_snapshots=True,
            server_snapshots=True,
            # Only droplet snapshots can move (image action `transfer`); volume snapshots stay
            # in their region, so the pipeline replicates artifacts instead.
            cross_region_copy=self.droplet_copies,
            point_in_time_at_request=True,
            max_snapshots_per_volume=DO_VOLUME_CAP,
            min_interval_seconds=600,
            restore_to_volume=True,
            drill_volumes=True,
            notes=(
                "volume snapshots cannot change region: artifacts are replicated instead",
                "droplet snapshots are labelled right after their action finishes",
                "a transferred droplet snapshot keeps its id; deleting it removes every region",
            ),
        )

    def provider_now(self) -> datetime | None:
        return http_date(self.api.last_date)

    # ---- create / wait -------------------------------------------------------------------
    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        if request.source_kind == "volume":
            body = {"name": request.name, "tags": label_tags(request.labels)}
            data = self.api.post(f"volumes/{request.source_id}/snapshots", body)
            return [self._snapshot(data["snapshot"])]
        if request.source_kind == "server":
            return [self._pending_droplet(request, self._start_droplet_snapshot(request))]
        raise ProviderError(
            f"DigitalOcean cannot snapshot a {request.source_kind!r} source as one set",
            provider=PROVIDER,
            resource_id=request.source_id,
        )

    def _start_droplet_snapshot(self, request: SnapshotRequest) -> dict[str, Any]:
        """POST the `snapshot` action. A droplet runs one action at a time and answers 422
        "pending event" otherwise; when that pending action is a snapshot it is most likely
        ours from an attempt whose answer was lost (the retry layer found nothing labelled:
        droplet snapshots get their tags only when done), so adopt it instead of failing or
        creating a duplicate. If it was someone else's, `wait` finds no image with our name
        and fails loudly; nothing is mislabelled."""
        path = f"droplets/{request.source_id}/actions"
        try:
            return dict(self.api.post(path, {"type": "snapshot", "name": request.name})["action"])
        except ProviderError as exc:
            if exc.status != 422 or "pending event" not in exc.message.lower():
                raise
            # Only this rare path reads the droplet's action history (at most one action runs).
            for action in self.api.pages(path, "actions"):
                if action.get("type") == "snapshot" and action.get("status") == "in-progress":
                    return dict(action)
            raise

    def _pending_droplet(self, request: SnapshotRequest, action: dict[str, Any]) -> Snapshot:
        return Snapshot(
            id=f"{PENDING_PREFIX}{action['id']}",
            source_id=request.source_id,
            region=str(action.get("region_slug") or self.region or ""),
            state="pending",
            created_at=_time(action.get("started_at")),
            labels=dict(request.labels),
            name=request.name,
        )

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        if snapshot.id.startswith(PENDING_PREFIX):
            self._wait_action(int(snapshot.id[len(PENDING_PREFIX) :]), snapshot, timeout)
            return self._label_droplet_snapshot(snapshot)
        if snapshot.state == "completed":
            return snapshot  # volume snapshots are synchronous: nothing to poll
        action_id = self._transfers.get((snapshot.id, snapshot.region))
        if action_id is not None:
            self._wait_action(action_id, snapshot, timeout)
        item = self.api.get(f"snapshots/{snapshot.id}")["snapshot"]
        if snapshot.region not in (item.get("regions") or []):
            if action_id is None:  # a transfer started elsewhere: poll the image's regions
                return self._wait_region(snapshot, timeout)
            raise ProviderError(
                f"snapshot {snapshot.id} is not in {snapshot.region}",
                provider=PROVIDER,
                resource_id=snapshot.id,
            )
        return self._snapshot(item, snapshot.region)

    def _wait_region(self, snapshot: Snapshot, timeout: float) -> Snapshot:
        """Poll the image until it lists the region (the caller has just seen it missing)."""

        def arrived() -> Snapshot | None:
            item = self.api.get(f"snapshots/{snapshot.id}")["snapshot"]
            if snapshot.region in (item.get("regions") or []):
                return self._snapshot(item, snapshot.region)
            return None

        return self.pace.until(
            arrived,
            timeout=timeout,
            check_first=False,
            on_timeout=lambda: ProviderTimeoutError(
                f"snapshot {snapshot.id} not in {snapshot.region} after {timeout:.0f}s",
                provider=PROVIDER,
                resource_id=snapshot.id,
            ),
        )

    def _wait_action(self, action_id: int, snapshot: Snapshot, timeout: float) -> None:
        """Poll `GET /v2/actions/{id}` with capped exponential backoff until it completes."""

        seen: dict[str, Any] = {}

        def poll() -> tuple[PollState, None]:
            seen.update(self.api.get(f"actions/{action_id}")["action"])
            return _ACTION_STATES.get(str(seen.get("status")), "pending"), None

        wait_done(
            poll,
            self.pace,
            timeout=timeout,
            # DO actions carry no error text: say what the action reported about itself.
            on_error=lambda: ProviderError(
                f"DigitalOcean action {action_id} ({seen.get('type')} of "
                f"{seen.get('resource_type')} {seen.get('resource_id')} in "
                f"{seen.get('region_slug')}) ended with status {seen.get('status')}, "
                f"started {seen.get('started_at')}, completed {seen.get('completed_at')}",
                provider=PROVIDER,
                resource_id=snapshot.id,
            ),
            on_timeout=lambda: ProviderTimeoutError(
                f"DigitalOcean action {action_id} still in progress after {timeout:.0f}s",
                provider=PROVIDER,
                resource_id=snapshot.id,
            ),
        )

    def _label_droplet_snapshot(self, pending: Snapshot) -> Snapshot:
        found = [
            s
            for s in self.api.pages(f"droplets/{pending.source_id}/snapshots", "snapshots")
            if s["name"] == pending.name
        ]
        if not found:
            raise ProviderError(
                f"snapshot {pending.name!r} of droplet {pending.source_id} "
                "not found after its action completed",
                provider=PROVIDER,
                resource_id=pending.id,
            )
        image = max(found, key=lambda s: (s["created_at"], int(s["id"])))
        self._tag_image(str(image["id"]), pending.labels)
        item = {**image, "resource_id": pending.source_id, "tags": label_tags(pending.labels)}
        return self._snapshot(item)

    def add_labels(self, snapshot: Snapshot, labels: Mapping[str, str]) -> None:
        if snapshot.id.startswith(PENDING_PREFIX):
            raise ProviderError(
                f"snapshot {snapshot.id} has no image yet to label",
                provider=PROVIDER,
                resource_id=snapshot.id,
            )
        current = self.api.get(f"snapshots/{snapshot.id}")["snapshot"]
        kind = "image" if current.get("resource_type") == "droplet" else "volume_snapshot"
        self._tag_image(snapshot.id, labels, kind)

    def _tag_image(self, image_id: str, labels: Mapping[str, str], kind: str = "image") -> None:
        for tag in label_tags(labels):
            # Assigning needs the tag to exist. Create each tag once per process: a plan's
            # snapshots share all their tags, so this halves the calls (bench/provider_bench.py).
            if tag not in self._known_tags:
                self.api.post("tags", {"name": tag})
                self._known_tags.add(tag)
            self.api.post(
                f"tags/{tag}/resources",
                {"resources": [{"resource_id": image_id, "resource_type": kind}]},
            )

    def adopt_unlabelled(self, request: SnapshotRequest) -> list[Snapshot]:
        """Droplet images this target's earlier runs left untagged (their wait failed after
        the action had started), found by droplet and name, tagged now as nightly snapshots
        of the plan and target, so they are listed and retention deletes them in time."""
        if request.source_kind != "server":
            return []
        prefix = f"safesnap-{request.labels.get('target', '')}-"
        adopted: list[Snapshot] = []
        for item in list(self.api.pages("snapshots", "snapshots", resource_type="droplet")):
            name = str(item.get("name", ""))
            if str(item.get("resource_id")) != request.source_id or not name.startswith(prefix):
                continue
            if MANAGED_BY_KEY in tag_labels(item.get("tags")):
                continue
            labels = adopted_labels(request.labels, name[len(prefix) :])
            self._tag_image(str(item["id"]), labels)
            adopted.append(self._snapshot({**item, "tags": label_tags(labels)}))
        return adopted

    # ---- list / delete -------------------------------------------------------------------
    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        where = region or self.region
        out: list[Snapshot] = []
        for item in self.api.pages("snapshots", "snapshots"):
            if not labels_match(tag_labels(item.get("tags")), labels):
                continue
            regions = list(item.get("regions") or [])
            if where is None:
                # One entry per image (its home region): retention must not count a
                # transferred image twice; ask for a region to see it there.
                out.append(self._snapshot(item))
            elif where in regions:
                out.append(self._snapshot(item, where))
        return out

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.id.startswith(PENDING_PREFIX):
            raise ProviderError(
                f"snapshot {snapshot.id} has no image yet: wait for it first",
                provider=PROVIDER,
                resource_id=snapshot.id,
            )
        try:
            current = self.api.get(f"snapshots/{snapshot.id}")["snapshot"]
        except ProviderError as exc:
            if exc.status == 404:
                return  # already gone: deleting is idempotent
            raise
        if not labels_match(tag_labels(current.get("tags")), {}):
            raise ProviderError(
                f"refusing to delete snapshot {snapshot.id}: not labelled managed-by=safesnap",
                provider=PROVIDER,
                resource_id=snapshot.id,
            )
        try:
            self.api.delete(f"snapshots/{snapshot.id}")
        except ProviderError as exc:
            if exc.status != 404:
                raise
        self._drop_unused_tags(current.get("tags") or [])

    def _drop_unused_tags(self, tags: list[str]) -> None:
        """Delete this snapshot's per-run tags (run id, expiry) once they label nothing: each
        run makes its own, and DigitalOcean keeps empty tags forever. Shared tags (plan,
        target, kind) stay. Best effort: a tag left behind costs nothing."""
        for tag in tags:
            if not PER_RUN_KEYS & set(tag_labels([tag])):
                continue
            try:
                if int(self.api.get(f"tags/{tag}")["tag"]["resources"]["count"]) == 0:
                    self.api.delete(f"tags/{tag}")
                    self._known_tags.discard(tag)
            except (ProviderError, KeyError, TypeError, ValueError) as exc:
                log.info("kept tag %s: %s", tag, getattr(exc, "message", type(exc).__name__))

    # ---- copy / restore ------------------------------------------------------------------
    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        del labels  # a transfer adds a region to the image itself: same id, same tags
        current = self.api.get(f"snapshots/{snapshot.id}")["snapshot"]
        if current.get("resource_type") != "droplet":
            raise ProviderError(
                "DigitalOcean volume snapshots cannot change region (no API for it)",
                provider=PROVIDER,
                resource_id=snapshot.id,
                hint="Add a [[replicas]] object store; artifacts carry the data across regions.",
            )
        action = self.api.post(
            f"images/{snapshot.id}/actions", {"type": "transfer", "region": region}
        )
        self._transfers[(snapshot.id, region)] = int(action["action"]["id"])
        return Snapshot(
            id=snapshot.id,
            source_id=snapshot.source_id,
            region=region,
            state="pending",
            created_at=_time(action["action"].get("started_at")),
            labels=tag_labels(current.get("tags")),
            name=snapshot.name,
            size_gb=snapshot.size_gb,
            copied_from=snapshot.id,
        )

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        current = self.api.get(f"snapshots/{snapshot.id}")["snapshot"]
        region = zone or snapshot.region
        # Tagged at creation, so a drill (or an operator) can tell safesnap's restores from
        # anything else and delete_volume refuses the rest. Only the managed-by tag: DigitalOcean
        # keeps empty tags forever, so no per-snapshot tag; the name says where it came from.
        tags = label_tags({MANAGED_BY_KEY: MANAGED_BY_VALUE})
        if current.get("resource_type") == "volume":
            body = {
                "name": name,
                "snapshot_id": snapshot.id,
                "region": region,
                "size_gigabytes": int(current.get("min_disk_size") or 1),
                "tags": tags,
            }
            return str(self.api.post("volumes", body)["volume"]["id"])
        slug = size or self.restore_size or self._smallest_size(current, region)
        body2 = {"name": name, "region": region, "size": slug, "image": int(snapshot.id)}
        return str(self.api.post("droplets", {**body2, "tags": tags})["droplet"]["id"])

    def wait_volume(self, volume_id: str, *, region: str | None = None, timeout: float) -> None:
        """Until the restored volume exists, or the restored droplet is `active`."""
        del region  # ids are global on DigitalOcean
        restored.wait_restored(self.api, self.pace, volume_id, timeout)

    def delete_volume(self, volume_id: str, *, region: str | None = None) -> None:
        """Delete a restored volume or droplet tagged managed-by=safesnap (gone: success)."""
        del region
        restored.delete_restored(self.api, volume_id, tag_labels)

    def _smallest_size(self, image: Mapping[str, Any], region: str) -> str:
        """The cheapest droplet size offered in `region` whose disk holds the image (its
        `min_disk_size`): a fixed small size cannot take a larger snapshot (issue #9)."""
        need = float(image.get("min_disk_size") or 0)
        fits = [
            s
            for s in self.api.pages("sizes", "sizes")
            if s.get("available", True)
            and region in (s.get("regions") or [region])
            and float(s.get("disk") or 0) >= need
        ]
        if not fits:
            raise ProviderError(
                f"no droplet size in {region} has a disk of {need:g} GB or more",
                provider=PROVIDER,
                resource_id=str(image.get("id", "")),
                hint="Pass --size with a size slug, or restore in another region.",
            )
        best = min(fits, key=lambda s: (float(s.get("price_monthly") or 0), float(s["disk"])))
        return str(best["slug"])

    # ---- helpers -------------------------------------------------------------------------
    def _snapshot(self, item: Mapping[str, Any], region: str | None = None) -> Snapshot:
        regions = list(item.get("regions") or [])
        home = regions[0] if regions else (self.region or "")
        where = region or home
        labels = tag_labels(item.get("tags"))
        return Snapshot(
            id=str(item["id"]),
            source_id=str(item.get("resource_id", "")),
            region=where,
            state="completed",
            created_at=_time(item.get("created_at")),
            labels=labels,
            size_gb=item.get("size_gigabytes"),
            name=str(item.get("name", "")),
            copied_from=str(item["id"]) if where != home else None,
        )


def adopted_labels(labels: Mapping[str, str], stamp: str) -> dict[str, str]:
    """Labels for an image found untagged: this plan and target, kind nightly (its own kind
    and expiry were never recorded), and a run id made from the stamp in its name."""
    keep = {k: labels[k] for k in (MANAGED_BY_KEY, "plan", "target") if k in labels}
    return {**keep, "kind": "nightly", "run-id": f"{stamp.upper()}-recovered"}


def _time(value: object) -> datetime:
    if not value:
        return datetime.now(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def from_settings(
    config: DigitalOceanSettings | None,
    spec: DigitalOceanSnapshot | None,
    *,
    env_file: Path | None = None,
    region: str | None = None,
) -> DigitalOcean:
    """Build the adapter; the token is read from `config.token_env` and never logged."""
    config = config or DigitalOceanSettings()
    token = require_token(config.token_env, env_file, provider="DigitalOcean")
    api = DoApi(token, config.endpoint_url)
    droplet_only = spec is not None and spec.droplet_id is not None and not spec.volume_ids
    home: tuple[str, str] | None = None
    if spec is not None and spec.volume_ids:
        home = ("volumes", spec.volume_ids[0])
    elif spec is not None and spec.droplet_id is not None:
        home = ("droplets", str(spec.droplet_id))
    return DigitalOcean(
        api,
        region=region,
        poll_interval=config.poll_interval,
        droplet_copies=droplet_only,
        home=home,
        restore_size=spec.restore_size if spec is not None else None,
    )
