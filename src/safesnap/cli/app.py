"""Root Typer app. Command groups live in safesnap.cli.commands; this module only wires them and
is the one place that maps errors to exit codes and `--json` error objects.

It imports nothing heavy at module level: commands load lazily (safesnap.cli.lazy) and
rich (via safesnap.output) only once logging or an error message needs it, so that
`safesnap --version` starts in about the time the interpreter and typer take.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import typer

from safesnap import __version__
from safesnap.cli.commands import ROOT_COMMANDS
from safesnap.cli.lazy import lazy_group
from safesnap.errors import InternalError, InterruptedRunError, SafesnapError
from safesnap.run import interrupts

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("safesnap")

app = typer.Typer(
    name="safesnap",
    cls=lazy_group(ROOT_COMMANDS),
    help="Application-consistent backups and cloud snapshots you can actually restore.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help for the whole tree (typer passes the root's mode down): rich markup swallowed
    # "[retention]" and showed flags as "--json <bool>" (commands/options.py).
    rich_markup_mode=None,
)


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
    from safesnap.output import configure_logging

    configure_logging(verbose)
    lower_priority(nice)


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
        # interrupts.call: SIGTERM/SIGINT unwind the stack (temp files removed, locks released)
        # and arrive here as TerminatedRunError / InterruptedRunError (exit 143 / 130).
        code = interrupts.call(app, args=args, prog_name="safesnap", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except SafesnapError as exc:
        _report_error(exc, json_mode=_wants_json(args))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: click's, as vendored by typer
        _report_usage(exc, json_mode=_wants_json(args))
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C outside interrupts.call's handlers
        interrupted = InterruptedRunError()
        _report_error(interrupted, json_mode=_wants_json(args))
        sys.exit(interrupted.exit_code)
    except Exception as exc:  # the last line of defence: one message, never a traceback
        internal = InternalError.from_exception(exc)
        log.debug("unexpected %s", type(exc).__name__, exc_info=exc)
        _report_error(internal, json_mode=_wants_json(args))
        sys.exit(internal.exit_code)


def _stderr() -> Console:
    from safesnap.output import stderr_console

    return stderr_console


def _report_usage(exc: typer.TyperException, *, json_mode: bool) -> None:
    if json_mode:
        from safesnap.output import print_json

        print_json({"ok": False, "error": {"code": "usage", "message": exc.format_message()}})
        return
    show = getattr(exc, "show", None)  # click's usage errors print the usage line too
    if callable(show):
        show()
    else:
        _stderr().print(f"error: {exc.format_message()}", highlight=False, markup=False)


def _report_error(exc: SafesnapError, *, json_mode: bool) -> None:
    from safesnap.output import print_json

    if not isinstance(exc, InternalError):
        log.debug("error", exc_info=exc)
    if json_mode:
        print_json({"ok": False, "error": exc.to_dict()})
        return
    console = _stderr()
    console.print("[bold red]error:[/] ", end="", highlight=False)
    console.print(exc.message, highlight=False, markup=False, soft_wrap=True)
    for problem in getattr(exc, "problems", []):
        console.print(f"  - {problem}", highlight=False, markup=False, soft_wrap=True)
    if exc.hint:
        console.print("[dim]hint:[/] ", end="", highlight=False)
        console.print(exc.hint, highlight=False, markup=False, soft_wrap=True)
