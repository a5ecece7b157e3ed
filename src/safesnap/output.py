"""How results reach a person or a program.

One rule: stdout carries results (a single JSON object with `--json`), stderr carries progress
and logs. On a terminal, progress is a rich bar; under cron (stderr not a terminal) it is a few
structured log lines, so mail from cron stays short and greppable.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

log = logging.getLogger("safesnap")
stderr_console = Console(stderr=True)
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
    return sys.stderr.isatty()


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
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr_console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
