"""The only place tenacity is configured.

Rules (DESIGN.md "Seams"): retry a `ProviderError` only when the adapter classified it as
`transient`; when the API said how long to wait (`Retry-After` on DigitalOcean,
the time `RateLimit-Reset` implies on Hetzner, surfaced as `ProviderError.retry_after`) wait
that, but never less than a floor that grows per attempt (1 s, 2 s, 4 s ...: a reset in the
past must not become a burst of retries); otherwise exponential backoff with jitter. Every
call has an attempt cap AND a total time budget, and a wait that would overrun the budget ends
the retries at once instead of sleeping in vain. Waits are bounded by their own timeout instead
(wrappers.Retrying.wait; polling.poll_until repeats a failed poll).

Client libraries already retry some failures themselves (hcloud: 429/502/504; botocore in retry
mode `standard`), so adapters must not add their own loop, and this module sits on top once.

`retry_create` exists because creating a snapshot is not idempotent: a request that timed out
may still have created one, so before every further attempt it lists the run's labelled
snapshots and reuses what it finds instead of creating a duplicate.

Sleep and clock are injectable so tests never wait.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from safesnap.errors import ProviderError

if TYPE_CHECKING:
    from safesnap_providers.base import Snapshot, SnapshotProvider, SnapshotRequest

T = TypeVar("T")
log = logging.getLogger("safesnap.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Defaults suit provider control-plane calls: DigitalOcean allows 250
    requests/min and answers 429 with `retry-after`; Hetzner refills 1 request/s; AWS throttles
    with RequestLimitExceeded and asks for exponential backoff."""

    max_attempts: int = 6
    budget_seconds: float = 300.0  # total time across attempts and waits
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0  # up to this many extra seconds, uniformly random
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


DEFAULT_POLICY = RetryPolicy()


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.transient


def backoff_seconds(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with additive jitter for the wait after failed attempt `attempt`."""
    base: float = min(
        policy.max_wait, policy.initial_wait * float(2 ** min(max(0, attempt - 1), 30))
    )
    extra = float((rng or random).uniform(0, policy.jitter)) if policy.jitter > 0 else 0.0
    return min(policy.max_wait, base + extra)


def floor_seconds(attempt: int, policy: RetryPolicy) -> float:
    """The least wait after failed attempt `attempt`, whatever the API said: `initial_wait`
    (1 s) doubling per attempt up to `max_wait`, without jitter."""
    return min(policy.max_wait, policy.initial_wait * float(2 ** min(max(0, attempt - 1), 30)))


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def compute(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            # The API told us when it will accept the next request: asking earlier only burns
            # quota (Hetzner counts rejected requests too). But never less than a floor that
            # grows with each attempt: a rate-limit reset already in the past (clock skew, a
            # proxy) said 0 s and produced six retries in one burst (issue #9).
            wait: float = max(float(exc.retry_after), floor_seconds(state.attempt_number, policy))
            return wait
        return backoff_seconds(state.attempt_number, policy)

    return compute


def _stop(policy: RetryPolicy, started: float) -> Callable[[RetryCallState], bool]:
    def should_stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        elapsed = policy.clock() - started
        upcoming = state.upcoming_sleep or 0.0
        return elapsed + upcoming > policy.budget_seconds

    return should_stop


def _log_before_sleep(describe: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying %s after transient error (attempt %d, waiting %.1fs): %s",
            describe,
            state.attempt_number,
            state.upcoming_sleep,
            getattr(exc, "message", exc),
        )

    return before_sleep


def call_with_retry(
    fn: Callable[[], T], *, policy: RetryPolicy = DEFAULT_POLICY, describe: str = "call"
) -> T:
    """Call `fn` until it succeeds, raises a permanent error, or the policy gives up; the last
    error is re-raised unchanged (so its code, request id and status reach the operator)."""
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=_wait(policy),
        stop=_stop(policy, policy.clock()),
        sleep=policy.sleep,
        before_sleep=_log_before_sleep(describe),
        reraise=True,
    )
    return retrying(fn)


def _reusable(found: list[Snapshot], request: SnapshotRequest) -> list[Snapshot]:
    """Snapshots from an earlier attempt of this very request (same labels, same source)."""
    return [
        s
        for s in found
        if s.source_id == request.source_id or s.labels.get("source") == request.source_id
    ]


def retry_create(
    provider: SnapshotProvider,
    request: SnapshotRequest,
    labels: Mapping[str, str] | None = None,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[Snapshot]:
    """Create a snapshot with retries, never creating a second one for the same request.

    Before each attempt after the first, list snapshots carrying `labels` (default: the
    request's labels, which include the run id) and return any that came from this source:
    a timed-out CreateSnapshot may have succeeded on the provider's side.
    """
    if getattr(provider, "handles_retries", False):
        # Already wrapped by wrappers.Retrying (registry.build_provider does that): retrying
        # here too would multiply attempts.
        return provider.create_snapshot(request)
    want = dict(labels if labels is not None else request.labels)
    # Without a run id, an older run's snapshot of the same source would look like ours:
    # then a retry creates again rather than pass off an old snapshot as this run's.
    can_reuse = bool(want.get("run-id"))
    attempts = [0]

    def attempt() -> list[Snapshot]:
        attempts[0] += 1
        if attempts[0] > 1 and can_reuse:
            found = _reusable(provider.list_snapshots(want), request)
            if found:
                log.info("reusing %d snapshot(s) from an earlier attempt", len(found))
                return found
        return provider.create_snapshot(request)

    return call_with_retry(attempt, policy=policy, describe=f"create_snapshot {request.source_id}")
