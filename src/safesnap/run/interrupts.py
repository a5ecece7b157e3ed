"""SIGTERM and SIGINT end a command cleanly: temp files removed, locks released, one line.

systemd stops a service with SIGTERM (then SIGKILL after TimeoutStopSec); Ctrl-C sends SIGINT.
Python's default SIGTERM disposition kills the process on the spot, so no `finally` runs and a
SQLite backup leaves its full-size raw copy behind (issue #7: seven kills, 1.6 GB). Here both
signals raise `Signalled` in the main thread (Python runs signal handlers only there), so every
context manager and `finally` on the stack runs as it unwinds: temp files are unlinked
(atomic.temp_file), the MySQL lock is released and its connections closed, the SQLite read
transaction is rolled back, worker threads are stopped and joined, the run lock is released.
At the CLI boundary `call` turns it into TerminatedRunError (exit 143) or InterruptedRunError
(exit 130), which the CLI prints as one line like every other SafesnapError.

Why a BaseException underneath and not the SafesnapError itself: a signal must stop the whole
command, and code below the CLI rightly catches `Exception` / `SafesnapError` to isolate a
failing step or target (pipeline._run_step) or to make a cleanup best-effort. Raising an
Exception there would fail one step and carry on with the next target after SIGTERM. Python
uses BaseException for KeyboardInterrupt for the same reason; `except BaseException: cleanup;
raise` blocks still run their cleanup.

A second signal while unwinding is ignored (logged): it would otherwise abort the cleanup half
way, the one thing the first signal is waiting for. SIGKILL still ends everything; what it
leaves behind the next `run`, `backup` or `prune` sweeps (catalog.sweep_temporaries).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

from safesnap.errors import InterruptedRunError, TerminatedRunError

T = TypeVar("T")
# Not safesnap.output's: importing rich here would cost every command's startup (cli.py).
log = logging.getLogger("safesnap")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Handler = Callable[[int, FrameType | None], Any] | int | None


class Signalled(BaseException):
    """SIGTERM or SIGINT arrived; unwinding. Only `call` catches it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    def to_error(self, *, target: str | None = None) -> InterruptedRunError:
        """The error the CLI reports (and a run report records, naming the target it stopped)."""
        if self.signum == signal.SIGTERM:
            return TerminatedRunError(target=target)
        return InterruptedRunError(target=target)


class _State:
    stopping = False
    deferring = False
    pending: int | None = None  # a signal held by `deferred`, raised when it ends


def _handler(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 (signal API)
    if _State.stopping or _State.pending is not None:
        log.warning("%s again: still cleaning up", signal.Signals(signum).name)
        return
    if _State.deferring:
        _State.pending = signum
        return
    _State.stopping = True
    raise Signalled(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGINT until the block ends, then unwind as usual.

    For a call that creates something billed and returns its id (a drill's volume): a signal
    raised inside it would lose the id, and with it the only way to delete what it created.
    Keep the block to that one call; the signal waits for it."""
    if _State.deferring:  # nested: the outer block raises
        yield
        return
    _State.deferring, _State.pending = True, None
    try:
        yield
    finally:
        _State.deferring = False
        signum, _State.pending = _State.pending, None
    if signum is not None and not _State.stopping:
        _State.stopping = True
        raise Signalled(signum)


def _install() -> dict[int, _Handler]:
    """Our handlers for SIGTERM/SIGINT; the previous ones, to put back. Only the main thread
    may set handlers (and receives signals); elsewhere (a test runner's thread) do nothing."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _State.stopping = False
    return {signum: signal.signal(signum, _handler) for signum in SIGNALS}


def _restore(previous: dict[int, _Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` with the SIGTERM/SIGINT handlers installed; a signal surfaces as
    TerminatedRunError / InterruptedRunError after everything below has cleaned up.

    After a signal the handlers stay (ignoring further signals) while the CLI prints its line
    and exits: the default ones would turn a second Ctrl-C into a traceback. Otherwise the
    previous handlers are put back (the CLI runs in-process in tests)."""
    previous = _install()
    signalled = False
    try:
        return fn(*args, **kwargs)
    except Signalled as exc:
        signalled = True
        raise exc.to_error() from None
    finally:
        _State.stopping = True  # from here on a signal has nothing left to stop
        if not signalled:
            _restore(previous)
