"""`safesnap backup sqlite|mysql`: one-off backups without a plan."""

from __future__ import annotations

import typer

from safesnap.cli.commands import BACKUP_COMMANDS
from safesnap.cli.lazy import lazy_group

# Lazy, so that `backup sqlite` never imports the MySQL engine (PyMySQL) and vice versa.
backup_app = typer.Typer(
    cls=lazy_group(BACKUP_COMMANDS),
    help="One-off backup of one database into a directory.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as every group (commands/options.py)
)
