"""`safesnap backup sqlite|mysql`: one-off backups of one database into a directory."""

from __future__ import annotations

import typer

from safesnap.commands.backup_mysql import backup_mysql
from safesnap.commands.backup_sqlite import backup_sqlite

backup_app = typer.Typer(
    help="One-off backup of one database into a directory.", no_args_is_help=True
)
backup_app.command("sqlite")(backup_sqlite)
backup_app.command("mysql")(backup_mysql)
