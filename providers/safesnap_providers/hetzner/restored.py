"""Servers made by `Hetzner.restore_volume`, followed to the end of a drill: wait until the
server is created, then delete it (only one labelled managed-by=safesnap) and wait for that.

Hetzner restores a snapshot as a new server (volumes have no snapshot API). The server is made
with `start_after_create=False`, so a finished one is `off`, not `running`: the create action
says when it is done. The adapter remembers that action's id; a process that did not create
the server (or lost the id) reads the server's status instead (`running` or `off`: usable;
`initializing`, `starting`: not yet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hcloud import Client
from hcloud.actions import BoundAction
from hcloud.servers import BoundServer, Server

from safesnap.errors import ProviderError, ProviderTimeoutError
from safesnap_providers.base import MANAGED_BY_KEY, MANAGED_BY_VALUE, labels_match
from safesnap_providers.hetzner.errors import PROVIDER
from safesnap_providers.polling import Pace, PollState, wait_done

T = TypeVar("T")
Call = Callable[[Callable[[], T], str | None], T]  # Hetzner._call: errors -> ProviderError
DELETE_TIMEOUT = 600.0  # deleting a server takes seconds; a stuck action fails the drill
_ACTION_STATES: dict[str, PollState] = {"success": "completed", "error": "error"}
_SERVER_STATES: dict[str, PollState] = {"running": "completed", "off": "completed"}


def wait_server(
    client: Client, call: Call[object], pace: Pace, server_id: str, action_id: int | None,
    timeout: float,
) -> None:  # fmt: skip
    errors: dict[str, str] = {}

    def poll() -> tuple[PollState, None]:
        if action_id is None:
            server = get_server(client, call, server_id)
            status = server.status if server is not None else None
            return _SERVER_STATES.get(status or "", "pending"), None
        return action_state(get_action(client, call, action_id, server_id), errors), None

    wait_done(
        poll,
        pace,
        timeout=timeout,
        on_error=lambda: ProviderError(
            f"creating server {server_id} failed: {errors.get('code', 'error')}: "
            f"{errors.get('message', '')[:300]}",
            provider=PROVIDER,
            resource_id=server_id,
        ),
        on_timeout=lambda: ProviderTimeoutError(
            f"server {server_id} not created after {timeout:.0f}s",
            provider=PROVIDER,
            resource_id=server_id,
        ),
    )


def delete_server(client: Client, call: Call[object], pace: Pace, server_id: str) -> None:
    server = get_server(client, call, server_id)
    if server is None:
        return
    if not labels_match(server.labels or {}, {}):
        raise ProviderError(
            f"refusing to delete server {server_id}: it is not labelled "
            f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}",
            provider=PROVIDER,
            resource_id=server_id,
        )
    try:
        action = call(lambda: client.servers.delete(Server(id=int(server_id))), server_id)
    except ProviderError as exc:
        if exc.status == 404:
            return
        raise
    assert isinstance(action, BoundAction)
    errors: dict[str, str] = {}
    wait_done(
        lambda: (action_state(get_action(client, call, int(action.id), server_id), errors), None),
        pace,
        timeout=DELETE_TIMEOUT,
        on_error=lambda: ProviderError(
            f"deleting server {server_id} failed: {errors.get('code', 'error')}: "
            f"{errors.get('message', '')[:300]}",
            provider=PROVIDER,
            resource_id=server_id,
        ),
        on_timeout=lambda: ProviderTimeoutError(
            f"server {server_id} still being deleted after {DELETE_TIMEOUT:.0f}s",
            provider=PROVIDER,
            resource_id=server_id,
        ),
    )


def get_server(client: Client, call: Call[object], server_id: str) -> BoundServer | None:
    """The server, or None when Hetzner does not know it (deleted)."""
    try:
        server = call(lambda: client.servers.get_by_id(int(server_id)), server_id)
    except ProviderError as exc:
        if exc.status == 404:
            return None
        raise
    assert isinstance(server, BoundServer)
    return server


def get_action(client: Client, call: Call[object], action_id: int, server_id: str) -> BoundAction:
    action = call(lambda: client.actions.get_by_id(action_id), server_id)
    assert isinstance(action, BoundAction)
    return action


def action_state(action: BoundAction, errors: dict[str, str]) -> PollState:
    """The action's state; its error (Hetzner's own words) is kept in `errors` for the message."""
    if action.error:
        errors.update(code=str(action.error["code"]), message=str(action.error["message"]))
    return _ACTION_STATES.get(action.status or "", "pending")
