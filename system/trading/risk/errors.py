"""Misuse of the guards' trade book: a trade id opened twice, or closed without being open.

Both mean the caller's bookkeeping and the guards' have parted, so the counts the limits
rest on would be wrong; they are raised before anything changes, never ignored.
"""

from __future__ import annotations


class RiskError(Exception):
    """Base of the risk guards' errors."""


class DuplicateTrade(RiskError, ValueError):
    """A trade id that is already open was opened again."""

    def __init__(self, trade_id: str) -> None:
        super().__init__(
            f"trade {trade_id!r} is already open; each trade needs its own id "
            "(the executor's client order id), and a trade is opened once"
        )
        self.trade_id = trade_id


class UnknownTrade(RiskError, LookupError):
    """A trade id that is not open was closed, settled or cancelled."""

    def __init__(self, trade_id: str) -> None:
        super().__init__(
            f"trade {trade_id!r} is not open here; it was never admitted, or it was "
            "closed already — record P&L of trades the gate did not admit with record_pnl()"
        )
        self.trade_id = trade_id
