"""`safesnap backup sqlite|mysql`: one-off backups without a plan."""

from __future__ import annotations

from safesnap.cli.commands import BACKUP_COMMANDS
from safesnap.cli.lazy import lazy_group
from safesnap.cli.options import group

# Lazy, so that `backup sqlite` never imports the MySQL engine (PyMySQL) and vice versa.
backup_app = group("One-off backup of one database into a directory.", lazy_group(BACKUP_COMMANDS))
