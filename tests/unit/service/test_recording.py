"""TradingService with a recorder: orders recorded before they are sent, snapshots kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import respx

from system.broker import KisClient, OrderRequest
from system.service import ServiceSettings, TradingService
from system.storage.buffer import BufferClosed
from system.storage.records import AuditEvent, QuoteSnapshot, Record, StoredOrder
from tests.unit.broker.conftest import HASHKEY, ORDER, PRICE, hash_ok, order_ok, price_ok

pytestmark = pytest.mark.looptime

BUY = OrderRequest("cid-1", "buy", "005930", 10, 70000)


class Journal:
    """A recorder that notes each group, and what the broker had seen at that moment."""

    def __init__(self, orders: respx.Route) -> None:
        self.orders = orders
        self.groups: list[tuple[tuple[Record, ...], int]] = []
        self.refuse = False

    def record(self, *records: Record) -> int:
        if self.refuse:
            raise BufferClosed("the write buffer is closed")
        self.groups.append((records, self.orders.call_count))
        return len(self.groups)


@pytest.fixture
def order_route(broker: respx.MockRouter) -> respx.Route:
    broker.post(HASHKEY).mock(side_effect=hash_ok)
    return broker.post(ORDER)


@pytest.mark.usefixtures("token_route")
async def test_an_order_is_recorded_with_its_audit_event_before_it_is_sent(
    order_route: respx.Route, make_client: Callable[..., KisClient]
) -> None:
    order_route.mock(return_value=order_ok("0000011111"))
    journal = Journal(order_route)
    service = TradingService(make_client(), ServiceSettings(), recorder=journal)
    await service.place_order(BUY)
    (first, sent_before), (last, _) = journal.groups
    assert sent_before == 0  # recorded while the broker had seen nothing
    stored, audit = first
    assert isinstance(stored, StoredOrder)
    assert (stored.client_order_id, stored.state, stored.price) == ("cid-1", "pending", 70000)
    assert isinstance(audit, AuditEvent)
    assert audit.kind == "order-recorded"
    assert audit.detail["client_order_id"] == "cid-1"
    (settled,) = last
    assert isinstance(settled, StoredOrder)
    assert (settled.state, settled.broker_order_id) == ("acked", "0000011111")


@pytest.mark.usefixtures("token_route")
async def test_an_order_the_recorder_refuses_is_not_sent(
    order_route: respx.Route, make_client: Callable[..., KisClient]
) -> None:
    journal = Journal(order_route)
    journal.refuse = True
    service = TradingService(make_client(), ServiceSettings(), recorder=journal)
    with pytest.raises(BufferClosed):
        await service.place_order(BUY)
    assert order_route.call_count == 0
    (record,) = service.orders()
    assert record.status == "failed"
    assert "could not be recorded" in record.events[-1][1]
    metrics = service.metrics()
    assert (metrics["orders_not_recorded"], metrics["orders_failed"]) == (1, 1)


@pytest.mark.usefixtures("token_route")
async def test_a_quote_is_stored_as_a_snapshot_and_a_refusal_costs_only_the_snapshot(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    broker.get(PRICE).mock(return_value=price_ok())
    journal = Journal(broker.post(ORDER))
    service = TradingService(make_client(), ServiceSettings(), recorder=journal)
    quote = await service.quote("005930")
    ((snapshot,), _) = journal.groups[0]
    assert isinstance(snapshot, QuoteSnapshot)
    assert (snapshot.code, snapshot.price, snapshot.volume) == ("005930", quote.price, quote.volume)
    journal.refuse = True
    assert (await service.quote("005930")).price == quote.price
    assert service.metrics()["records_refused"] == 1
