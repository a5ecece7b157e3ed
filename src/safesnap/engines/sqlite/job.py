"""What the SQLite engine needs to know about a target, without pydantic.

A plan's `SqliteTarget` (a pydantic model) satisfies `SqliteSource` as it is. `backup sqlite`
builds a `SqliteJob` instead: importing the plan's target models (pydantic, every provider's
snapshot settings) cost ~110 ms of its startup (docs/benchmarks.md, "Startup").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from safesnap.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # SqliteTarget.name's pattern
INTEGRITY = ("quick", "full", "off")


class SqliteSource(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def integrity_check(self) -> str: ...
    @property
    def busy_timeout(self) -> float: ...
    @property
    def max_lock_hold_seconds(self) -> float: ...


@dataclass(frozen=True)
class SqliteJob:
    """A one-off SQLite target, checked like the plan's SqliteTarget."""

    name: str
    path: Path
    integrity_check: str = "quick"
    busy_timeout: float = 10.0
    max_lock_hold_seconds: float = 30.0

    def __post_init__(self) -> None:
        problems = []
        if not NAME.match(self.name):
            problems.append(f"name: {self.name!r} must match {NAME.pattern}")
        if self.integrity_check not in INTEGRITY:
            problems.append(f"integrity_check: must be one of {', '.join(INTEGRITY)}")
        for field in ("busy_timeout", "max_lock_hold_seconds"):
            if not getattr(self, field) > 0:
                problems.append(f"{field}: must be greater than 0")
        if problems:
            raise ConfigError("invalid options", problems=problems)
