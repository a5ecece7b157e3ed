"""Every CLI command, registered here and only here (cli.py wires these lists in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from safesnap.commands.backup import backup_app

COMMANDS: list[tuple[str, Callable[..., Any]]] = []
GROUPS: list[tuple[str, typer.Typer]] = [("backup", backup_app)]
