"""A channel breakout: the price trades above the highest price of the last ``window_s``
seconds (a Donchian channel on loop time).

Plain and frequent, where the VCP is selective and rare: a desk's scenarios need signals
often enough to meet their faults, and a breakout of a short channel is the simplest signal
a real momentum desk runs. One signal per breakout: it re-arms once the price has traded
back inside the channel. The channel is only judged once it spans its whole window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from system.market import PriceUpdate
from system.trading.detectors.base import Signal


@dataclass(frozen=True)
class BreakoutParams:
    """``window_s`` (120.0): the channel's length in seconds of loop time.
    ``min_break`` (0.001): how far above the channel's high, as a fraction of it, the price
    must trade to count (0.1 % by default: one or two ticks on most KRX prices).
    """

    window_s: float = 120.0
    min_break: float = 0.001

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError(f"window_s must be positive; got {self.window_s}")
        if self.min_break < 0:
            raise ValueError(f"min_break must be >= 0; got {self.min_break}")


@dataclass
class _Channel:
    # (at, price) of the updates that may still be the channel's high: oldest and highest
    # first, each price below the one before it. An update hides every earlier one it
    # matches or beats (they leave the window before it does), so the high is highs[0]
    # instead of a max over every tick of the window, on every tick.
    highs: deque[tuple[float, int]] = field(default_factory=deque)
    first_at: float | None = None
    armed: bool = True


class BreakoutDetector:
    """Emits one buy ``Signal`` each time a code breaks out of its channel. ``strength`` is
    how far above the channel's high it traded, in percent."""

    def __init__(self, params: BreakoutParams | None = None, *, name: str = "breakout") -> None:
        self.name = name
        self.params = params or BreakoutParams()
        self._channels: dict[str, _Channel] = {}

    def on_price(self, update: PriceUpdate) -> list[Signal]:
        p = self.params
        channel = self._channels.setdefault(update.code, _Channel())
        highs = channel.highs
        if highs and update.at < highs[-1][0]:  # the last entry is the latest update
            return []  # older than what this channel has seen
        if channel.first_at is None:
            channel.first_at = update.at
        while highs and highs[0][0] < update.at - p.window_s:
            highs.popleft()
        signals: list[Signal] = []
        full = update.at - channel.first_at >= p.window_s
        if full and highs:
            high = highs[0][1]
            if update.price > high * (1 + p.min_break):
                if channel.armed:
                    channel.armed = False
                    above = (update.price - high) / high * 100
                    signals.append(
                        Signal(
                            detector=self.name,
                            code=update.code,
                            side="buy",
                            limit_price=None,
                            reason=f"broke its {p.window_s:g} s high {high} at {update.price}",
                            strength=above,
                            at=update.at,
                        )
                    )
            elif update.price <= high:
                channel.armed = True
        while highs and highs[-1][1] <= update.price:
            highs.pop()
        highs.append((update.at, update.price))
        return signals
