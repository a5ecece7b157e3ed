"""How results reach a person or a program.

One rule: stdout carries results (a single JSON object with `--json`; without it the human
summary, rows and paths), stderr carries progress, logs, warnings and errors, so
`safesnap list | grep tracker` sees rows only. On a terminal, progress is a rich bar; under cron
(stderr not a terminal) it is a few structured log lines, so mail from cron stays short and
greppable.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("safesnap")
# rich costs ~27 ms to import, a sixth of a command's start (bench/startup_bench.py): the two
# consoles are made on first use (module __getattr__ below), so `backup sqlite --json` and
# `--version` never import it.
_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Console:
    if name not in ("stderr_console", "stdout_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def _console(name: str) -> Console:
    """`stderr_console` (progress, warnings) and `stdout_console` (results), made on first use.

    stdout: soft_wrap keeps a long artifact path on one line when piped (rich would otherwise
    break it at 80 columns); highlight off: no colour guessed into numbers and paths. Colour and
    style only reach a terminal (rich drops them when stdout is a pipe or a file)."""
    if name not in _consoles:
        from rich.console import Console

        if name == "stderr_console":
            _consoles[name] = Console(stderr=True)
        else:
            _consoles[name] = Console(soft_wrap=True, highlight=False)
    return _consoles[name]


ProgressFn = Callable[[int, int | None], None]


def configure_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
        )
    root = logging.getLogger("safesnap")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def print_json(obj: Any) -> None:
    """One JSON object on stdout, nothing else."""
    sys.stdout.write(json.dumps(obj, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


def interactive() -> bool:
    """Progress bars: only when a person watches stderr."""
    return sys.stderr.isatty()


def stdout_is_terminal() -> bool:
    """Tables for a person; one plain line per row for a pipe, a file or cron."""
    return sys.stdout.isatty()


def say(text: str, *, markup: bool = False) -> None:
    """One line of a command's human result on stdout (`markup` for rich [green]...[/] tags)."""
    _console("stdout_console").print(text, markup=markup)


@contextmanager
def progress(description: str, *, enabled: bool = True) -> Iterator[ProgressFn]:
    """Yield `update(done, total)`; a bar on a terminal, start/finish log lines otherwise."""
    if not (enabled and interactive()):
        log.info("%s: started", description)
        last: list[int] = [0]

        def quiet(done: int, total: int | None) -> None:  # noqa: ARG001 (same shape as update)
            last[0] = done

        yield quiet
        log.info("%s: finished bytes=%d", description, last[0])
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_console("stderr_console"), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
