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

Adapters hold their pacing in a `Pace` (first interval, cap, growth, injected sleep) and wait
for an action or a snapshot with `wait_done`, giving it one poll that reports
completed / pending / error; only what differs between clouds (how to read that state, the
messages) stays in the adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

T = TypeVar("T")
PollState = Literal["completed", "pending", "error"]


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


@dataclass(frozen=True)
class Pace:
    """One adapter's polling pace: the first sleep, the cap, the growth per poll, and the sleep
    and clock (tests inject ones that record or skip the waits). An adapter that shares one
    deadline between several waits reads it from `clock` too."""

    interval: float
    max_interval: float
    factor: float = 1.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def until(
        self,
        check: Callable[[], T | None],
        *,
        timeout: float,
        on_timeout: Callable[[], Exception],
        check_first: bool = True,
    ) -> T:
        """`poll_until` at this pace."""
        return poll_until(
            check,
            timeout=timeout,
            interval=self.interval,
            max_interval=self.max_interval,
            factor=self.factor,
            sleep=self.sleep,
            on_timeout=on_timeout,
            check_first=check_first,
            clock=self.clock,
        )


def wait_done(
    poll: Callable[[], tuple[PollState, T]],
    pace: Pace,
    *,
    timeout: float,
    on_error: Callable[[], Exception],
    on_timeout: Callable[[], Exception],
    check_first: bool = True,
) -> T:
    """Poll an asynchronous operation (an action, a snapshot) until it completes; return the
    value that the completed answer carried.

    `poll` makes one request and says where the operation stands, with whatever it read (an
    action, a snapshot, or None). `error` raises `on_error()` at once (the operation failed;
    a retry of the wait cannot help); `pending` polls again at `pace` until `timeout`, then
    raises `on_timeout()`. What `poll` raises (an API error) propagates at once, as in
    `poll_until`.
    """

    def check() -> tuple[T] | None:
        state, value = poll()
        if state == "error":
            raise on_error()
        # Boxed, so a completed operation that carries None is not mistaken for "pending".
        return (value,) if state == "completed" else None

    return pace.until(check, timeout=timeout, on_timeout=on_timeout, check_first=check_first)[0]
