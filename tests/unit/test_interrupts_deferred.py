"""`interrupts.deferred`: a signal inside the block is held until the block ends, then the
command unwinds as for any signal (exit 143/130 through `interrupts.call`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from safesnap.errors import TerminatedRunError
from safesnap.run import interrupts


@pytest.fixture(autouse=True)
def _own_handlers_back() -> Iterator[None]:
    # After a signal, `call` leaves its handlers in place (ignoring further signals) for the
    # CLI's last line; this test process must get pytest's own back.
    previous = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_a_signal_inside_the_block_is_raised_after_it() -> None:
    reached: list[str] = []

    def work() -> None:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)  # delivered here, held
            reached.append("end of block")
        reached.append("after the block")  # never: the held signal unwinds here

    with pytest.raises(TerminatedRunError):
        interrupts.call(work)
    assert reached == ["end of block"]


def test_without_a_signal_the_block_changes_nothing() -> None:
    ids: list[str] = []

    def work() -> str:
        with interrupts.deferred(), interrupts.deferred():  # nesting is allowed
            ids.append("vol-1")
        return ids[-1]

    assert interrupts.call(work) == "vol-1"


def test_a_signal_outside_the_block_still_unwinds_at_once() -> None:
    reached: list[str] = []

    def work() -> None:
        with interrupts.deferred():
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the signal")

    with pytest.raises(TerminatedRunError):
        interrupts.call(work)
    assert reached == []
