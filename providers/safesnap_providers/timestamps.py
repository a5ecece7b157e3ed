"""Time in labels, names and manifests: one compact UTC stamp format (fits every provider's
label syntax) and one rule for naive datetimes (taken as UTC).

Here, not in base.py, because both packages use them and the artifact writer on the SQLite
path must not pay for importing the provider protocols (~8 ms of a ~100 ms start).
"""

from __future__ import annotations

from datetime import UTC, datetime

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def as_utc(dt: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken to already be UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def stamp(dt: datetime) -> str:
    """`20261126T104100Z`."""
    return as_utc(dt).strftime(STAMP_FORMAT)


def parse_stamp(text: str) -> datetime:
    """The aware UTC datetime of a `stamp`; ValueError when `text` is not one."""
    return datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=UTC)
