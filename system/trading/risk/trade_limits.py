"""``TradeLimits``: how many trades may be open at once, and how much in one asset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from system.trading.risk._limits import non_negative, positive_or_none
from system.trading.risk.errors import DuplicateTrade, UnknownTrade
from system.trading.risk.verdict import ALLOWED, Guard, Reason, Refused, Verdict


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """A trade the limits count: ``value`` won of ``code``, from its opening to its close."""

    trade_id: str
    code: str
    value: int


class TradeLimits:
    """At most ``max_concurrent_trades`` open trades, and ``max_exposure_per_asset`` won in
    the open trades of any one code (None: no such limit).

    The exposure of a code is the sum of its open trades' values at opening (their cost),
    not a marked-to-market value: the limit bounds what was put at risk, and it must not
    move with every price tick. ``check`` is a question; ``open`` and ``close`` change the
    book, and they do not check (the gate checks, then opens, with no await between).
    Exactly the limit is allowed: ``max_concurrent_trades=2`` lets a second trade open, and
    a trade that brings a code exactly to its exposure limit passes.
    """

    def __init__(
        self, max_concurrent_trades: int | None, max_exposure_per_asset: int | None
    ) -> None:
        self._max_concurrent = positive_or_none("max_concurrent_trades", max_concurrent_trades)
        self._max_exposure = positive_or_none("max_exposure_per_asset", max_exposure_per_asset)
        self._open: dict[str, OpenTrade] = {}

    @property
    def max_concurrent_trades(self) -> int | None:
        return self._max_concurrent

    @property
    def max_exposure_per_asset(self) -> int | None:
        return self._max_exposure

    @property
    def open_count(self) -> int:
        return len(self._open)

    @property
    def open_trades(self) -> Mapping[str, OpenTrade]:
        """The open trades by id (a read-only view)."""
        return MappingProxyType(self._open)

    def exposure(self, code: str) -> int:
        """Won in the open trades of ``code``."""
        return sum(trade.value for trade in self._open.values() if trade.code == code)

    def check(self, code: str, value: int) -> Verdict:
        """Refuses a new trade of ``value`` won in ``code`` that one of the limits forbids.

        Concurrency first: it refuses whatever the asset, so it is the more general reason.
        """
        if self._max_concurrent is not None and len(self._open) >= self._max_concurrent:
            return Refused(
                guard=Guard.TRADE_LIMITS,
                reason=Reason.MAX_CONCURRENT_TRADES,
                detail=(
                    f"{len(self._open)} trades are open, the most allowed at once is "
                    f"{self._max_concurrent}; a slot frees when one of them closes"
                ),
            )
        held = self.exposure(code)
        if self._max_exposure is not None and held + value > self._max_exposure:
            return Refused(
                guard=Guard.TRADE_LIMITS,
                reason=Reason.ASSET_EXPOSURE,
                detail=(
                    f"{code} already has {held:,} KRW in open trades; {value:,} KRW more "
                    f"would exceed its exposure limit of {self._max_exposure:,} KRW"
                ),
            )
        return ALLOWED

    def open(self, trade_id: str, code: str, value: int) -> OpenTrade:
        """Counts a new open trade; ``DuplicateTrade`` if ``trade_id`` is open already."""
        non_negative("trade value", value)
        if trade_id in self._open:
            raise DuplicateTrade(trade_id)
        trade = OpenTrade(trade_id=trade_id, code=code, value=value)
        self._open[trade_id] = trade
        return trade

    def close(self, trade_id: str) -> OpenTrade:
        """Stops counting ``trade_id``; ``UnknownTrade`` if it is not open."""
        trade = self._open.pop(trade_id, None)
        if trade is None:
            raise UnknownTrade(trade_id)
        return trade

    def __repr__(self) -> str:
        return (
            f"TradeLimits(max_concurrent_trades={self._max_concurrent}, "
            f"max_exposure_per_asset={self._max_exposure}, open={len(self._open)})"
        )
