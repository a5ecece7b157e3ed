"""Retention policy: a pure function from (items, now, policy) to keep/delete with reasons.

Used for file artifacts (pruning.prune_destination) and for cloud snapshots (providers), so it
knows nothing about files or clouds: items are plain dataclasses identified by `id`.

The grandfather-father-son buckets follow restic's `forget` (internal/restic/snapshot_policy.go):
walk the items newest first; a bucket with N > 0 keeps the newest item of each of the last N
distinct periods (day, ISO week, month, year, all in UTC) that have an item. Buckets are
independent; an item kept by several gets every reason.

Safety rules on top of the policy, whatever it says (proven by tests/unit/test_retention.py):
- items with `managed=False` are never considered: they land in `ignored`, never in `delete`;
- the newest verified item is kept, and so is the newest item (a target never drops to zero
  backups, and a fresh, not-yet-verified backup never costs us the last verified one);
- an item whose `protected_until` is in the future is kept (pre-upgrade snapshots).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from safesnap_providers.timestamps import as_utc

NOT_KEPT = "matches no keep rule"


@dataclass(frozen=True)
class RetentionItem:
    id: str
    created_at: datetime
    verified: bool = False
    managed: bool = True
    protected_until: datetime | None = None


@dataclass(frozen=True)
class Policy:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0

    def __post_init__(self) -> None:
        for name, value in self.counts().items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def counts(self) -> dict[str, int]:
        return {
            "keep_last": self.keep_last,
            "keep_daily": self.keep_daily,
            "keep_weekly": self.keep_weekly,
            "keep_monthly": self.keep_monthly,
            "keep_yearly": self.keep_yearly,
        }

    @classmethod
    def from_model(cls, model: Any) -> Policy:
        """From settings.Retention (or anything with the same attributes)."""
        return cls(**{name: int(getattr(model, name)) for name in cls().counts()})


@dataclass
class Decision:
    keep: list[RetentionItem]  # managed items kept, newest first
    delete: list[RetentionItem]  # managed items to delete, newest first
    reasons: dict[str, list[str]] = field(default_factory=dict)  # id -> why (kept or not)
    ignored: list[RetentionItem] = field(default_factory=list)  # unmanaged: never touched


def _day(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d")


def _week(dt: datetime) -> str:
    iso = dt.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def _month(dt: datetime) -> str:
    return dt.strftime("%Y-%m")


def _year(dt: datetime) -> str:
    return f"{dt.year:04d}"


_BUCKETS: tuple[tuple[str, str, Callable[[datetime], str]], ...] = (
    ("keep_daily", "daily", _day),
    ("keep_weekly", "weekly", _week),
    ("keep_monthly", "monthly", _month),
    ("keep_yearly", "yearly", _year),
)


def _newest_first(items: Sequence[RetentionItem]) -> list[RetentionItem]:
    # Ties broken by id so the decision is deterministic whatever the input order.
    return sorted(items, key=lambda i: (as_utc(i.created_at), i.id), reverse=True)


def _bucket_reasons(ordered: list[RetentionItem], policy: Policy) -> dict[str, list[str]]:
    reasons: dict[str, list[str]] = {}
    counts = policy.counts()
    for field_name, label, period_of in _BUCKETS:
        remaining, last_period = counts[field_name], None
        for item in ordered:
            if remaining <= 0:
                break
            period = period_of(as_utc(item.created_at))
            if period != last_period:
                reasons.setdefault(item.id, []).append(f"{label} {period}")
                remaining -= 1
                last_period = period
    return reasons


def decide(items: Sequence[RetentionItem], now: datetime, policy: Policy) -> Decision:
    """Split managed items into keep/delete; every kept item says why."""
    now = as_utc(now)
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise ValueError("retention items must have unique ids")
    managed = _newest_first([i for i in items if i.managed])
    reasons: dict[str, list[str]] = {}

    def add(item: RetentionItem, why: str) -> None:
        reasons.setdefault(item.id, []).append(why)

    for item in managed[: policy.keep_last]:
        add(item, f"last {policy.keep_last}")
    for item_id, why in _bucket_reasons(managed, policy).items():
        reasons.setdefault(item_id, []).extend(why)
    if managed:
        add(managed[0], "newest")
    newest_verified = next((i for i in managed if i.verified), None)
    if newest_verified is not None:
        add(newest_verified, "newest verified")
    for item in managed:
        if item.protected_until is not None and as_utc(item.protected_until) > now:
            add(item, f"protected until {as_utc(item.protected_until).isoformat()}")
    keep = [i for i in managed if i.id in reasons]
    delete = [i for i in managed if i.id not in reasons]
    for item in delete:
        reasons[item.id] = [NOT_KEPT]
    ignored = [i for i in items if not i.managed]
    return Decision(keep=keep, delete=delete, reasons=reasons, ignored=ignored)
