"""Hetzner Cloud: server snapshots (images) through hcloud-python.

What the API allows (specs/README.md, checked against Hetzner's documentation):
- no volume snapshots at all; a server snapshot (`POST /servers/{id}/actions/create_image`,
  type `snapshot`) covers the server's own disk, not attached volumes;
- labels are accepted at creation, so a crashed run still leaves a findable image;
- the point in time is fixed when the action is requested; the image is usable when it succeeds;
- images belong to the project, not to a location: nothing to copy across regions;
- delete protection (`change_protection`) guards pre-upgrade snapshots;
- 3,600 requests/h per project, refilled 1/s; 429 `rate_limit_exceeded` with `RateLimit-*`.

Retries: hcloud retries 429/502/504 and some error codes itself (5 times, backoff up to 60 s),
which would multiply with `safesnap_providers.retry`. The adapter switches that loop off, so
retry.py is the one layer and honours the wait the API asked for. Errors are classified from
`APIException.code`, and the correlation id is kept as the request id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from hcloud import Client
from hcloud.actions import BoundAction
from hcloud.images import BoundImage, Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import Server

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
from safesnap_providers.hetzner import restored
from safesnap_providers.hetzner.config import HetznerSettings, HetznerSnapshot
from safesnap_providers.hetzner.errors import (
    PERMANENT_HINTS,
    PROVIDER,
    LastResponse,
    call,
    take_over_retries,
)
from safesnap_providers.polling import Pace, PollState, wait_done
from safesnap_providers.secrets import require_token
from safesnap_providers.timestamps import parse_stamp

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
PER_PAGE = 50  # the API's maximum page size
MAX_PAGES = 100  # 5,000 safesnap snapshot images: far beyond any plan's retention
T = TypeVar("T")
# An action is running, success or error; an image is creating, available or unavailable
# (Hetzner Cloud API reference, Actions and Images).
_ACTION_STATES: dict[str, PollState] = {"success": "completed", "error": "error"}
_IMAGE_STATES: dict[str, PollState] = {"available": "completed", "unavailable": "error"}


class Hetzner:
    name = PROVIDER

    def __init__(
        self,
        client: Client,
        *,
        region: str | None = None,
        protect: bool = False,
        poll_interval: float = 5.0,
        max_poll_interval: float = 30.0,
        restore_server_type: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.region = region or "global"
        self.protect = protect
        self.pace = Pace(poll_interval, max_poll_interval, sleep=sleep, clock=clock)
        self.restore_server_type = restore_server_type
        self.now = now
        self._actions: dict[str, int] = {}  # image id -> create_image action id
        self._errors: dict[str, dict[str, str]] = {}  # image id -> its failed action's error
        self._creates: dict[str, int] = {}  # restored server id -> its create action id
        self._last = LastResponse()
        self.client_retries = take_over_retries(client, self._last)

    def __repr__(self) -> str:  # the hcloud client holds the token: never print it
        return f"Hetzner(region={self.region!r}, protect={self.protect})"

    def capabilities(self) -> Capabilities:
        return Capabilities(
            volume_snapshots=False,
            server_snapshots=True,
            cross_region_copy=False,
            point_in_time_at_request=True,
            restore_to_volume=True,
            drill_volumes=True,
            notes=(
                "Hetzner volumes have no snapshot API: the database is copied as an artifact",
                "images belong to the project, not a location: nothing needs copying",
                "restore creates a new server from the snapshot",
            ),
        )

    def provider_now(self) -> datetime | None:
        """Hetzner's clock: the Date of this thread's last response."""
        headers = {k.lower(): v for k, v in self._last.headers.items()}
        return http_date(headers.get("date"))

    def add_labels(self, snapshot: Snapshot, labels: Mapping[str, str]) -> None:
        image = self._get_image(snapshot.id)
        merged = {**(image.labels or {}), **labels}
        self._call(lambda: self.client.images.update(image, labels=merged), snapshot.id)

    # ---- create / wait -------------------------------------------------------------------
    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        if request.source_kind != "server":
            raise ProviderError(
                "Hetzner Cloud can only snapshot servers (volumes have no snapshot API)",
                provider=PROVIDER,
                resource_id=request.source_id,
            )
        server = Server(id=int(request.source_id))
        created = self._call(
            lambda: self.client.servers.create_image(
                server, description=request.name, type="snapshot", labels=dict(request.labels)
            ),
            request.source_id,
        )
        self._actions[str(created.image.id)] = int(created.action.id)
        return [self._snapshot(created.image)]

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        deadline = self.pace.clock() + timeout  # protecting the image shares the budget
        action_id = self._actions.get(snapshot.id)
        wait_done(
            lambda: (self._poll(snapshot.id, action_id), None),
            self.pace,
            timeout=timeout,
            on_error=lambda: ProviderError(
                f"Hetzner snapshot {snapshot.id} failed{self._failure_text(snapshot.id)}",
                provider=PROVIDER,
                resource_id=snapshot.id,
            ),
            on_timeout=lambda: ProviderTimeoutError(
                f"Hetzner snapshot {snapshot.id} still creating after {timeout:.0f}s",
                provider=PROVIDER,
                resource_id=snapshot.id,
            ),
        )
        image = self._get_image(snapshot.id)
        if self.protect and not _protected(image):
            self._set_protection(snapshot.id, True, deadline)
            image = self._get_image(snapshot.id)
        return self._snapshot(image)

    def _failure_text(self, image_id: str) -> str:
        error = self._errors.get(image_id)
        if not error:
            return ""
        return f": {error.get('code', 'error')}: {str(error.get('message', ''))[:300]}"

    def _poll(self, image_id: str, action_id: int | None) -> PollState:
        """One poll: from the action when this process started it, else from the image status
        (another process, or a run that crashed, started it)."""
        if action_id is not None:
            action = self._get_action(action_id, image_id)
            if action.error:  # {"code": ..., "message": ...}: Hetzner's own words, kept
                self._errors[image_id] = {
                    "code": action.error["code"],
                    "message": action.error["message"],
                }
            return _action_state(action)
        return _image_state(self._get_image(image_id))

    def _set_protection(self, image_id: str, delete: bool, deadline: float) -> None:
        action = self._call(
            lambda: self.client.images.change_protection(Image(id=int(image_id)), delete=delete),
            image_id,
        )
        action_id = action.id

        def unfinished() -> ProviderError:
            return ProviderError(
                f"changing protection of image {image_id} did not finish",
                provider=PROVIDER,
                resource_id=image_id,
            )

        state = _action_state(action)
        if state == "pending":  # the answer above is fresh: sleep before asking again
            wait_done(
                lambda: (_action_state(self._get_action(action_id, image_id)), None),
                self.pace,
                timeout=deadline - self.pace.clock(),
                on_error=unfinished,
                on_timeout=unfinished,
                check_first=False,
            )
        elif state == "error":
            raise unfinished()

    # ---- list / delete -------------------------------------------------------------------
    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        """Images are project-wide, so `region` does not narrow anything."""
        del region
        wanted = {**labels, MANAGED_BY_KEY: MANAGED_BY_VALUE}
        selector = ",".join(f"{k}={v}" for k, v in sorted(wanted.items()))
        images: list[BoundImage] = []
        page: int | None = 1
        for _ in range(MAX_PAGES):
            # Paged here, not with hcloud's get_all: that follows `next_page` without a bound
            # (a looping API answered 146,000 requests in 5 minutes, issue #9).
            found, page = self._image_page(selector, page or 1)
            images.extend(found)
            if page is None:
                return [self._snapshot(i) for i in images if labels_match(i.labels or {}, labels)]
        raise ProviderError(
            f"listing Hetzner images did not end after {MAX_PAGES} pages of {PER_PAGE}: "
            "the API keeps answering with a next page",
            provider=PROVIDER,
            hint="Retry later; if it persists, report it to Hetzner support (their API "
            "pagination) and delete unneeded snapshots by hand.",
        )

    def _image_page(self, selector: str, page: int) -> tuple[list[BoundImage], int | None]:
        """One page of snapshot images and the next page's number (None after the last)."""
        result = self._call(
            lambda: self.client.images.get_list(
                type=["snapshot"], label_selector=selector, page=page, per_page=PER_PAGE
            ),
            None,
        )
        pagination = result.meta.pagination if result.meta else None
        following = pagination.next_page if pagination else None
        return result.images, (following if following and following > page else None)

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        try:
            image = self._get_image(snapshot.id)
        except ProviderError as exc:
            if exc.status == 404:
                return  # already gone: deleting is idempotent
            raise
        if not labels_match(image.labels or {}, {}):
            raise ProviderError(
                f"refusing to delete image {snapshot.id}: not labelled managed-by=safesnap",
                provider=PROVIDER,
                resource_id=snapshot.id,
            )
        if _protected(image):
            if not self._expired(image.labels or {}):
                raise ProviderError(
                    f"image {snapshot.id} has delete protection and has not expired",
                    provider=PROVIDER,
                    resource_id=snapshot.id,
                    hint=PERMANENT_HINTS["protected"],
                )
            self.unprotect(snapshot)
        try:
            self._call(lambda: self.client.images.delete(Image(id=int(snapshot.id))), snapshot.id)
        except ProviderError as exc:
            if exc.status != 404:
                raise

    def unprotect(self, snapshot: Snapshot, *, timeout: float = 300.0) -> None:
        """Lift delete protection (the prune logic decides when; delete_snapshot does it only
        for expired snapshots)."""
        self._set_protection(snapshot.id, False, self.pace.clock() + timeout)

    def _expired(self, labels: Mapping[str, str]) -> bool:
        stamp = labels.get("expires-at")
        if not stamp:
            return False
        try:
            expires = parse_stamp(stamp)
        except ValueError:
            return False
        return expires <= self.now()

    # ---- copy / restore ------------------------------------------------------------------
    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        del labels  # nothing is copied, so there is nothing to label
        raise ProviderError(
            "Hetzner images belong to the project, not a location: there is nothing to copy "
            f"to {region}",
            provider=PROVIDER,
            resource_id=snapshot.id,
            hint="Any server in any location can be created from the snapshot as it is.",
        )

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        """Create a new server (never touching the source) from the snapshot; returns its id."""
        image = self._get_image(snapshot.id)
        server_type = size or self.restore_server_type or self._smallest_type(image)
        created = self._call(
            lambda: self.client.servers.create(
                name=name,
                server_type=ServerType(name=server_type),
                # The API documents `image` as a string ("ID or name"); hcloud would send an
                # int for Image(id=...), which the published schema rejects.
                image=Image(name=str(snapshot.id)),
                location=Location(name=zone) if zone else None,
                start_after_create=False,
                # Labelled at creation, so delete_volume (a drill's clean-up) can tell it is ours.
                labels={MANAGED_BY_KEY: MANAGED_BY_VALUE, "restored-from": str(snapshot.id)},
            ),
            snapshot.id,
        )
        server_id = str(created.server.id)
        if created.action is not None:
            self._creates[server_id] = int(created.action.id)
        return server_id

    def wait_volume(self, volume_id: str, *, region: str | None = None, timeout: float) -> None:
        """Until the server restore_volume made is created (its action, else its status)."""
        del region  # servers are project-wide ids
        action_id = self._creates.get(volume_id)
        restored.wait_server(self.client, self._call, self.pace, volume_id, action_id, timeout)

    def delete_volume(self, volume_id: str, *, region: str | None = None) -> None:
        """Delete a restored server labelled managed-by=safesnap and wait for the deletion."""
        del region
        restored.delete_server(self.client, self._call, self.pace, volume_id)

    def _smallest_type(self, image: BoundImage) -> str:
        """The cheapest server type of the image's architecture whose disk holds the image
        (`disk_size`): a fixed cx22 cannot take a larger snapshot (issue #9)."""
        need = float(image.disk_size or 0)
        types = self._call(lambda: self.client.server_types.get_all(), str(image.id))
        fits = [
            t
            for t in types
            if _offered(t)
            and float(t.disk or 0) >= need
            and (image.architecture is None or t.architecture == image.architecture)
        ]
        if not fits:
            raise ProviderError(
                f"no server type has a disk of {need:g} GB or more for image {image.id}",
                provider=PROVIDER,
                resource_id=str(image.id),
                hint="Pass --size with a server type name.",
            )
        return str(min(fits, key=lambda t: (_monthly(t), float(t.disk or 0))).name)

    # ---- helpers -------------------------------------------------------------------------
    def _get_action(self, action_id: int, image_id: str) -> BoundAction:
        return self._call(lambda: self.client.actions.get_by_id(action_id), image_id)

    def _get_image(self, image_id: str) -> BoundImage:
        return self._call(lambda: self.client.images.get_by_id(int(image_id)), image_id)

    def _snapshot(self, image: Image) -> Snapshot:
        created_from = image.created_from
        return Snapshot(
            id=str(image.id),
            source_id=str(created_from.id) if created_from else "",
            region=self.region,
            state=_image_state(image),
            created_at=image.created or self.now(),
            labels=dict(image.labels or {}),
            size_gb=image.image_size,
            name=image.description or "",
            protected=_protected(image),
        )

    def _call(self, fn: Callable[[], T], resource_id: str | None) -> T:
        return call(fn, self._last, resource_id)


def _offered(server_type: ServerType) -> bool:
    """Not deprecated in every location (per-location deprecation, Hetzner changelog
    2025-09-24); a type listing no locations is taken as offered."""
    places = server_type.locations or []
    return not places or any(getattr(p, "deprecation", None) is None for p in places)


def _monthly(server_type: ServerType) -> float:
    """The lowest gross monthly price listed for a server type (any location)."""
    prices = [
        float(p["price_monthly"]["gross"])
        for p in server_type.prices or []
        if isinstance(p, dict) and "price_monthly" in p
    ]
    return min(prices, default=float("inf"))


def _protected(image: Image) -> bool:
    return bool(image.protection and image.protection.get("delete"))


def _action_state(action: BoundAction) -> PollState:
    return _ACTION_STATES.get(action.status or "", "pending")


def _image_state(image: Image) -> PollState:
    return _IMAGE_STATES.get(image.status or "", "pending")


def from_settings(
    config: HetznerSettings | None,
    spec: HetznerSnapshot | None,
    *,
    env_file: Path | None = None,
    region: str | None = None,
) -> Hetzner:
    """Build the adapter; the token is read from `config.token_env` and never logged."""
    config = config or HetznerSettings()
    token = require_token(config.token_env, env_file, provider="Hetzner Cloud")
    client = Client(
        token=token,
        api_endpoint=(config.endpoint_url or DEFAULT_ENDPOINT).rstrip("/"),
        application_name="safesnap",
        poll_interval=config.poll_interval,
        timeout=60,
    )
    return Hetzner(
        client,
        region=region,
        protect=bool(spec and spec.protect),
        poll_interval=config.poll_interval,
        restore_server_type=spec.restore_server_type if spec is not None else None,
    )
