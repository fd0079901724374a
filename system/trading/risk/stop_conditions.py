"""``StopConditions``: stop trading when the market data is late or execution keeps failing."""

from __future__ import annotations

import math

from system.trading.risk._limits import positive_or_none, positive_seconds_or_none
from system.trading.risk.verdict import (
    ALLOWED,
    Guard,
    Halt,
    Reason,
    Verdict,
    refused_while_halted,
)


class StopConditions:
    """Halts on a source latency over ``max_source_latency_s`` seconds, or on
    ``max_consecutive_failures`` failed executions in a row (None: no such condition).

    Latency is how old a market data event is when it arrives (the caller measures it):
    a signal computed from stale prices trades against a market that has moved. One late
    event is enough; exactly the maximum is not late. Failures count executions that did
    not go through, in a row: a success resets the count, and the ``max``-th failure in a
    row halts (``max_consecutive_failures=3``: the third). A halted guard refuses every
    trade until ``release()``, which also starts the failure count afresh.
    """

    def __init__(
        self, max_source_latency_s: float | None, max_consecutive_failures: int | None
    ) -> None:
        self._max_latency = positive_seconds_or_none("max_source_latency_s", max_source_latency_s)
        self._max_failures = positive_or_none("max_consecutive_failures", max_consecutive_failures)
        self._failures = 0
        self._halt: Halt | None = None

    @property
    def max_source_latency_s(self) -> float | None:
        return self._max_latency

    @property
    def max_consecutive_failures(self) -> int | None:
        return self._max_failures

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def halt(self) -> Halt | None:
        return self._halt

    @property
    def halted(self) -> bool:
        return self._halt is not None

    def observe_latency(self, seconds: float, at: float) -> Halt | None:
        """Notes one event's source latency; the ``Halt`` if it is over the maximum."""
        if math.isnan(seconds):
            # NaN compares false with everything: it would pass for "not late" silently.
            raise ValueError("source latency is NaN; measure it from the event's timestamp")
        if self._max_latency is None or seconds <= self._max_latency:
            return None
        return self._stop(
            Reason.SOURCE_LATENCY,
            f"market data arrived {seconds:.3f} s after its source time; the most "
            f"allowed is {self._max_latency:.3f} s",
            at,
        )

    def record_execution(self, ok: bool, at: float) -> Halt | None:
        """Notes one execution's outcome; the ``Halt`` when failures reach the maximum."""
        if ok:
            self._failures = 0
            return None
        self._failures += 1
        if self._max_failures is None or self._failures < self._max_failures:
            return None
        return self._stop(
            Reason.CONSECUTIVE_FAILURES,
            f"{self._failures} executions failed in a row; the most allowed is "
            f"{self._max_failures}",
            at,
        )

    def check(self) -> Verdict:
        """Refuses every trade while halted."""
        if self._halt is None:
            return ALLOWED
        return refused_while_halted(Guard.STOP_CONDITIONS, self._halt)

    def release(self) -> bool:
        """Ends the halt and resets the failure count; False if there was no halt."""
        if self._halt is None:
            return False
        self._halt = None
        self._failures = 0
        return True

    def _stop(self, reason: Reason, detail: str, at: float) -> Halt | None:
        if self._halt is not None:
            return None  # the first halt stands; this one is its consequence
        self._halt = Halt(reason=reason, detail=detail, at=at, automatic=True)
        return self._halt

    def __repr__(self) -> str:
        return (
            f"StopConditions(max_source_latency_s={self._max_latency}, "
            f"max_consecutive_failures={self._max_failures}, halted={self.halted})"
        )
