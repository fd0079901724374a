"""Daily bars for Kiwoom's charts (ka10081, ka10060): seeded history, then today.

The simulator only runs today. The days before it are a seeded random walk that ends at
the instrument's base price (yesterday's close), walked backwards, so today's bar and the
history meet where the rest of the mock says they do: today's ``pred_pre`` is the price
minus the base price everywhere. Today's bar is the market's own at the current step
(events included).

Trading days are weekdays; the mock knows no exchange holidays. A bar ``k`` trading days
back depends only on (seed, code, k), never on what was asked before.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from mocks import krx
from mocks.market import Market

_DAILY_SIGMA = 0.02


@dataclass(frozen=True)
class DailyBar:
    day: date
    open: int
    high: int
    low: int
    close: int
    volume: int
    turnover: int  # won
    prev_close: int

    @property
    def change(self) -> int:
        return self.close - self.prev_close

    @property
    def sign(self) -> str:
        """Kiwoom's 대비기호 of the close against the previous close: 1 상한가, 2 상승,
        3 보합, 4 하한가, 5 하락."""
        lower, upper = krx.daily_limits(self.prev_close)
        if self.close >= upper:
            return "1"
        if self.close <= lower:
            return "4"
        if self.close > self.prev_close:
            return "2"
        return "3" if self.close == self.prev_close else "5"


def trading_days_before(day: date, count: int) -> list[date]:
    """The ``count`` weekdays before ``day``, newest first."""
    days: list[date] = []
    current = day
    while len(days) < count:
        current -= timedelta(days=1)
        if current.weekday() < 5:
            days.append(current)
    return days


class DailyHistory:
    def __init__(self, market: Market) -> None:
        self.market = market
        self._past: dict[str, list[tuple[int, int, int, int, int, int]]] = {}

    def bars(self, code: str, today: date, step: int, days: int) -> list[DailyBar]:
        """Today's bar (on a weekday) and ``days`` trading days before it, newest first."""
        bars: list[DailyBar] = []
        if today.weekday() < 5:
            tick = self.market.tick(code, step)
            bars.append(
                DailyBar(
                    day=today,
                    open=tick.open,
                    high=tick.high,
                    low=tick.low,
                    close=tick.price,
                    volume=tick.volume,
                    turnover=tick.turnover,
                    prev_close=self.market.instruments[code].base_price,
                )
            )
        past = self._walk(code, days)
        for day, (open_, high, low, close, volume, prev) in zip(
            trading_days_before(today, days), past, strict=True
        ):
            turnover = volume * (open_ + high + low + close) // 4
            bars.append(DailyBar(day, open_, high, low, close, volume, turnover, prev))
        return bars

    def _walk(self, code: str, days: int) -> list[tuple[int, int, int, int, int, int]]:
        """(open, high, low, close, volume, prev_close) for 1..days trading days back."""
        walked = self._past.get(code, [])
        if len(walked) >= days:
            return walked[:days]
        rng = random.Random(f"squall:{self.market.seed}:{code}:daily-history")
        close = self.market.instruments[code].base_price
        walked = []
        for _ in range(days):
            prev = max(1, krx.round_to_tick(close / math.exp(rng.gauss(0, _DAILY_SIGMA))))
            # A 2 % daily sigma keeps ``close`` far inside prev's ±30 % limits; the close is
            # never clamped, so one day back stays exactly the base price.
            lower, upper = krx.daily_limits(prev)
            open_ = min(max(krx.round_to_tick(prev * math.exp(rng.gauss(0, 0.01))), lower), upper)
            high = min(krx.round_to_tick(max(open_, close) * (1 + abs(rng.gauss(0, 0.01)))), upper)
            low = max(
                krx.round_to_tick(min(open_, close) * (1 - abs(rng.gauss(0, 0.01))), down=True),
                lower,
            )
            volume = max(1, int(rng.lognormvariate(13, 0.6)))
            high, low = max(high, open_, close), min(low, open_, close)
            walked.append((open_, high, low, close, volume, prev))
            close = prev
        self._past[code] = walked
        return walked
