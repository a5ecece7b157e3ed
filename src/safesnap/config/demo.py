"""The embedded default plan: a small Torrust-like SQLite database and local directories.

`safesnap run --demo` creates them under ./safesnap-demo (once; later runs reuse them) so a new
user sees the whole job work end to end with no cloud account and no server.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from safesnap.artifacts.destination import make_private_dirs

DEMO_DIR = Path("safesnap-demo")

PLAN_TEMPLATE = """\
# The embedded demo plan (created by `safesnap run --demo`). Copy it to start your own.
plan = "demo"

[destination]
path = "{dest}"            # the attached volume in production

[retention]
keep_last = 3
keep_daily = 7
keep_weekly = 4
keep_monthly = 6

[[targets]]
name = "tracker"
engine = "sqlite"
path = "{db}"
"""


def prepare_demo(root: Path = DEMO_DIR) -> Path:
    """Create the demo database and plan if missing; return the plan file."""
    make_private_dirs(root)  # 0700 like every directory safesnap creates
    db = root / "tracker.db"
    if not db.exists():
        _make_tracker_db(db)
    plan = root / "safesnap.toml"
    if not plan.exists():
        plan.write_text(PLAN_TEMPLATE.format(dest=(root / "backups").resolve(), db=db.resolve()))
    return plan


def _make_tracker_db(path: Path, torrents: int = 5000) -> None:
    # The shape of Torrust's tracker tables, enough to make restores checkable.
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE torrents (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " info_hash TEXT NOT NULL UNIQUE, completed INTEGER DEFAULT 0 NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE keys"
            " (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, valid_until INTEGER)"
        )
        rows = [(secrets.token_hex(20), i % 97) for i in range(torrents)]
        conn.executemany("INSERT INTO torrents (info_hash, completed) VALUES (?, ?)", rows)
        conn.commit()
    finally:
        conn.close()
