"""KRX market rules: tick sizes and daily price limits, for the detectors' limit prices and
for brokers that quote no tick of their own (Kiwoom).

The tick table in force since 2023-01-25 (the same for KOSPI and KOSDAQ). The simulated
market in ``mocks/`` has its own copy on purpose: ``system`` may not import ``mocks``, and a
mock that shared the system's rules would share its mistakes too.
"""

from __future__ import annotations

import math

# (upper bound exclusive, tick) pairs; the last tick applies to everything above.
_TICKS: tuple[tuple[int, int], ...] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)
_TOP_TICK = 1_000

DAILY_LIMIT_RATE = 0.30


def tick_size(price: int) -> int:
    """The KRX tick of a stock quoted at ``price`` won."""
    for bound, tick in _TICKS:
        if price < bound:
            return tick
    return _TOP_TICK


def floor_to_tick(price: float) -> int:
    """The highest price on the tick grid at or below ``price``."""
    whole = math.floor(price + 1e-9)  # float noise must not cost a won
    return whole - whole % tick_size(whole)


def ticks_above(price: int, ticks: int) -> int:
    """``price`` (on the grid) moved up ``ticks`` steps, each the tick of the band the
    step starts from, as KRX counts them."""
    for _ in range(ticks):
        price += tick_size(price)
    return price


def daily_limits(base_price: int) -> tuple[int, int]:
    """(lower, upper) limit prices: ±30 % of the base (yesterday's close), cut inwards to
    the tick grid, as KRX does so that both stay within 30 %."""
    upper = floor_to_tick(base_price * (1 + DAILY_LIMIT_RATE))
    lower = math.ceil(base_price * (1 - DAILY_LIMIT_RATE) - 1e-9)
    tick = tick_size(lower)
    if lower % tick:
        lower += tick - lower % tick
    return lower, upper
