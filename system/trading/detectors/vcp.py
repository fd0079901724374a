"""A VCP (volatility contraction pattern) breakout detector for KRX stocks.

The pattern: price pulls back from a high, recovers, pulls back again less deeply, and
again less, each contraction tighter than the one before (say 12 %, then 6 %, then 2.5 %),
often on drying volume, until sellers are exhausted; a move above the high of the last
contraction (the *pivot*) is the breakout, a buy.

How it is read from the price updates of one code:

1. Bars. Updates are bucketed into bars of ``bar_s`` seconds of loop time (bar index
   ``floor(at / bar_s)``): open, high, low, close and the shares traded in the bar (the
   update carries the day's accumulated volume; a bar's volume is the difference). A bar
   without trades does not exist; it counts as zero volume where volume is averaged.
2. Swings. A zigzag over the bars marks a *peak* once price has fallen ``swing_pct`` below
   the highest high since the last trough, and a *trough* once price has risen ``swing_pct``
   above the lowest low since the last peak. Smaller wiggles are noise. When one bar holds
   both a new extreme and the reversal, the extreme is taken to come first.
3. Base. The last ``contractions`` peak→trough pairs form the base when each pullback's
   depth ``(peak - trough) / peak`` is strictly smaller than the one before, the first is at
   most ``max_first_depth`` (deeper is a collapse, not a base), the last at most
   ``max_last_depth`` (the tightness that makes the pattern), the first peak lies within
   ``max_base_bars`` bars of now, and, if ``volume_dry_up`` is set, the mean bar volume over
   the last contraction is at most that fraction of the mean over the first.
4. Breakout. While price rises from the base's last trough, an update above the pivot (the
   last contraction's peak) and at most ``max_extension`` above it emits one buy signal.

The swings are confirmed on closed bars and, for every update, tentatively on the bar in
progress as well, so a breakout is seen on the update that makes it, not at the bar's close.

One signal per base: after a breakout (signalled, or skipped because the first price above
the pivot was already more than ``max_extension`` above it; a late buyer chases), the
detector re-arms only for a base made entirely of swings after it. A failed breakout that
falls back under the pivot and crosses again is the same base, and stays silent.

Accepted and ignored updates: REST updates (``source == "rest"``, the resync after a gap or
a reconnect) are real trade prices and are used like any other; only the intra-bar extremes
they skipped are missing. An update older than the last one seen for its code is ignored.
A fall of the accumulated volume (a new trading day) restarts the volume count from that
update. Nothing else resets by itself: call ``reset`` at the start of a day if a base must
not span the night (with the default ``max_base_bars`` of 390 one-minute bars it cannot).

Not checked: the trend before the base (Minervini's stage 2) and volume on the breakout
itself; filter codes upstream if those matter.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from system.krx import floor_to_tick
from system.market import PriceUpdate
from system.trading.detectors.base import Signal
from system.trading.detectors.ticks import cap_buy_limit

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class VcpParams:
    """The VCP detector's parameters; the defaults suit one-minute bars over a KRX day.

    ``bar_s`` (60.0): bar length in seconds of loop time.
    ``contractions`` (3): how many shrinking pullbacks make a base (at least 2).
    ``swing_pct`` (0.01): the reversal, as a fraction of price, that confirms a swing.
    ``max_first_depth`` (0.20): deepest first pullback allowed.
    ``max_last_depth`` (0.05): deepest last pullback allowed.
    ``max_base_bars`` (390): the most bars from the base's first peak to now (390 minutes
    is the 09:00-15:30 session).
    ``max_extension`` (0.03): how far above the pivot a breakout may still be bought; the
    suggested limit price is the pivot plus this, down to the tick grid.
    ``volume_dry_up`` (None): if set, e.g. 0.7, the last contraction's mean bar volume must
    be at most this fraction of the first's; None leaves volume out.
    """

    bar_s: float = 60.0
    contractions: int = 3
    swing_pct: float = 0.01
    max_first_depth: float = 0.20
    max_last_depth: float = 0.05
    max_base_bars: int = 390
    max_extension: float = 0.03
    volume_dry_up: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.bar_s > 0:
            problems.append(f"bar_s must be positive, got {self.bar_s}")
        if self.contractions < 2:
            problems.append(f"contractions must be at least 2, got {self.contractions}")
        if not 0 < self.swing_pct <= self.max_last_depth <= self.max_first_depth < 1:
            problems.append(
                "need 0 < swing_pct <= max_last_depth <= max_first_depth < 1, got "
                f"{self.swing_pct}, {self.max_last_depth}, {self.max_first_depth}"
            )
        if self.max_base_bars < 2 * self.contractions:
            problems.append(
                f"max_base_bars ({self.max_base_bars}) cannot hold {self.contractions} "
                "contractions; it needs at least two bars per contraction"
            )
        if not self.max_extension >= 0:
            problems.append(f"max_extension must be 0 or more, got {self.max_extension}")
        if self.volume_dry_up is not None and not self.volume_dry_up > 0:
            problems.append(f"volume_dry_up must be positive or None, got {self.volume_dry_up}")
        if problems:
            raise ValueError("invalid VCP parameters: " + "; ".join(problems))


@dataclass(slots=True)
class _Bar:
    index: int
    high: int
    low: int
    volume: int


@dataclass(frozen=True, slots=True)
class _Swing:
    kind: Literal["peak", "trough"]
    price: int
    bar: int


@dataclass(frozen=True, slots=True)
class _Trend:
    """The zigzag's state: the direction of the leg in progress (None before the first
    swing) and the extremes it tracks (an up leg its high, a down leg its low, the start
    both)."""

    direction: Direction | None
    high: int
    high_bar: int
    low: int
    low_bar: int


def _step(trend: _Trend | None, bar: _Bar, swing: float) -> tuple[_Trend, list[_Swing]]:
    """The zigzag after ``bar``: its new state and the swing the bar confirmed, if any."""
    if trend is None:
        return _Trend(None, bar.high, bar.index, bar.low, bar.index), []
    high, high_bar = (
        (bar.high, bar.index) if bar.high > trend.high else (trend.high, trend.high_bar)
    )
    low, low_bar = (bar.low, bar.index) if bar.low < trend.low else (trend.low, trend.low_bar)
    if trend.direction == "up":
        if bar.low <= high * (1 - swing):
            return _Trend("down", high, high_bar, bar.low, bar.index), [
                _Swing("peak", high, high_bar)
            ]
    elif trend.direction == "down":
        if bar.high >= low * (1 + swing):
            return _Trend("up", bar.high, bar.index, low, low_bar), [_Swing("trough", low, low_bar)]
    # Before the first swing: once the range since the start is a swing, the extreme that
    # came first is the first swing (if one bar holds both, a later bar decides).
    elif low <= high * (1 - swing) and high_bar < low_bar:
        return _Trend("down", high, high_bar, low, low_bar), [_Swing("peak", high, high_bar)]
    elif low <= high * (1 - swing) and low_bar < high_bar:
        return _Trend("up", high, high_bar, low, low_bar), [_Swing("trough", low, low_bar)]
    return _Trend(trend.direction, high, high_bar, low, low_bar), []


@dataclass
class _CodeState:
    last_at: float | None = None
    last_volume: int | None = None
    bar: _Bar | None = None  # the bar in progress
    closed: deque[_Bar] = field(default_factory=deque)
    trend: _Trend | None = None  # the zigzag over closed bars
    swings: deque[_Swing] = field(default_factory=deque)  # the latest confirmed swings
    spent_bar: float = -math.inf  # bar of the last breakout; bases before it are used up


class VcpBreakoutDetector:
    """Emits one buy ``Signal`` per VCP base when price breaks out above its pivot.

    ``strength`` is ``1 - last depth / first depth``: how much the volatility contracted
    (0 to 1, higher is tighter). ``limit_price`` is the pivot plus ``max_extension``, down to
    the tick grid and capped at the day's upper limit: marketable at the breakout, never a
    chase beyond the buy zone. Give each configuration its own ``name``: signal ids derive
    from it.
    """

    def __init__(self, params: VcpParams | None = None, *, name: str = "vcp") -> None:
        self.name = name
        self.params = params or VcpParams()
        self._codes: dict[str, _CodeState] = {}

    def reset(self, code: str | None = None) -> None:
        """Forget what was seen of ``code``, or of every code."""
        if code is None:
            self._codes.clear()
        else:
            self._codes.pop(code, None)

    def on_price(self, update: PriceUpdate) -> list[Signal]:
        p = self.params
        state = self._codes.get(update.code)
        if state is None:
            state = self._codes[update.code] = _CodeState(
                closed=deque(maxlen=p.max_base_bars + 1),
                swings=deque(maxlen=2 * p.contractions),
            )
        if state.last_at is not None and update.at < state.last_at:
            return []
        state.last_at = update.at

        traded = 0
        if state.last_volume is not None:
            traded = max(update.volume - state.last_volume, 0)
        state.last_volume = update.volume

        index = math.floor(update.at / p.bar_s)
        bar = state.bar
        if bar is not None and index > bar.index:
            state.trend, confirmed = _step(state.trend, bar, p.swing_pct)
            state.swings.extend(confirmed)
            state.closed.append(bar)
            bar = None
        if bar is None:
            bar = state.bar = _Bar(index, update.price, update.price, traded)
        else:
            bar.high = max(bar.high, update.price)
            bar.low = min(bar.low, update.price)
            bar.volume += traded

        signal = self._breakout(update, state, bar)
        return [] if signal is None else [signal]

    def _breakout(self, update: PriceUpdate, state: _CodeState, bar: _Bar) -> Signal | None:
        p = self.params
        trend, tentative = _step(state.trend, bar, p.swing_pct)
        if trend.direction != "up":
            return None
        swings = [*state.swings, *tentative][-2 * p.contractions :]
        if len(swings) < 2 * p.contractions:
            return None
        peaks, troughs = swings[0::2], swings[1::2]
        pivot = peaks[-1].price
        if update.price <= pivot:
            return None
        if peaks[0].bar < state.spent_bar or peaks[0].bar < bar.index - p.max_base_bars:
            return None
        depths = [
            (peak.price - trough.price) / peak.price
            for peak, trough in zip(peaks, troughs, strict=True)
        ]
        shrinking = all(later < earlier for earlier, later in itertools.pairwise(depths))
        if not (shrinking and depths[0] <= p.max_first_depth and depths[-1] <= p.max_last_depth):
            return None
        dry_up = ""
        if p.volume_dry_up is not None:
            first = self._mean_volume(state, bar, peaks[0].bar, troughs[0].bar)
            last = self._mean_volume(state, bar, peaks[-1].bar, troughs[-1].bar)
            if not last <= p.volume_dry_up * first:
                return None
            dry_up = (
                f"; volume {last:,.0f}/bar in the last contraction vs {first:,.0f} in the first"
            )

        state.spent_bar = bar.index
        ceiling = pivot * (1 + p.max_extension)
        if update.price > ceiling:
            return None  # the breakout went by beyond the buy zone: this base is spent
        limit = cap_buy_limit(floor_to_tick(ceiling), update.price, update.change)
        contracted = " → ".join(f"{depth:.1%}" for depth in depths)
        return Signal(
            detector=self.name,
            code=update.code,
            side="buy",
            limit_price=limit,
            reason=(
                f"VCP breakout at {update.price:,} above the pivot {pivot:,} after "
                f"{p.contractions} contractions ({contracted}) over "
                f"{bar.index - peaks[0].bar + 1} bars{dry_up}"
            ),
            strength=1 - depths[-1] / depths[0],
            at=update.at,
        )

    @staticmethod
    def _mean_volume(state: _CodeState, current: _Bar, first: int, last: int) -> float:
        """Shares per bar over bars ``first..last`` (inclusive); bars without trades count
        as zero."""
        traded = sum(b.volume for b in (*state.closed, current) if first <= b.index <= last)
        return traded / (last - first + 1)
