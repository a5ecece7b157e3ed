"""`safesnap backup sqlite|mysql`: one-off backups of one database into a directory."""

from __future__ import annotations

from safesnap.commands.backup_mysql import backup_mysql
from safesnap.commands.backup_sqlite import backup_sqlite
from safesnap.commands.options import group

backup_app = group("One-off backup of one database into a directory.")
backup_app.command("sqlite")(backup_sqlite)
backup_app.command("mysql")(backup_mysql)
