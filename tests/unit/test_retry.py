"""safesnap_providers.retry: what is retried, how long it waits, when it stops, and that a retried
create never makes a second snapshot. Sleep and clock are injected: no test waits."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from safesnap.errors import ConfigError, ProviderError
from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.retry import RetryPolicy, backoff_seconds, call_with_retry, retry_create
from safesnap_providers.testing.memory import MemoryProvider
from safesnap_providers.wrappers import Counting, Retrying


@dataclass
class FakeTime:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def policy(t: FakeTime, **kw: float) -> RetryPolicy:
    base: dict[str, float] = {"max_attempts": 5, "budget_seconds": 100, "jitter": 0}
    base.update(kw)
    return RetryPolicy(sleep=t.sleep, clock=t.clock, **base)  # type: ignore[arg-type]


def failing(errors: list[BaseException], result: str = "ok") -> tuple[list[int], object]:
    calls = [0]

    def fn() -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return result

    return calls, fn


def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    t = FakeTime()
    calls, fn = failing([ProviderError("5xx", transient=True)] * 3)
    assert call_with_retry(fn, policy=policy(t)) == "ok"  # type: ignore[arg-type]
    assert calls[0] == 4
    assert t.slept == [1.0, 2.0, 4.0]


def test_permanent_error_is_raised_at_once_unchanged() -> None:
    t = FakeTime()
    err = ProviderError("InvalidVolume.NotFound", transient=False, request_id="req-1")
    calls, fn = failing([err])
    with pytest.raises(ProviderError) as info:
        call_with_retry(fn, policy=policy(t))  # type: ignore[arg-type]
    assert info.value is err
    assert info.value.request_id == "req-1"
    assert calls[0] == 1
    assert t.slept == []


def test_non_provider_errors_are_not_retried() -> None:
    t = FakeTime()
    calls, fn = failing([ConfigError("bad")])
    with pytest.raises(ConfigError):
        call_with_retry(fn, policy=policy(t))  # type: ignore[arg-type]
    assert calls[0] == 1


def test_retry_after_is_the_wait() -> None:
    t = FakeTime()
    _calls, fn = failing([ProviderError("429", transient=True, retry_after=7.5)])
    assert call_with_retry(fn, policy=policy(t)) == "ok"  # type: ignore[arg-type]
    assert t.slept == [7.5]


def test_attempt_cap_reraises_last_error() -> None:
    t = FakeTime()
    errors = [ProviderError(f"e{i}", transient=True) for i in range(10)]
    calls, fn = failing(errors)
    with pytest.raises(ProviderError, match="e2"):
        call_with_retry(fn, policy=policy(t, max_attempts=3))  # type: ignore[arg-type]
    assert calls[0] == 3


def test_retry_after_beyond_budget_stops_without_sleeping() -> None:
    t = FakeTime()
    calls, fn = failing([ProviderError("429", transient=True, retry_after=3600)])
    with pytest.raises(ProviderError):
        call_with_retry(fn, policy=policy(t, budget_seconds=60))  # type: ignore[arg-type]
    assert calls[0] == 1
    assert t.slept == []


def test_budget_bounds_total_time() -> None:
    t = FakeTime()
    _calls, fn = failing([ProviderError("slow", transient=True)] * 50)
    with pytest.raises(ProviderError):
        call_with_retry(fn, policy=policy(t, max_attempts=50, budget_seconds=10))  # type: ignore[arg-type]
    assert sum(t.slept) <= 10
    assert t.slept == [1.0, 2.0, 4.0]  # the next wait (8 s) would pass the 10 s budget


def test_backoff_is_capped_and_jittered() -> None:
    import random

    p = RetryPolicy(initial_wait=1, max_wait=30, jitter=1)
    rng = random.Random(4)
    waits = [backoff_seconds(n, p, rng) for n in range(1, 12)]
    assert all(0 < w <= 30 for w in waits)
    assert waits[-1] == 30
    assert 1 <= waits[0] <= 2


def _request(mem: MemoryProvider) -> SnapshotRequest:
    labels = managed_labels(plan="p", target="t", run_id="r1", kind="nightly")
    return SnapshotRequest(source_id=mem.add_volume(), name="n", labels=labels)


def test_retry_create_reuses_snapshot_from_a_timed_out_attempt() -> None:
    """The create succeeded on the provider's side but the answer was lost (timeout):
    the retry must find that snapshot by its labels, not create a second one."""
    t = FakeTime()
    mem = MemoryProvider()
    request = _request(mem)
    other = SnapshotRequest(source_id=mem.add_volume(), name="n", labels=request.labels)
    mem.create_snapshot(other)  # same run, another volume: must not be mistaken for ours
    real_create = mem.create_snapshot

    def create_then_lose_answer(req: SnapshotRequest) -> list:  # type: ignore[type-arg]
        real_create(req)
        raise ProviderError("read timeout", transient=True)

    mem.create_snapshot = create_then_lose_answer  # type: ignore[method-assign]
    got = retry_create(mem, request, policy=policy(t))
    ours = [s for s in mem.list_snapshots(request.labels) if s.source_id == request.source_id]
    assert len(ours) == 1
    assert [s.id for s in got] == [ours[0].id]


def test_retry_create_creates_again_when_nothing_was_made() -> None:
    t = FakeTime()
    mem = MemoryProvider()
    request = _request(mem)
    mem.fail_next(ProviderError("503", transient=True), times=2, method="create_snapshot")
    got = retry_create(mem, request, policy=policy(t))
    assert len(got) == 1
    assert len(mem.list_snapshots(request.labels)) == 1
    assert t.slept == [1.0, 2.0]


def test_wrapped_provider_retries_once_not_twice() -> None:
    """retry_create on a provider already wrapped by Retrying must not stack retries."""
    t = FakeTime()
    mem = MemoryProvider()
    counted = Counting(mem)
    wrapped = Retrying(counted, policy(t, max_attempts=3))
    request = _request(mem)
    mem.fail_next(ProviderError("503", transient=True), times=10, method="create_snapshot")
    with pytest.raises(ProviderError):
        retry_create(wrapped, request, policy=policy(t, max_attempts=3))
    assert counted.by_method["create_snapshot"] == 3  # not 9


def test_client_retried_methods_pass_through_once() -> None:
    t = FakeTime()
    mem = MemoryProvider()
    mem.client_retries = frozenset({"list_snapshots"})
    counted = Counting(mem)
    wrapped = Retrying(counted, policy(t))
    mem.fail_next(ProviderError("throttled", transient=True), times=5, method="list_snapshots")
    with pytest.raises(ProviderError):
        wrapped.list_snapshots({})
    assert counted.by_method["list_snapshots"] == 1


def test_retry_create_never_reuses_without_a_run_id() -> None:
    """Labels without a run id cannot tell this run's snapshot from last night's."""
    t = FakeTime()
    mem = MemoryProvider(pending_polls=0)
    vol = mem.add_volume()
    labels = {"managed-by": "safesnap", "plan": "p", "target": "t"}
    old = mem.create_snapshot(SnapshotRequest(source_id=vol, name="old", labels=labels))[0]
    mem.fail_next(ProviderError("503", transient=True), method="create_snapshot")
    got = retry_create(
        mem, SnapshotRequest(source_id=vol, name="new", labels=labels), policy=policy(t)
    )
    assert got[0].id != old.id
    assert len(mem.list_snapshots(labels)) == 2
