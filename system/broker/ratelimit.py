"""A sliding-window limiter that spends the broker's per-second budget without exceeding it.

KIS counts requests per account per second (``EGW00201`` beyond 18/s real, 1/s paper). A
token bucket would allow a burst of ``budget`` at the end of one second and another at the
start of the next, which the broker may count in one window; a sliding log of the last
``capacity`` start times cannot: a request starts only when the one ``capacity`` places
before it is at least a full window (plus a margin for arrival jitter) in the past.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from system.broker.clock import loop_time

_TOLERANCE_S = 1e-6


class RateLimiter:
    """Allow at most ``capacity`` acquisitions in any ``window_s + margin_s`` of loop time.

    ``capacity`` is ``floor(budget_per_second * window_s)``; a budget below one per window
    becomes one acquisition per ``1 / budget_per_second`` seconds. Waiters are served in
    arrival order: they queue on one lock and only its holder sleeps, so hundreds of
    concurrent callers do not wake and race each time a slot frees up.
    """

    def __init__(
        self, budget_per_second: float, *, window_s: float = 1.0, margin_s: float = 0.05
    ) -> None:
        if budget_per_second <= 0 or window_s <= 0 or margin_s < 0:
            raise ValueError(
                "RateLimiter needs budget_per_second > 0, window_s > 0 and margin_s >= 0, got "
                f"{budget_per_second}, {window_s}, {margin_s}"
            )
        capacity = math.floor(budget_per_second * window_s)
        if capacity < 1:
            capacity, window_s = 1, 1.0 / budget_per_second
        self.capacity = capacity
        self.span_s = window_s + margin_s
        self._starts: deque[float] = deque(maxlen=capacity)
        self._blocked_until = -math.inf
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait (FIFO) until one more request fits the window, then count it as started."""
        async with self._lock:
            while True:
                now = loop_time()
                ready_at = self._blocked_until
                if len(self._starts) == self.capacity:
                    ready_at = max(ready_at, self._starts[0] + self.span_s)
                # Sums of floats land a hair past the clock's own value (2.1 + 1.05 > 3.15);
                # a microsecond is far inside the margin and ends an otherwise endless wait.
                if ready_at - now <= _TOLERANCE_S:
                    break
                # Re-check after sleeping: penalize() may have moved the goalposts meanwhile.
                await asyncio.sleep(ready_at - now)
            self._starts.append(now)

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
