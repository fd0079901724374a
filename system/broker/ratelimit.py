"""A sliding-window limiter that spends the broker's per-second budget without exceeding it.

KIS counts requests per account per second (``EGW00201`` beyond 18/s real, 1/s paper), by
when they *arrive*. The client cannot see that moment, only that it lies between sending the
request and getting the answer. So a request holds a slot for that whole interval, and the
slot stays counted for a window after the answer came back: a new request may start only
while fewer than ``capacity`` slots are in flight or were answered within the last window.
However the network or a busy event loop delays arrivals, the broker then never sees
``capacity + 1`` of them inside one window. Stamping only the start (as a plain sliding log
does) is exact on an idle machine and over budget on a loaded one.

A request that gets no answer at all (a hanging broker) would hold its slot until the client
gives up on it, starving everyone else; after ``transit_s`` it is taken to have arrived, as
any request surely has by then, and counts from there.

A token bucket would be worse: it allows a burst of ``budget`` at the end of one second and
another at the start of the next, which the broker counts in one window.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from system.broker.clock import loop_time

_TOLERANCE_S = 1e-6


class Slot:
    """One request's claim on the budget, from ``acquire`` until ``release``."""

    __slots__ = ("ended_at", "started_at")

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.ended_at = math.inf  # until released


class RateLimiter:
    """At most ``capacity`` requests whose possible arrival times touch any ``window_s``.

    ``capacity`` is ``floor(budget_per_second * window_s)``; a budget below one per window
    becomes one request per ``1 / budget_per_second`` seconds. ``margin_s`` widens the window
    for clock granularity on the broker's side; ``transit_s`` bounds how late after sending
    a request can arrive. Waiters are served in arrival order: they queue on one lock and
    only its holder sleeps, so hundreds of concurrent callers do not wake and race each time
    a slot frees up.

    Every ``acquire`` must be paired with ``release`` (the request was sent, whatever came
    of it) or ``refund`` (it was never sent).
    """

    def __init__(
        self,
        budget_per_second: float,
        *,
        window_s: float = 1.0,
        margin_s: float = 0.02,
        transit_s: float = 1.0,
    ) -> None:
        if budget_per_second <= 0 or window_s <= 0 or margin_s < 0 or transit_s < 0:
            raise ValueError(
                "RateLimiter needs budget_per_second > 0, window_s > 0, margin_s >= 0 and "
                f"transit_s >= 0, got {budget_per_second}, {window_s}, {margin_s}, {transit_s}"
            )
        capacity = math.floor(budget_per_second * window_s)
        if capacity < 1:
            capacity, window_s = 1, 1.0 / budget_per_second
        self.capacity = capacity
        self.span_s = window_s + margin_s
        self.transit_s = transit_s
        # Slots that may still count against the window, in start order.
        self._slots: list[Slot] = []
        self._released = asyncio.Event()
        self._blocked_until = -math.inf
        self._lock = asyncio.Lock()

    def _free_at(self, slot: Slot) -> float:
        """When ``slot`` stops counting: a window after the latest it can have arrived."""
        return min(slot.ended_at, slot.started_at + self.transit_s) + self.span_s

    async def acquire(self) -> Slot:
        """Wait (FIFO) until one more request fits the window; the caller then sends it."""
        async with self._lock:
            while True:
                now = loop_time()
                ready_at = self._blocked_until
                if len(self._slots) >= self.capacity:
                    # Forget slots that no longer count only when it matters: under capacity
                    # there is nothing to decide, and a slot is only added under it, so the
                    # list never outgrows it. Sums of floats land a hair past the clock's own
                    # value (2.1 + 1.05 > 3.15); a microsecond is far inside the margin and
                    # ends an otherwise endless wait.
                    self._slots = [s for s in self._slots if self._free_at(s) - now > _TOLERANCE_S]
                if len(self._slots) >= self.capacity:
                    ready_at = max(ready_at, min(self._free_at(s) for s in self._slots))
                if ready_at - now <= _TOLERANCE_S:
                    break
                # Re-check after the wait: an answer may free a slot sooner, and penalize()
                # may have moved the goalposts meanwhile.
                self._released.clear()
                timeout = None if math.isinf(ready_at) else ready_at - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), timeout)
            slot = Slot(now)
            self._slots.append(slot)
            return slot

    def release(self, slot: Slot) -> None:
        """The request was sent and has its answer (or its failure): count it until a window
        after now, the latest moment the broker can have seen it."""
        if math.isinf(slot.ended_at):
            slot.ended_at = loop_time()
            self._released.set()

    def refund(self, slot: Slot) -> None:
        """The request was never sent: give its slot back."""
        if slot in self._slots:
            self._slots.remove(slot)
        slot.ended_at = slot.started_at
        self._released.set()

    def penalize(self, seconds: float) -> None:
        """Hold every caller back for ``seconds``: the broker said we went over (EGW00201).

        One caller's rate-limit answer means the account's budget is spent for everyone, so
        all of them pause rather than each discovering it with a request of its own.
        """
        self._blocked_until = max(self._blocked_until, loop_time() + seconds)

    @property
    def blocked_until(self) -> float:
        """Loop time before which no acquisition succeeds (``-inf`` if never penalized)."""
        return self._blocked_until
