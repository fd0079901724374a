"""``CapitalCap``: the most capital (KRW) one trade may use."""

from __future__ import annotations

from system.trading.risk._limits import non_negative, positive
from system.trading.risk.verdict import ALLOWED, Guard, Reason, Refused, Verdict


class CapitalCap:
    """At most ``max_per_trade`` won in one trade.

    Sizing goes through ``allot`` (ask for what the signal wants, get what the cap leaves),
    and the gate still ``check``s the sized trade: the cap holds even for a caller that
    sized it some other way. A trade worth exactly the cap is allowed.
    """

    def __init__(self, max_per_trade: int) -> None:
        self._max_per_trade = positive("max_per_trade", max_per_trade)

    @property
    def max_per_trade(self) -> int:
        return self._max_per_trade

    def allot(self, requested: int) -> int:
        """The capital a trade that wants ``requested`` won may use: no more than the cap."""
        non_negative("requested capital", requested)
        return min(requested, self._max_per_trade)

    def check(self, value: int) -> Verdict:
        """Refuses a trade worth more than the cap."""
        if value > self._max_per_trade:
            return Refused(
                guard=Guard.CAPITAL_CAP,
                reason=Reason.CAPITAL_CAP,
                detail=(
                    f"trade value {value:,} KRW exceeds the per-trade cap of "
                    f"{self._max_per_trade:,} KRW; size the trade with CapitalCap.allot()"
                ),
            )
        return ALLOWED

    def __repr__(self) -> str:
        return f"CapitalCap(max_per_trade={self._max_per_trade})"
