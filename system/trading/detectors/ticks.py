"""Limit prices for the detectors, on KRX's rules (``system.krx``)."""

from __future__ import annotations

from system.krx import daily_limits


def cap_buy_limit(limit: int, price: int, change: int) -> int:
    """A buy limit of ``limit`` for a stock trading at ``price``, ``change`` won from its
    base (yesterday's close): cut to the day's upper limit price, since KRX refuses an order
    above it (a base that is not positive is unknown and cuts nothing), and never below
    ``price``, where the buy would not fill."""
    base_price = price - change
    if base_price > 0:
        limit = min(limit, daily_limits(base_price)[1])
    return max(limit, price)
