"""The accounts' books on the broker's control plane: what was placed and filled.

``GET /_squall/account/orders`` lists every order of every account, oldest first, with its
fill, and ``at``: when it was booked in seconds of the mock's clock. It is the broker's side
of a history check, the truth the system's own records are compared with, so it is read
from the books themselves, never from what a client was told. ``odno`` is the order's number
as the broker the mock plays writes it: KIS's ten digits, Kiwoom's seven (``ord_no``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from mocks.broker.kiwoom.state import order_number
from mocks.broker.state import Broker
from mocks.control import PREFIX, ControlPlane


def router(broker: Broker, plane: ControlPlane) -> APIRouter:
    api = APIRouter(prefix=f"{PREFIX}/account", dependencies=[Depends(plane.authorize)])

    @api.get("/orders")
    async def orders() -> list[dict[str, Any]]:
        origin = broker.clock.wall(0.0)
        number = order_number if broker.config.api == "kiwoom" else str
        return [
            {
                "account": f"{account.cano}-{account.product}",
                "odno": number(order.odno),
                "side": order.side,
                "code": order.code,
                "quantity": order.quantity,
                "price": order.price,
                "filled_quantity": order.filled_quantity,
                "fill_price": order.fill_price,
                "at": (order.placed_at - origin).total_seconds(),
                "day": order.placed_at.date().isoformat(),
            }
            for account in broker.accounts.all()
            for order in account.orders
        ]

    return api
