"""Retention: the invariants the issue names, proven over generated histories (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safesnap.retention import NOT_KEPT, Decision, Policy, RetentionItem, decide

START = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)

times = st.integers(min_value=0, max_value=int((NOW - START).total_seconds())).map(
    lambda s: START + timedelta(seconds=s)
)
protections = st.none() | st.integers(-30, 30).map(lambda d: NOW + timedelta(days=d))


@st.composite
def histories(draw: st.DrawFn) -> list[RetentionItem]:
    n = draw(st.integers(0, 40))
    return [
        RetentionItem(
            id=f"a{i}",
            created_at=draw(times),
            verified=draw(st.booleans()),
            managed=draw(st.booleans() | st.just(True)),
            protected_until=draw(protections),
        )
        for i in range(n)
    ]


policies = st.builds(
    Policy,
    keep_last=st.integers(0, 6),
    keep_daily=st.integers(0, 8),
    keep_weekly=st.integers(0, 5),
    keep_monthly=st.integers(0, 7),
    keep_yearly=st.integers(0, 3),
)


def newest_first(items: list[RetentionItem]) -> list[RetentionItem]:
    return sorted(items, key=lambda i: (i.created_at, i.id), reverse=True)


def ids(items: list[RetentionItem]) -> set[str]:
    return {i.id for i in items}


@settings(max_examples=300, deadline=None)
@given(histories(), policies)
def test_invariants(items: list[RetentionItem], policy: Policy) -> None:
    d = decide(items, NOW, policy)
    managed = [i for i in items if i.managed]
    # Unmanaged items are not even considered: never deleted, never kept, only ignored.
    assert ids(d.ignored) == {i.id for i in items if not i.managed}
    assert not ids(d.delete) & ids(d.ignored)
    # Every managed item is in exactly one of keep/delete.
    assert ids(d.keep) | ids(d.delete) == ids(managed)
    assert not ids(d.keep) & ids(d.delete)
    assert len(d.keep) + len(d.delete) == len(managed)
    # Every kept item has at least one real reason; deleted ones say so.
    for item in d.keep:
        assert d.reasons[item.id]
        assert NOT_KEPT not in d.reasons[item.id]
    for item in d.delete:
        assert d.reasons[item.id] == [NOT_KEPT]
    # The newest verified item and the newest item survive.
    verified = newest_first([i for i in managed if i.verified])
    if verified:
        assert verified[0].id in ids(d.keep)
    if managed:
        assert newest_first(managed)[0].id in ids(d.keep)
    # Protected items are never deleted before expiry.
    for item in d.delete:
        assert item.protected_until is None or item.protected_until <= NOW
    # keep_last N keeps the N newest.
    assert ids(newest_first(managed)[: policy.keep_last]) <= ids(d.keep)


@settings(max_examples=200, deadline=None)
@given(histories(), policies)
def test_idempotent(items: list[RetentionItem], policy: Policy) -> None:
    first = decide(items, NOW, policy)
    again = decide(first.keep + first.ignored, NOW, policy)
    assert again.delete == []
    assert ids(again.keep) == ids(first.keep)


def oracle_bucket(items: list[RetentionItem], n: int, fmt: str) -> set[str]:
    """The newest item of each of the last n distinct periods that have an item."""
    by_period: dict[str, RetentionItem] = {}
    for item in newest_first(items):
        by_period.setdefault(item.created_at.strftime(fmt), item)
    periods = sorted(by_period, reverse=True)[:n]
    return {by_period[p].id for p in periods}


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(1, 8), st.sampled_from(["daily", "monthly", "yearly"]))
def test_bucket_matches_oracle(items: list[RetentionItem], n: int, bucket: str) -> None:
    fmt = {"daily": "%Y-%m-%d", "monthly": "%Y-%m", "yearly": "%Y"}[bucket]
    managed = [i for i in items if i.managed]
    d = decide(items, NOW, Policy(**{f"keep_{bucket}": n}))
    by_bucket = {i for i, why in d.reasons.items() if any(w.startswith(bucket) for w in why)}
    assert by_bucket == oracle_bucket(managed, n, fmt)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_all_zero_policy_keeps_newest_verified_and_newest(items: list[RetentionItem]) -> None:
    d = decide(items, NOW, Policy())
    managed = newest_first([i for i in items if i.managed])
    expected = {managed[0].id} if managed else set()
    verified = [i for i in managed if i.verified]
    if verified:
        expected.add(verified[0].id)
    expected |= {i.id for i in managed if i.protected_until and i.protected_until > NOW}
    assert ids(d.keep) == expected


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 5, 1, hour, tzinfo=UTC) + timedelta(days=day)


def test_daily_keeps_newest_of_each_day_with_reasons() -> None:
    items = [RetentionItem(f"d{d}h{h}", at(d, h)) for d in range(10) for h in (1, 13)]
    d = decide(items, NOW, Policy(keep_daily=3))
    assert ids(d.keep) == {"d9h13", "d8h13", "d7h13"}
    assert d.reasons["d8h13"] == ["daily 2026-05-09"]
    assert d.reasons["d9h13"] == ["daily 2026-05-10", "newest"]
    assert len(d.delete) == 17


def test_weekly_uses_iso_weeks() -> None:
    # 2026-05-03 is a Sunday (ISO week 18), 2026-05-04 a Monday (week 19).
    items = [
        RetentionItem("sun", datetime(2026, 5, 3, 23, tzinfo=UTC)),
        RetentionItem("mon", datetime(2026, 5, 4, 1, tzinfo=UTC)),
        RetentionItem("sat", datetime(2026, 5, 2, 1, tzinfo=UTC)),
    ]
    d = decide(items, NOW, Policy(keep_weekly=2))
    assert ids(d.keep) == {"mon", "sun"}
    assert d.reasons["sun"] == ["weekly 2026-W18"]


def test_gaps_count_only_periods_that_have_items() -> None:
    # Monthly 3 over items in Jan, Mar, Jun: all three kept despite the gaps (restic semantics).
    items = [RetentionItem(m, datetime(2025, n, 5, tzinfo=UTC)) for m, n in
             (("jan", 1), ("mar", 3), ("jun", 6))]  # fmt: skip
    assert ids(decide(items, NOW, Policy(keep_monthly=3)).keep) == {"jan", "mar", "jun"}


def test_protection_expires() -> None:
    old = RetentionItem("old", at(0), protected_until=NOW + timedelta(hours=1))
    new = RetentionItem("new", at(5))
    assert ids(decide([old, new], NOW, Policy()).keep) == {"old", "new"}
    assert ids(decide([old, new], NOW + timedelta(hours=2), Policy()).delete) == {"old"}


def test_naive_datetimes_are_utc() -> None:
    a = RetentionItem("a", datetime(2026, 5, 1, 23, 30))
    b = RetentionItem("b", datetime(2026, 5, 2, 0, 30, tzinfo=UTC))
    d = decide([a, b], NOW, Policy(keep_daily=2))
    assert isinstance(d, Decision)
    assert ids(d.keep) == {"a", "b"}


def test_duplicate_ids_and_negative_counts_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        decide([RetentionItem("x", at(0)), RetentionItem("x", at(1))], NOW, Policy())
    with pytest.raises(ValueError, match="keep_last"):
        Policy(keep_last=-1)


def test_from_settings_model() -> None:
    from safesnap.config.plan import Retention

    assert Policy.from_model(Retention()) == Policy(3, 7, 4, 6, 0)
