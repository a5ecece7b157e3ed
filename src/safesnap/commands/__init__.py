"""Every CLI command, registered here and only here (cli.py wires these lists in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from safesnap.commands.backup import backup_app
from safesnap.commands.config import config_app
from safesnap.commands.run import run, snapshot

COMMANDS: list[tuple[str, Callable[..., Any]]] = [("run", run), ("snapshot", snapshot)]
GROUPS: list[tuple[str, typer.Typer]] = [("backup", backup_app), ("config", config_app)]
