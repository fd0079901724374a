"""Detectors: pure logic that turns market events into trading signals.

- ``VcpBreakoutDetector`` — a volatility-contraction-pattern breakout on KRX stocks.
- ``BreakoutDetector`` — a channel breakout: a new high of the last minutes (frequent).
- ``ClosingBetDetector`` — a closing-price bet (종가베팅): strong stocks near their high
  shortly before the 15:30 KST close.
- ``TriangularArbitrageDetector`` — cycles through three currency pairs that return more
  than they cost (fed ``RateQuote``, emits ``Opportunity``).

Adding a detector: write a module here with a class that has a ``name`` and an
``on_price(update: PriceUpdate) -> list[Signal]`` (the ``Detector`` protocol in ``base``),
and a frozen parameters dataclass whose docstring lists each parameter with its default
and which refuses nonsense in ``__post_init__``. Keep it pure: per-code state in the
instance, times taken from the events (``update.at`` is loop time; inject a function for the
KST wall time, as ``ClosingBetDetector`` does), no I/O, no clock reads, no randomness, so
that a replay gives the same signals with the same ids. Emit a signal once per setup, not
once per tick, and say in the module docstring what re-arms it. Export it below, and test
that it fires exactly once where it should and stays silent on the near misses.
"""

from system.krx import daily_limits, floor_to_tick, tick_size, ticks_above
from system.trading.detectors.base import Detector, Side, Signal, signal_id
from system.trading.detectors.breakout import BreakoutDetector, BreakoutParams
from system.trading.detectors.closing_bet import ClosingBetDetector, ClosingBetParams, WallClock
from system.trading.detectors.triangular import (
    Leg,
    Opportunity,
    RateDetector,
    RateQuote,
    TriangularArbitrageDetector,
    TriangularParams,
)
from system.trading.detectors.vcp import VcpBreakoutDetector, VcpParams

__all__ = [
    "BreakoutDetector",
    "BreakoutParams",
    "ClosingBetDetector",
    "ClosingBetParams",
    "Detector",
    "Leg",
    "Opportunity",
    "RateDetector",
    "RateQuote",
    "Side",
    "Signal",
    "TriangularArbitrageDetector",
    "TriangularParams",
    "VcpBreakoutDetector",
    "VcpParams",
    "WallClock",
    "daily_limits",
    "floor_to_tick",
    "signal_id",
    "tick_size",
    "ticks_above",
]
