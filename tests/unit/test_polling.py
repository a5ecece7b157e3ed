"""safesnap_providers.polling: the bounded wait loop every adapter uses (poll_until), the pace
an adapter keeps (Pace) and the wait for an operation's state (wait_done). Sleep and clock are
injected: no test waits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from safesnap_providers.polling import Pace, PollState, poll_until, wait_done


class TimedOut(Exception):
    pass


class Failed(Exception):
    pass


@dataclass
class FakeTime:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@dataclass
class Check:
    """Pending for `pending` calls, then `value`; records when it was called."""

    t: FakeTime
    pending: int = 10**9
    value: object = "done"
    cost: float = 0.0  # seconds each check takes (an API round trip)
    at: list[float] = field(default_factory=list)

    def __call__(self) -> object | None:
        self.at.append(self.t.now)
        self.t.now += self.cost
        if len(self.at) > self.pending:
            return self.value
        return None


def run(
    t: FakeTime,
    check: Callable[[], object | None],
    *,
    timeout: float = 60.0,
    interval: float = 1.0,
    max_interval: float = 8.0,
    factor: float = 2.0,
    check_first: bool = True,
) -> object:
    return poll_until(
        check,
        timeout=timeout,
        interval=interval,
        max_interval=max_interval,
        factor=factor,
        sleep=t.sleep,
        clock=t.clock,
        check_first=check_first,
        on_timeout=lambda: TimedOut(f"gave up at {t.now}"),
    )


def test_returns_the_value_at_once_without_sleeping() -> None:
    t = FakeTime()
    check = Check(t, pending=0, value={"id": 1})
    assert run(t, check) == {"id": 1}
    assert t.slept == [] and check.at == [1000.0]


def test_returns_the_value_once_check_succeeds() -> None:
    t = FakeTime()
    check = Check(t, pending=3)
    assert run(t, check) == "done"
    assert len(check.at) == 4 and t.slept == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("value", [0, False, "", []])
def test_only_none_means_pending(value: object) -> None:
    t = FakeTime()
    assert run(t, Check(t, pending=0, value=value)) == value
    assert t.slept == []


def test_intervals_grow_by_the_factor_and_are_capped() -> None:
    t = FakeTime()
    run(t, Check(t, pending=7), interval=1.0, factor=2.0, max_interval=5.0)
    assert t.slept == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]


def test_default_factor_is_one_and_a_half() -> None:
    t = FakeTime()
    poll_until(
        Check(t, pending=4),
        timeout=60,
        interval=2.0,
        max_interval=5.0,
        sleep=t.sleep,
        clock=t.clock,
        on_timeout=lambda: TimedOut(),
    )
    assert t.slept == [2.0, 3.0, 4.5, 5.0]


def test_factor_one_keeps_a_fixed_interval() -> None:
    t = FakeTime()
    run(t, Check(t, pending=4), interval=0.5, max_interval=0.5, factor=1.0)
    assert t.slept == [0.5] * 4


def test_a_first_interval_above_the_cap_is_used_once() -> None:
    """Adapters take the first interval and the cap from separate settings: keep both."""
    t = FakeTime()
    run(t, Check(t, pending=3), interval=20.0, max_interval=8.0)
    assert t.slept == [20.0, 8.0, 8.0]


@pytest.mark.parametrize(
    ("timeout", "interval", "max_interval", "factor", "cost"),
    [
        (10.0, 1.0, 8.0, 2.0, 0.0),
        (10.0, 3.0, 3.0, 1.0, 0.0),
        (7.5, 2.0, 60.0, 1.5, 0.0),
        (100.0, 10.0, 60.0, 1.5, 0.0),
        (0.3, 0.01, 0.05, 1.5, 0.0),
        (10.0, 1.0, 8.0, 2.0, 0.4),  # checks take time too
        (5.0, 20.0, 60.0, 1.5, 0.0),  # the first interval alone is longer than the timeout
    ],
)
def test_total_sleep_never_exceeds_the_timeout(
    timeout: float, interval: float, max_interval: float, factor: float, cost: float
) -> None:
    t = FakeTime()
    check = Check(t, cost=cost)
    with pytest.raises(TimedOut):
        run(
            t,
            check,
            timeout=timeout,
            interval=interval,
            max_interval=max_interval,
            factor=factor,
        )
    deadline = 1000.0 + timeout
    assert sum(t.slept) <= timeout + 1e-9
    assert sum(t.slept) + cost * len(check.at) == pytest.approx(t.now - 1000.0)
    # The last sleep is cut to the time left, so the last check reaches the deadline.
    assert check.at[-1] + cost >= deadline - 1e-9
    assert all(a < deadline for a in check.at[:-1])


def test_raises_on_timeout_after_the_deadline() -> None:
    t = FakeTime()
    check = Check(t)
    made: list[TimedOut] = []

    def on_timeout() -> TimedOut:
        made.append(TimedOut(f"after {t.now - 1000.0:.0f}s"))
        return made[0]

    with pytest.raises(TimedOut) as info:
        poll_until(
            check,
            timeout=10.0,
            interval=1.0,
            max_interval=8.0,
            factor=2.0,
            sleep=t.sleep,
            clock=t.clock,
            on_timeout=on_timeout,
        )
    assert info.value is made[0] and str(info.value) == "after 10s"
    assert t.slept == [1.0, 2.0, 4.0, 3.0]  # the last sleep is cut to the 3 s left
    assert check.at == [1000.0, 1001.0, 1003.0, 1007.0, 1010.0]


def test_success_found_at_the_deadline_is_returned() -> None:
    t = FakeTime()
    check = Check(t, pending=4)  # the fifth check, the one at the deadline, succeeds
    assert run(t, check, timeout=10.0) == "done"
    assert check.at[-1] == 1010.0


def test_zero_timeout_checks_once_then_raises() -> None:
    t = FakeTime()
    check = Check(t)
    with pytest.raises(TimedOut):
        run(t, check, timeout=0.0)
    assert check.at == [1000.0] and t.slept == []


def test_exceptions_from_check_propagate_at_once() -> None:
    t = FakeTime()
    calls: list[float] = []
    timeouts: list[int] = []

    def check() -> str | None:
        calls.append(t.now)
        if len(calls) == 3:
            raise Failed("the operation failed")
        return None

    def on_timeout() -> TimedOut:
        timeouts.append(1)
        return TimedOut()

    with pytest.raises(Failed, match="the operation failed"):
        poll_until(
            check,
            timeout=60.0,
            interval=1.0,
            max_interval=8.0,
            sleep=t.sleep,
            clock=t.clock,
            on_timeout=on_timeout,
        )
    assert len(calls) == 3 and t.slept == [1.0, 1.5]  # no sleep after the failure
    assert timeouts == []


def test_check_first_false_sleeps_before_the_first_check() -> None:
    """For a caller that has just seen "pending" itself: no redundant first request."""
    t = FakeTime()
    check = Check(t, pending=1)
    assert run(t, check, check_first=False) == "done"
    assert t.slept == [1.0, 2.0] and check.at == [1001.0, 1003.0]


def test_check_first_false_with_the_deadline_passed_raises_without_checking() -> None:
    t = FakeTime()
    check = Check(t, pending=0)
    with pytest.raises(TimedOut):
        run(t, check, timeout=-1.0, check_first=False)
    assert check.at == [] and t.slept == []


def test_check_first_false_still_checks_at_the_deadline() -> None:
    t = FakeTime()
    check = Check(t)
    with pytest.raises(TimedOut):
        run(t, check, timeout=2.5, check_first=False)
    assert t.slept == [1.0, 1.5] and check.at == [1001.0, 1002.5]


# ---- Pace and wait_done -------------------------------------------------------------------


@dataclass
class Operation:
    """Answers `states` in turn (the last one repeats), each with the poll's number."""

    t: FakeTime
    states: list[PollState]
    at: list[float] = field(default_factory=list)

    def __call__(self) -> tuple[PollState, int]:
        self.at.append(self.t.now)
        return self.states[min(len(self.at), len(self.states)) - 1], len(self.at)


def wait(t: FakeTime, op: Operation, *, timeout: float = 60.0, check_first: bool = True) -> int:
    return wait_done(
        op,
        Pace(1.0, 8.0, factor=2.0, sleep=t.sleep, clock=t.clock),
        timeout=timeout,
        on_error=lambda: Failed(f"failed at {t.now}"),
        on_timeout=lambda: TimedOut(f"gave up at {t.now}"),
        check_first=check_first,
    )


def test_pace_polls_at_its_own_interval_cap_and_factor() -> None:
    t = FakeTime()
    pace = Pace(2.0, 5.0, sleep=t.sleep, clock=t.clock)  # the default factor: 1.5
    assert pace.until(Check(t, pending=4), timeout=60, on_timeout=TimedOut) == "done"
    assert t.slept == [2.0, 3.0, 4.5, 5.0]


def test_wait_done_returns_what_the_completed_poll_read() -> None:
    t = FakeTime()
    op = Operation(t, ["pending", "pending", "completed"])
    assert wait(t, op) == 3  # the third poll's answer, not an earlier one
    assert t.slept == [1.0, 2.0]


def test_wait_done_returns_a_completed_none() -> None:
    """An operation that carries nothing (a finished action) completes; None is not pending."""
    t = FakeTime()
    polls: list[float] = []

    def finished_action() -> tuple[PollState, None]:
        polls.append(t.now)
        return "completed", None

    pace = Pace(1.0, 8.0, sleep=t.sleep, clock=t.clock)
    done = wait_done(finished_action, pace, timeout=5, on_error=Failed, on_timeout=TimedOut)
    assert done is None
    assert polls == [1000.0] and t.slept == []


def test_wait_done_raises_on_error_at_once() -> None:
    t = FakeTime()
    op = Operation(t, ["pending", "error", "completed"])
    with pytest.raises(Failed, match=r"failed at 1001\.0"):
        wait(t, op)
    assert len(op.at) == 2 and t.slept == [1.0]  # no poll and no sleep after the failure


def test_wait_done_gives_up_at_the_deadline() -> None:
    t = FakeTime()
    op = Operation(t, ["pending"])
    with pytest.raises(TimedOut, match=r"gave up at 1010\.0"):
        wait(t, op, timeout=10.0)
    assert op.at == [1000.0, 1001.0, 1003.0, 1007.0, 1010.0]


def test_wait_done_can_start_with_a_sleep() -> None:
    t = FakeTime()
    op = Operation(t, ["pending", "completed"])
    assert wait(t, op, check_first=False) == 2
    assert op.at == [1001.0, 1003.0]


def test_wait_done_lets_a_poll_error_through_unchanged() -> None:
    """One poll is one request: what it raises (an API error) is the caller's to handle."""
    t = FakeTime()

    class ApiError(Exception):
        pass

    def unreachable() -> tuple[PollState, None]:
        raise ApiError("503")

    pace = Pace(1.0, 8.0, sleep=t.sleep, clock=t.clock)
    with pytest.raises(ApiError):
        wait_done(unreachable, pace, timeout=5, on_error=Failed, on_timeout=TimedOut)
    assert t.slept == []


@dataclass
class Flaky:
    """Pending `pending` times then done; raises `error` on the calls numbered in `fail_at`."""

    t: FakeTime
    fail_at: set[int]
    error: Exception
    pending: int = 10**9
    calls: int = 0

    def __call__(self) -> object | None:
        self.calls += 1
        if self.calls in self.fail_at:
            raise self.error
        return "done" if self.calls > self.pending else None


def test_a_transient_error_fails_one_poll_not_the_wait() -> None:
    from safesnap.errors import ProviderError

    t = FakeTime()
    check = Flaky(t, {3}, ProviderError("503", transient=True), pending=5)
    assert run(t, check, interval=1.0, max_interval=8.0) == "done"
    # 1, 2 (pending); the 3rd poll fails and is repeated after the current pace (4), and
    # the pace goes on from there: 4, 8.
    assert t.slept == [1.0, 2.0, 4.0, 4.0, 8.0]


def test_repeated_failures_back_off_and_honour_retry_after() -> None:
    from safesnap.errors import ProviderError

    t = FakeTime()
    check = Flaky(t, {1, 2, 3, 4}, ProviderError("429", transient=True, retry_after=3.0))
    with pytest.raises(TimedOut):
        run(t, check, timeout=60.0, interval=1.0, max_interval=8.0)
    assert t.slept[:4] == [3.0, 3.0, 4.0, 8.0]  # max(backoff, retry_after), backoff doubling


def test_failures_until_the_deadline_raise_the_last_error() -> None:
    from safesnap.errors import ProviderError

    t = FakeTime()
    error = ProviderError("503", transient=True)
    with pytest.raises(ProviderError) as info:
        run(t, Flaky(t, set(range(1, 1000)), error), timeout=30.0)
    assert info.value is error and t.now == pytest.approx(1030.0)


def test_a_permanent_error_still_ends_the_wait_at_once() -> None:
    from safesnap.errors import ProviderError

    t = FakeTime()
    with pytest.raises(ProviderError):
        run(t, Flaky(t, {2}, ProviderError("401")))
    assert t.slept == [1.0]
