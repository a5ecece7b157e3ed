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
- a transient API error fails one poll, not the wait: the poll is repeated with backoff inside
  the same deadline (a 503 half an hour into a long wait must not lose the wait);
- whatever else `check` raises (a failed operation, a permanent API error) propagates at once.

Adapters hold their pacing in a `Pace` (first interval, cap, growth, injected sleep) and wait
for an action or a snapshot with `wait_done`, giving it one poll that reports
completed / pending / error; only what differs between clouds (how to read that state, the
messages) stays in the adapter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from safesnap.errors import ProviderError

T = TypeVar("T")
log = logging.getLogger("safesnap.providers.polling")
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

    A transient ProviderError from `check` (a 503, a 429, a dropped connection) fails that
    poll, not the wait: the poll is repeated after `retry_pause` (at least what the API asked
    for), still inside the same deadline. Only when the deadline passes with the last poll
    failed is that error raised. A permanent error propagates at once.
    """
    deadline = clock() + timeout
    pause, failures = interval, 0
    if not check_first:  # the first sleep is taken below: the next one is a step longer
        interval = min(interval * factor, max_interval)
    last_error: ProviderError | None = None
    first = check_first
    while True:
        if not first:
            left = deadline - clock()
            if left <= 0:
                raise last_error or on_timeout()
            sleep(min(pause, left))
        first = False
        try:
            result = check()
        except ProviderError as exc:
            if not exc.transient:
                raise
            failures, last_error = failures + 1, exc
            pause = retry_pause(exc, failures, interval, max_interval)
            log.warning("poll failed (%s); polling again in %.1fs", exc.message, pause)
            continue
        failures, last_error = 0, None
        if result is not None:
            return result
        pause, interval = interval, min(interval * factor, max_interval)


def retry_pause(exc: ProviderError, failures: int, interval: float, max_interval: float) -> float:
    """The pause before repeating a failed poll: doubling from `interval` with each failure in
    a row (capped at `max_interval`), never shorter than the API's own `retry_after`."""
    backoff = min(max_interval, interval * float(2 ** min(failures - 1, 30)))
    return max(backoff, exc.retry_after or 0.0)


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
