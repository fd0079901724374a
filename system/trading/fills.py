"""Where the desk learns what its orders filled: the broker's own books."""

from __future__ import annotations

from system.broker import BrokerClient, OrderAck, OrderRequest


class BrokerFills:
    """Fills read from today's orders at the broker (KIS: ``inquire-daily-ccld``), matched by the
    order number the broker acknowledged. The broker's figures, not the system's guess:
    a market order fills at whatever the market paid."""

    def __init__(self, client: BrokerClient) -> None:
        self.client = client

    async def fill_of(self, ack: OrderAck, order: OrderRequest) -> tuple[int, int] | None:
        """(filled quantity, average price in won), or None if nothing of it filled."""
        for row in await self.client.daily_orders(odno=ack.odno):
            if row.odno == ack.odno:
                if row.filled_quantity <= 0:
                    return None
                return row.filled_quantity, round(row.average_price)
        return None
