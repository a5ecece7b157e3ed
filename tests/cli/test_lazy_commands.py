"""Commands loaded lazily (safesnap.cli.lazy) behave as if registered up front: same help
mode as their parent, groups keep their subcommands, unknown names are usage errors."""

from __future__ import annotations

from typing import Literal

import typer
from typer.testing import CliRunner

from safesnap.cli.lazy import lazy_group

TABLE = {
    "verify": "safesnap.cli.verify:verify",
    "config": "safesnap.cli.config:config_app",
}


Mode = Literal["rich"] | None


def app(mode: Mode) -> typer.Typer:
    root = typer.Typer(cls=lazy_group(TABLE), rich_markup_mode=mode, add_completion=False)

    @root.callback()
    def _root() -> None:
        """A root with a callback, as safesnap's."""

    return root


def help_of(mode: Mode, *args: str) -> str:
    result = CliRunner().invoke(app(mode), [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_lazy_commands_take_the_parents_help_mode() -> None:
    for args in (("verify",), ("config",), ("config", "check")):
        plain = help_of(None, *args)
        assert "Usage:" in plain
        assert "╭" not in plain  # no rich panels: the root's plain mode reached the command
        assert "╭" in help_of("rich", *args)  # the control: rich mode does draw them


def test_root_help_lists_lazy_commands_in_table_order() -> None:
    listing = help_of(None)
    assert listing.index("verify") < listing.index("config")
    assert "Check an artifact" in listing  # verify's own summary, loaded for the listing


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(app(None), ["verfy"])
    assert result.exit_code == 2
    assert "No such command 'verfy'" in result.output
