"""`safesnap backup sqlite|mysql`: one-off backups of one database into a directory."""

from __future__ import annotations

import typer

backup_app = typer.Typer(help="One-off backup of one database into a directory.", no_args_is_help=True)
