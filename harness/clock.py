"""Running a coroutine on virtual or real time, and waiting on what runs outside it.

Virtual time uses looptime: when the loop has nothing ready it jumps to the next timer, so a
60 s token cooldown passes in microseconds while every component still reads ``loop.time()``.
It is only sound while every participant runs inside this loop (in-process servers and
clients). Something that takes real time outside it (an external process: PostgreSQL)
needs a ``RealtimeGuard`` held around every wait on it (``realtime_guard()``): while one
is held, the clock moves in real-time steps, so the answer arrives before the clock passes
any timer, and a genuine timeout still fires when its time comes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

ClockKind = Literal["virtual", "real"]

# How many times looptime polls the sockets with nothing ready before it jumps the clock to
# the next timer (looptime's default is 42). Loopback delivery on Linux completes inside the
# sender's send(), so the bytes of an exchange are readable at the loop's very next poll:
# one empty poll says all the in-process traffic is done. What leaves the process (the
# database) holds the RealtimeGuard below instead, which no count of polls could replace.
# Each poll costs microseconds and a scenario jumps several times per simulated second: at
# 42, an idle 6.5-hour day spent ~8 s polling; the journals' digests are the same at 1.
NOOP_CYCLES = 1


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


class RealtimeGuard:
    """Held around a wait on a process outside the loop: while anyone holds it, looptime
    moves its clock only in real-time steps instead of jumping to the next timer.

    Without it, looptime polls the sockets a few dozen times without waiting and then
    jumps, so an answer that takes the server a millisecond comes after every timeout
    around the wait has fired (ENVIRONMENT.md, "looptime and external processes"). looptime
    steps in real time while a ``run_in_executor`` future is pending, so the guard keeps
    one pending while it is held: one for all holders at once (a count, so it is reentrant
    and concurrent holders share it), submitted to an executor that runs nothing and
    resolved by the last holder to leave. No thread is involved; entering and leaving cost
    a counter, and a future at the first entry and the last exit.

    While held, the loop's clock advances by the time to its next timer after waiting that
    long for real (looptime waits 80 % of it for I/O first; an answer within that does not
    advance the clock): a timeout still fires at its moment on the loop's clock, after as
    much real time; an answer that comes sooner lands first, as it would on real time. The
    server's own time to answer costs nothing on the loop's clock.

    One loop's: use it only from inside that loop (``realtime_guard()`` keeps one per loop).
    """

    __slots__ = ("_holders", "_pending")

    def __init__(self) -> None:
        self._holders = 0
        self._pending: asyncio.Future[None] | None = None

    @property
    def held(self) -> bool:
        return self._holders > 0

    def __enter__(self) -> None:
        self._holders += 1
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.run_in_executor(_NOTHING_RUNS, _never_called)

    def __exit__(self, *exc_info: object) -> None:
        self._holders -= 1
        if self._holders == 0 and self._pending is not None:
            pending, self._pending = self._pending, None
            # Resolved here, in the loop: looptime sees it done at its next look.
            if not pending.done():
                pending.set_result(None)


class _NothingRuns(concurrent.futures.Executor):
    """An executor whose futures are never run: a ``RealtimeGuard`` resolves its own."""

    def submit(  # type: ignore[override]
        self, fn: Callable[..., object], /, *args: object, **kwargs: object
    ) -> concurrent.futures.Future[None]:
        return concurrent.futures.Future()


def _never_called() -> None:  # pragma: no cover - _NothingRuns never calls it
    raise AssertionError("a RealtimeGuard's future is never run")


_NOTHING_RUNS = _NothingRuns()
_NO_GUARD: contextlib.nullcontext[None] = contextlib.nullcontext()
_guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RealtimeGuard] = (
    weakref.WeakKeyDictionary()
)


def realtime_guard() -> contextlib.AbstractContextManager[object]:
    """The running loop's guard for waits on a process outside it: its ``RealtimeGuard``
    on virtual time (one per loop), a no-op on real time. Hold it around every such wait
    (a PostgreSQL connect, query or close); the system's storage takes it as its
    ``database_wait``."""
    import looptime

    loop = asyncio.get_running_loop()
    if not isinstance(loop, looptime.LoopTimeEventLoop):
        return _NO_GUARD
    guard = _guards.get(loop)
    if guard is None:
        guard = _guards[loop] = RealtimeGuard()
    return guard
