"""Bounded polling with capped backoff: the one wait loop every adapter uses.

Snapshots, image actions and region transfers finish asynchronously, so each adapter asks
"done yet?" until it is or a deadline passes. Writing that loop once keeps the policy the same
everywhere and testable without waiting (sleep and clock are injected), in the spirit of
hcloud-python's actions client (`ActionsClient.wait_until_finished`):

- the first check happens at once (or, with `check_first=False`, after the first sleep, when
  the caller already holds a fresh "still pending" answer);
- between checks it sleeps `interval`, which grows by `factor` up to `max_interval`;
- it never sleeps past the deadline: the last sleep is cut to the time left, so one more check
  happens at the deadline before `on_timeout()` is raised;
- whatever `check` raises (a failed operation, an API error) propagates at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float,
    max_interval: float,
    sleep: Callable[[float], None],
    on_timeout: Callable[[], Exception],
    factor: float = 1.5,
    check_first: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `check` until it returns a value (not None) and return that value.

    `check` returns None while the operation is pending and raises if it failed. Sleeps are
    `interval`, then `interval * factor`, ... capped at `max_interval` (an `interval` above
    the cap is used once, as given), each cut to the time left before `clock() + timeout`.
    Once the deadline has passed and `check` still answers None, `on_timeout()` is raised.
    With `check_first=False` the loop sleeps before the first check (and a deadline already
    passed raises without checking at all).
    """
    deadline = clock() + timeout
    if check_first:
        result = check()
        if result is not None:
            return result
    while True:
        left = deadline - clock()
        if left <= 0:
            raise on_timeout()
        sleep(min(interval, left))
        interval = min(interval * factor, max_interval)
        result = check()
        if result is not None:
            return result
