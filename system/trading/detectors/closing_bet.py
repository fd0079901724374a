"""A closing-price bet (종가베팅) detector for KRX stocks.

The bet: a stock that rose strongly today, on heavy volume, and is still trading near its
high shortly before the close tends to carry on at the next open; buy it into the close,
sell it the next morning. This detector says when: in a window before the 15:30 KST close
(by default 15:00 up to, not including, 15:20, before the closing auction), an update whose
``change_rate`` (percent against yesterday's close, as the feed carries it) is at least
``min_change_rate``, whose price is within ``near_high`` of the day's high and whose day
volume is at least ``min_volume`` emits one buy signal, at most one per code per KST day.

The day's high is the highest price this detector has been fed for the code since the KST
date changed (``PriceUpdate`` does not carry the exchange's own high), so a detector started
mid-day knows only the highs it saw; feed it from the open, REST resync updates included,
or it may buy a stock far below a morning spike.

The KST wall time comes from ``wall``, a function of loop time the caller injects (the
service maps the loop clock to KST; a scenario maps it to its virtual day). It must return
an aware datetime; any zone is converted to KST.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time

from system.broker.clock import KST
from system.krx import ticks_above
from system.market import PriceUpdate
from system.trading.detectors.base import Signal
from system.trading.detectors.ticks import cap_buy_limit

WallClock = Callable[[float], datetime]
"""Loop time (``PriceUpdate.at``) → the aware wall-clock datetime it corresponds to."""

MARKET_CLOSE = time(15, 30)


@dataclass(frozen=True)
class ClosingBetParams:
    """The closing-bet detector's parameters.

    ``window_start`` (15:00) and ``window_end`` (15:20, exclusive): the KST times of day
    updates may fire in.
    ``min_change_rate`` (5.0): the least rise on the day, in percent.
    ``near_high`` (0.01): how far below the day's high, as a fraction of it, price may be.
    ``min_volume`` (500_000): the least accumulated day volume, in shares.
    ``limit_offset_ticks`` (1): the suggested limit is the update's price plus this many
    ticks (capped at the upper daily limit), marketable against a thin ask; None suggests
    a market order.
    """

    window_start: time = time(15, 0)
    window_end: time = time(15, 20)
    min_change_rate: float = 5.0
    near_high: float = 0.01
    min_volume: int = 500_000
    limit_offset_ticks: int | None = 1

    def __post_init__(self) -> None:
        problems = []
        if not self.window_start < self.window_end <= MARKET_CLOSE:
            problems.append(
                f"need window_start < window_end <= {MARKET_CLOSE:%H:%M}, got "
                f"{self.window_start:%H:%M:%S} and {self.window_end:%H:%M:%S}"
            )
        if not 0 <= self.near_high < 1:
            problems.append(f"near_high must be in [0, 1), got {self.near_high}")
        if self.min_volume < 0:
            problems.append(f"min_volume must be 0 or more, got {self.min_volume}")
        if self.limit_offset_ticks is not None and self.limit_offset_ticks < 0:
            problems.append(
                f"limit_offset_ticks must be 0 or more, or None, got {self.limit_offset_ticks}"
            )
        if problems:
            raise ValueError("invalid closing-bet parameters: " + "; ".join(problems))


@dataclass
class _CodeState:
    last_at: float
    day: date
    day_high: int
    signalled: date | None = None


class ClosingBetDetector:
    """Emits one buy ``Signal`` per code per KST day for a strong stock near its high just
    before the close.

    ``strength`` is the day's ``change_rate`` in percent, so signals of one afternoon rank
    by how strongly each stock rose. Give each configuration its own ``name``: signal ids
    derive from it.
    """

    def __init__(
        self, wall: WallClock, params: ClosingBetParams | None = None, *, name: str = "closing_bet"
    ) -> None:
        self.name = name
        self.params = params or ClosingBetParams()
        self._wall = wall
        self._codes: dict[str, _CodeState] = {}

    def reset(self, code: str | None = None) -> None:
        """Forget what was seen of ``code``, or of every code (signals of today included)."""
        if code is None:
            self._codes.clear()
        else:
            self._codes.pop(code, None)

    def _kst(self, at: float) -> datetime:
        wall = self._wall(at)
        if wall.tzinfo is KST:
            return wall  # already Korean time: read on every price, so no conversion
        if wall.tzinfo is None or wall.utcoffset() is None:
            raise ValueError(
                f"{self.name}: the wall clock returned {wall.isoformat()} for loop time {at}, "
                "a naive datetime; return an aware one (e.g. tzinfo=KST from "
                "system.broker.clock) so the close is 15:30 in Korea, not on this machine"
            )
        return wall.astimezone(KST)

    def on_price(self, update: PriceUpdate) -> list[Signal]:
        p = self.params
        state = self._codes.get(update.code)
        if state is not None and update.at < state.last_at:
            return []
        now = self._kst(update.at)
        if state is None or state.day != now.date():
            state = self._codes[update.code] = _CodeState(update.at, now.date(), update.price)
        state.last_at = update.at
        state.day_high = max(state.day_high, update.price)

        if state.signalled == state.day:
            return []
        if not p.window_start <= now.time() < p.window_end:
            return []
        if update.change_rate < p.min_change_rate:
            return []
        if update.price < state.day_high * (1 - p.near_high):
            return []
        if update.volume < p.min_volume:
            return []

        state.signalled = state.day
        below_high = (state.day_high - update.price) / state.day_high
        return [
            Signal(
                detector=self.name,
                code=update.code,
                side="buy",
                limit_price=self._limit(update),
                reason=(
                    f"closing bet at {now:%H:%M:%S} KST: up {update.change_rate:.2f}% at "
                    f"{update.price:,}, {below_high:.2%} below the day's high "
                    f"{state.day_high:,}, {update.volume:,} shares traded"
                ),
                strength=update.change_rate,
                at=update.at,
            )
        ]

    def _limit(self, update: PriceUpdate) -> int | None:
        offset = self.params.limit_offset_ticks
        if offset is None:
            return None
        return cap_buy_limit(ticks_above(update.price, offset), update.price, update.change)
