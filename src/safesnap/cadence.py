"""When the nightly run also drills: the `[run] drill` cadence, as pure functions.

A drill restores every target's newest artifact into a scratch place (`safesnap drill`); it
reads every byte and reloads databases, so it runs on its own cadence, not every night. The
grammar, checked when the plan loads:

- `off` (default): the run never drills;
- `daily`, `weekly`, `monthly`: at least 1, 7 or 30 days since the last drill;
- `<N>d` (1-366): at least N days since the last drill;
- weekday names, comma separated (`sun`, `mon,thu`): on those days (local time), once a day.

Intervals allow `SLACK` early: a nightly timer fires a few seconds or minutes earlier one night
than the week before (RandomizedDelaySec, a slower previous run), and a strict 7 days would
push the drill to the 8th night. The last drill counts whether it passed or failed: a broken
artifact must page someone (metrics), not make every night a full restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SLACK = timedelta(hours=6)
_NAMED = {"daily": 1, "weekly": 7, "monthly": 30}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Cadence:
    """A parsed cadence: `every` days, or on `weekdays` (0 = Monday), or never."""

    every: int | None = None
    weekdays: frozenset[int] = frozenset()

    @property
    def off(self) -> bool:
        return self.every is None and not self.weekdays


def parse_cadence(text: str) -> Cadence:
    """ValueError (with the accepted forms) when `text` is not a cadence."""
    value = text.strip().lower()
    if value in ("off", "never", ""):
        return Cadence()
    if value in _NAMED:
        return Cadence(every=_NAMED[value])
    if value.endswith("d") and value[:-1].isdigit():
        days = int(value[:-1])
        if 1 <= days <= 366:
            return Cadence(every=days)
    names = [part.strip()[:3] for part in value.split(",")]
    if names and all(name in WEEKDAYS for name in names):
        return Cadence(weekdays=frozenset(WEEKDAYS.index(name) for name in names))
    raise ValueError(
        f"{text!r} is not a drill cadence; use off, daily, weekly, monthly, "
        "a number of days like '3d', or weekdays like 'sun' or 'mon,thu'"
    )


def drill_due(cadence: Cadence, last: datetime | None, now: datetime) -> bool:
    """Whether a run at `now` drills, given the last drill's time (None: never drilled).
    `now` and `last` should carry the same tzinfo (weekdays are read from `now` as given)."""
    if cadence.off:
        return False
    if cadence.weekdays:
        if now.weekday() not in cadence.weekdays:
            return False
        return last is None or last.date() != now.date()
    assert cadence.every is not None
    if last is None or last > now:  # a clock set back must not stop drills for good
        return True
    return now - last >= timedelta(days=cadence.every) - SLACK
