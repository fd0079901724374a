"""``PreTradeValidator``: the last look at an order before it goes to the broker."""

from __future__ import annotations

from system.trading.risk._limits import non_negative
from system.trading.risk.verdict import ALLOWED, Guard, Reason, Refused, Verdict


class PreTradeValidator:
    """An order of at least ``min_order_value`` won, and no more than the cash to pay it.

    The balance is the broker's (KIS's orderable cash, 주문가능현금), fetched by the caller:
    this class does no I/O. The minimum comes first because it needs no outside data, and
    an order too small to send is refused for that whatever the balance. Exactly the
    minimum, and exactly the available cash, are allowed.
    """

    def __init__(self, min_order_value: int) -> None:
        self._min_order_value = non_negative("min_order_value", min_order_value)

    @property
    def min_order_value(self) -> int:
        return self._min_order_value

    def check(self, order_value: int, available_cash: int | None) -> Verdict:
        """Refuses an order below the minimum, or one the cash cannot pay for.

        ``available_cash=None`` skips the balance: a sell spends holdings, not cash, and
        the broker itself refuses selling what the account does not hold.
        """
        if order_value < self._min_order_value:
            return Refused(
                guard=Guard.PRE_TRADE,
                reason=Reason.BELOW_MINIMUM_ORDER,
                detail=(
                    f"order value {order_value:,} KRW is below the minimum order of "
                    f"{self._min_order_value:,} KRW"
                ),
            )
        if available_cash is not None and order_value > available_cash:
            return Refused(
                guard=Guard.PRE_TRADE,
                reason=Reason.INSUFFICIENT_BALANCE,
                detail=(
                    f"order value {order_value:,} KRW exceeds the available cash of "
                    f"{available_cash:,} KRW reported by the broker"
                ),
            )
        return ALLOWED

    def __repr__(self) -> str:
        return f"PreTradeValidator(min_order_value={self._min_order_value})"
