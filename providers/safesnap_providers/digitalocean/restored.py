"""What `DigitalOcean.restore_volume` made, followed to the end of a drill: wait until it is
usable, then delete it (only when it carries safesnap's managed-by tag).

`restore_volume` returns the new resource's own id, which already says what it is: a volume
id is a UUID, a droplet id an integer (DigitalOcean API reference, Volumes and Droplets). So
the id needs no prefix, and `safesnap snapshots restore` keeps printing the id DigitalOcean
shows. A volume is usable once the API knows it (it is created synchronously); a droplet once
its `status` is `active` (it starts as `new`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from safesnap.errors import ProviderError, ProviderTimeoutError
from safesnap_providers.base import MANAGED_BY_KEY, MANAGED_BY_VALUE, labels_match
from safesnap_providers.digitalocean.api import PROVIDER, DoApi
from safesnap_providers.polling import Pace, PollState, wait_done

# Droplet statuses (API reference, Droplets): `archive` is a destroyed droplet kept as record.
_DROPLET_STATES: dict[str, PollState] = {"active": "completed", "archive": "error"}
# adapter.tag_labels, passed in (the adapter imports this module)
TagLabels = Callable[[list[str] | None], dict[str, str]]


def kind(resource_id: str) -> tuple[str, str]:
    """(collection, key) of a restored resource: droplet ids are integers, volume ids UUIDs."""
    return ("droplets", "droplet") if resource_id.isdigit() else ("volumes", "volume")


def read(api: DoApi, resource_id: str) -> dict[str, Any] | None:
    """The volume or droplet, or None when DigitalOcean does not know it (gone, or not yet)."""
    collection, key = kind(resource_id)
    try:
        return dict(api.get(f"{collection}/{resource_id}")[key])
    except ProviderError as exc:
        if exc.status == 404:
            return None
        raise


def wait_restored(api: DoApi, pace: Pace, resource_id: str, timeout: float) -> None:
    key = kind(resource_id)[1]
    seen: dict[str, Any] = {}

    def poll() -> tuple[PollState, None]:
        item = read(api, resource_id)
        if item is None:
            return "pending", None  # not visible yet (the create answer may run ahead)
        seen.update(item)
        if key == "volume":
            return "completed", None
        return _DROPLET_STATES.get(str(item.get("status")), "pending"), None

    wait_done(
        poll,
        pace,
        timeout=timeout,
        on_error=lambda: ProviderError(
            f"{key} {resource_id} ended with status {seen.get('status')}",
            provider=PROVIDER,
            resource_id=resource_id,
        ),
        on_timeout=lambda: ProviderTimeoutError(
            f"{key} {resource_id} not usable after {timeout:.0f}s "
            f"(status {seen.get('status', 'unknown')})",
            provider=PROVIDER,
            resource_id=resource_id,
        ),
    )


def delete_restored(api: DoApi, resource_id: str, tag_labels: TagLabels) -> None:
    """Delete it; refuse one without the managed-by tag; already gone succeeds."""
    collection, key = kind(resource_id)
    item = read(api, resource_id)
    if item is None:
        return
    if not labels_match(tag_labels(item.get("tags")), {}):
        raise ProviderError(
            f"refusing to delete {key} {resource_id}: it is not tagged "
            f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}",
            provider=PROVIDER,
            resource_id=resource_id,
        )
    try:
        api.delete(f"{collection}/{resource_id}")
    except ProviderError as exc:
        if exc.status != 404:
            raise
