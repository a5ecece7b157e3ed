"""Root Typer app. Command groups live in safesnap.commands; this module only wires them and
is the one place that maps errors to exit codes and `--json` error objects."""

from __future__ import annotations

import os
import sys
from typing import cast

import click
import typer

from safesnap import __version__, interrupts
from safesnap.commands import COMMANDS, GROUPS
from safesnap.errors import SafesnapError
from safesnap.output import configure_logging, log, print_json, stderr_console

app = typer.Typer(
    name="safesnap",
    help="Application-consistent backups and cloud snapshots you can actually restore.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help for the whole tree (typer passes the root's mode down): rich markup swallowed
    # "[retention]" and showed flags as "--json <bool>" (commands/options.py).
    rich_markup_mode=None,
)

for _name, _command in COMMANDS:
    app.command(_name)(_command)
for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"safesnap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr."),
    nice: int = typer.Option(
        10,
        "--nice",
        min=0,
        max=19,
        envvar="SAFESNAP_NICE",
        help="Lower safesnap's CPU priority by N, like nice(1), so the service being backed up "
        "keeps the CPU (0: leave it). Measured: writer p99 during a 1 GiB SQLite backup "
        "0.6-2.4 ms with 10, 4.3 ms without (docs/benchmarks.md).",
    ),
    version: bool = typer.Option(  # noqa: ARG001 (handled by its eager callback)
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    configure_logging(verbose)
    lower_priority(nice)


def _vendored_click_exception() -> tuple[type[Exception], ...]:
    """typer >= 0.20 raises usage errors from its own vendored click, whose classes are not
    subclasses of the installed click's; catch both."""
    try:
        from typer._click.exceptions import (  # type: ignore[import-not-found,unused-ignore]
            ClickException,
        )
    except ImportError:
        return ()
    return (ClickException,)


_EXIT = (click.exceptions.Exit, typer.Exit)
_USAGE: tuple[type[Exception], ...] = (click.ClickException, *_vendored_click_exception())
_ABORT = (click.exceptions.Abort, typer.Abort)


def lower_priority(increment: int) -> None:
    """nice(2) the whole process: compression and checks are CPU work the service on a small
    host needs more. Only CPU scheduling; I/O priority is the systemd unit's job."""
    if increment:
        try:
            os.nice(increment)
        except OSError as exc:  # a container may forbid it; backing up matters more
            log.debug("could not lower priority: %s", exc)


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        # Outside standalone mode click returns (not raises) the code of a typer.Exit.
        code = interrupts.call(app, args=args, prog_name="safesnap", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except SafesnapError as exc:
        _report_error(exc, json_mode=_wants_json(args))
        sys.exit(exc.exit_code)
    except _EXIT as exc:
        sys.exit(exc.exit_code)
    except _USAGE as exc:
        usage = cast(click.ClickException, exc)  # same interface in typer's vendored copy
        if _wants_json(args):
            print_json({"ok": False, "error": {"code": "usage", "message": usage.format_message()}})
        else:
            usage.show()
        sys.exit(usage.exit_code)
    except (*_ABORT, KeyboardInterrupt):
        stderr_console.print("interrupted")
        sys.exit(130)


def _report_error(exc: SafesnapError, *, json_mode: bool) -> None:
    log.debug("error", exc_info=exc)
    if json_mode:
        print_json({"ok": False, "error": exc.to_dict()})
        return
    stderr_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
    for problem in getattr(exc, "problems", []):
        stderr_console.print(f"  - {problem}", highlight=False, markup=False, soft_wrap=True)
    if exc.hint:
        stderr_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False)
