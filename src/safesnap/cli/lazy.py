"""Commands named by "module:attribute" and imported only when used.

Typer builds every command of an app before it parses a single argument, and each command
module imports what its command needs (PyMySQL, boto3, the cloud SDKs, pydantic-settings): that
made `safesnap --version` take 0.25-0.4 s. A lazy group keeps only the names until click asks
for a command by name (to run it, or to list it in --help), then imports that one module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup


def load_command(name: str, spec: str, rich_markup_mode: Any) -> Any:
    """The click command (or group) for `spec`, a Typer app or a command function, built as
    typer builds a registered one: with the parent group's help mode (typer passes the root's
    `rich_markup_mode` down the whole tree)."""
    module, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    parent = typer.Typer(add_completion=False, rich_markup_mode=rich_markup_mode)
    if isinstance(obj, typer.Typer):
        parent.add_typer(obj, name=name)
        command: Any = typer.main.get_command(parent).commands[name]  # type: ignore[attr-defined]
    else:
        parent.command(name)(obj)
        command = typer.main.get_command(parent)  # one command and no callback: not a group
    command.name = name
    return command


class LazyCommands(MutableMapping[str, Any]):
    """A group's name -> command table that imports a command on first lookup. Iterating
    (names only, as `list_commands` and typer's "did you mean" do) imports nothing."""

    def __init__(
        self, loaded: Mapping[str, Any], table: Mapping[str, str], rich_markup_mode: Any
    ) -> None:
        self._loaded = dict(loaded)
        self._table = table
        self._mode = rich_markup_mode

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            spec = self._table[name]  # KeyError if unknown, as a dict would
            self._loaded[name] = load_command(name, spec, self._mode)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("commands are registered in safesnap.cli.commands, not removed")

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._table, *self._loaded]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._table, *self._loaded]))


def lazy_group(table: Mapping[str, str]) -> type[TyperGroup]:
    """A TyperGroup class (for `typer.Typer(cls=...)`) whose commands come from `table`."""

    class LazyGroup(TyperGroup):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.commands = LazyCommands(self.commands, table, self.rich_markup_mode)

        def list_commands(self, ctx: Any) -> list[str]:  # noqa: ARG002 (click's signature)
            return list(self.commands)  # the names, in registration order, without importing

    return LazyGroup
