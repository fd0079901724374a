"""KRX market rules: instrument codes, tick sizes and daily price limits.

Tick table in force since 2023-01-25 (KRX, all stocks on KOSPI and KOSDAQ alike).
"""

from __future__ import annotations

import bisect
import math
import re

_CODE = re.compile(r"[0-9]{6}\Z")  # ASCII digits, no trailing newline

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
# The same table for a binary search: a market simulator asks for ticks by the thousand.
_BOUNDS = tuple(bound for bound, _ in _TICKS)
_SIZES = (*(tick for _, tick in _TICKS), _TOP_TICK)

DAILY_LIMIT_RATE = 0.30


def is_stock_code(code: str) -> bool:
    """A KRX short code is exactly six digits (005930)."""
    return bool(_CODE.match(code))


def tick_size(price: int) -> int:
    """The KRX tick for a stock quoted at ``price`` won."""
    return _SIZES[bisect.bisect_right(_BOUNDS, price)]


def round_to_tick(price: float, *, down: bool = False) -> int:
    """Round a raw price onto the tick grid of the band it falls in."""
    whole = int(price)
    tick = tick_size(whole)
    if down:
        return whole - whole % tick
    return round(price / tick) * tick


def is_on_tick(price: int) -> bool:
    return price > 0 and price % tick_size(price) == 0


def daily_limits(base_price: int) -> tuple[int, int]:
    """(lower, upper) limit prices: ±30 % of the base, cut inwards to the tick grid.

    KRX truncates the upper limit down and the lower limit up so both stay within 30 %.
    """
    upper_raw = base_price * (1 + DAILY_LIMIT_RATE)
    lower_raw = base_price * (1 - DAILY_LIMIT_RATE)
    upper = round_to_tick(upper_raw, down=True)
    lower = math.ceil(lower_raw - 1e-9)  # float noise must not push 70 % a won up
    tick = tick_size(lower)
    if lower % tick:
        lower += tick - lower % tick
    return lower, upper
