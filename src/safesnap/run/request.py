"""What one run was asked to do, on top of the plan: the type every step of a run receives.

Its own module so the steps (snapshot_step, replicate) can name it without importing the
pipeline that calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from safesnap.config.plan import FilesTarget, MysqlTarget, SqliteTarget

AnyTarget = SqliteTarget | MysqlTarget | FilesTarget


@dataclass(frozen=True)
class RunRequest:
    """What the operator asked for on the command line, on top of the plan."""

    kind: str = "nightly"  # nightly | pre-upgrade | manual
    dry_run: bool = False
    only_targets: tuple[str, ...] = ()
    snapshot_only: bool = False  # `safesnap snapshot`: no artifacts, no artifact prune
    extra_labels: dict[str, str] = field(default_factory=dict)
    keep_days: int | None = None
    env_file: Path | None = None
    progress: Callable[[int, int | None], None] | None = None


def makes_artifact(target: AnyTarget) -> bool:
    """SQLite targets always get a database copy; MySQL only in dump mode (in lock mode the
    volume snapshot is the backup). Here, not in the pipeline, so drills can ask too."""
    return not (isinstance(target, MysqlTarget) and target.quiesce == "lock")
