"""Running a coroutine on virtual or real time.

Virtual time uses looptime: when the loop has nothing ready it jumps to the next timer, so a
60 s token cooldown passes in microseconds while every component still reads ``loop.time()``.
It is only sound when every participant runs inside this loop (in-process servers and
clients); anything that takes real time outside it (threads, external processes) needs
real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

ClockKind = Literal["virtual", "real"]

# How many times looptime polls the sockets with nothing ready before it jumps the clock to
# the next timer: looptime's own default. Loopback delivery on Linux completes inside the
# sender's send(), so the bytes of an exchange are readable before the loop next polls; the
# clock jumps once suspected of being early came from work in a thread (since removed), and
# scenario journals repeat exactly at this value on a machine with every core busy. Each
# poll costs microseconds, and a scenario jumps several times per simulated second.
NOOP_CYCLES = 42


def run(main: Coroutine[Any, Any, T], clock: ClockKind = "virtual") -> T:
    """``asyncio.run`` on the chosen clock."""
    if clock == "real":
        return asyncio.run(main)
    import looptime

    # Start at 0 so loop readings in journals and reports are seconds since the run began.
    with asyncio.Runner(
        loop_factory=lambda: looptime.new_event_loop(start=0.0, noop_cycles=NOOP_CYCLES)
    ) as runner:
        return runner.run(main)
