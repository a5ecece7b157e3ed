"""Run a delivery with a hard deadline, so a notification never holds up a backup.

Library timeouts bound each socket operation, not the whole call: a server that answers one
byte every few seconds, a DNS lookup, an SMTP dialogue of several round trips can each take
far longer than the timeout given. The delivery runs in a daemon thread; when the deadline
passes, the run goes on and the thread is abandoned (a daemon thread never keeps the process
alive at exit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlinePassed(Exception):
    """The delivery did not finish within its deadline."""


def call_within(fn: Callable[[], T], seconds: float) -> T:
    """fn() if it returns within `seconds`; its exception if it raises; else DeadlinePassed."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread, not lost
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="safesnap-notify", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DeadlinePassed(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
