"""Every CLI command, registered here and only here (cli.py wires these lists in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from safesnap.commands.backup import backup_app
from safesnap.commands.config import config_app
from safesnap.commands.list_ import list_artifacts
from safesnap.commands.prune import prune
from safesnap.commands.restore import restore
from safesnap.commands.run import run, snapshot
from safesnap.commands.snapshots import snapshots_app
from safesnap.commands.verify import verify

COMMANDS: list[tuple[str, Callable[..., Any]]] = [("run", run), ("snapshot", snapshot)]
COMMANDS += [("list", list_artifacts), ("prune", prune), ("verify", verify), ("restore", restore)]
GROUPS: list[tuple[str, typer.Typer]] = [("backup", backup_app), ("config", config_app)]
GROUPS.append(("snapshots", snapshots_app))
