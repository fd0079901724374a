"""ConnectionManager: clients, topics, and bounded per-client queues — with fake sockets."""

from __future__ import annotations

import asyncio

import pytest

from system.broker.clock import loop_time
from system.gateway import ConnectionManager, InvalidTicker, ProtocolError
from tests.unit.gateway.fakes import FakeSocket, settle


def manager(**kwargs: float) -> ConnectionManager:
    return ConnectionManager(**kwargs)  # type: ignore[arg-type]


async def test_connect_sends_connected_with_the_client_id() -> None:
    gateway = manager()
    socket = FakeSocket()
    client_id = gateway.connect(socket, {"heartbeat_interval_s": 15.0})
    await settle()
    assert client_id == "c1"
    assert socket.messages() == [
        {"type": "connected", "client_id": "c1", "heartbeat_interval_s": 15.0}
    ]
    assert (len(gateway), gateway.client_ids, gateway.totals.connections) == (1, ("c1",), 1)
    assert gateway.connect(FakeSocket()) == "c2"


async def test_disconnect_removes_the_client_from_all_topics() -> None:
    gateway = manager()
    events: list[tuple[str, bool]] = []
    gateway.add_topic_listener(lambda topic, active: events.append((topic, active)))
    alice, bob = gateway.connect(FakeSocket()), gateway.connect(FakeSocket())
    for topic in ("005930", "000660", "signals"):
        gateway.subscribe(alice, topic)
    gateway.subscribe(bob, "005930")
    gateway.disconnect(alice)
    assert gateway.topics() == {"005930": 1}
    assert gateway.subscribers("005930") == {bob}
    assert events == [
        ("005930", True),
        ("000660", True),
        ("signals", True),
        ("000660", False),
        ("signals", False),
    ]
    gateway.disconnect(alice)  # idempotent
    assert len(gateway) == 1


async def test_subscribe_elw_ticker() -> None:
    gateway = manager()
    client = gateway.connect(FakeSocket())
    assert gateway.subscribe(client, "580012") is True  # ELW codes are 6 digits as well
    assert gateway.subscribe(client, "580012") is False  # already subscribed


async def test_subscribe_invalid_ticker_rejected() -> None:
    gateway = manager()
    client = gateway.connect(FakeSocket())
    with pytest.raises(InvalidTicker, match=r'^"59300" is not a ticker code: expected a string'):
        gateway.subscribe(client, "59300")
    with pytest.raises(ProtocolError, match=r'^unknown topic "orders": the topics are "signals"'):
        gateway.subscribe(client, "orders")
    assert gateway.topics() == {}


async def test_broadcast_to_topic_subscribers_only() -> None:
    gateway = manager()
    sockets = [FakeSocket() for _ in range(3)]
    ids = [gateway.connect(s) for s in sockets]
    gateway.subscribe(ids[0], "005930")
    gateway.subscribe(ids[1], "005930")
    gateway.subscribe(ids[2], "000660")
    assert gateway.broadcast("005930", {"type": "price_update", "ticker": "005930"}) == 2
    assert gateway.broadcast("035420", {"type": "price_update", "ticker": "035420"}) == 0
    await settle()
    got = [[m["ticker"] for m in s.messages("price_update")] for s in sockets]
    assert got == [["005930"], ["005930"], []]
    assert gateway.totals.messages_sent == 3 + 2  # three "connected", two prices


async def test_unsubscribe_stops_delivery_and_reports_whether_it_was_subscribed() -> None:
    gateway = manager()
    socket = FakeSocket()
    client = gateway.connect(socket)
    gateway.subscribe(client, "005930")
    assert gateway.unsubscribe(client, "005930") is True
    assert gateway.unsubscribe(client, "005930") is False
    gateway.broadcast("005930", {"type": "price_update"})
    await settle()
    assert socket.messages("price_update") == []


async def test_a_client_that_stopped_reading_does_not_stall_the_others() -> None:
    gateway = manager(queue_size=4)
    fast, slow = FakeSocket(), FakeSocket()
    slow.reading.clear()
    fast_id, slow_id = gateway.connect(fast), gateway.connect(slow)
    for client in (fast_id, slow_id):
        gateway.subscribe(client, "signals")
    for n in range(10):
        gateway.broadcast("signals", {"type": "signal", "n": n})
        await settle(3)
    assert [m["n"] for m in fast.messages("signal")] == list(range(10))
    slow_client = gateway.client(slow_id)
    assert slow_client is not None
    # The writer holds "connected" (blocked in send); the outbox keeps the newest four.
    assert (slow_client.dropped, len(slow_client.outbox)) == (6, 4)
    assert gateway.totals.messages_dropped == 6
    slow.reading.set()
    await settle()
    assert [m["n"] for m in slow.messages("signal")] == [6, 7, 8, 9]


async def test_prices_are_coalesced_per_ticker_for_a_client_that_is_behind() -> None:
    gateway = manager(queue_size=4)
    slow = FakeSocket()
    slow.reading.clear()
    client = gateway.connect(slow)
    gateway.subscribe(client, "005930")
    gateway.subscribe(client, "000660")
    await settle()
    for price in range(100, 150):
        for code in ("005930", "000660"):
            message = {"type": "price_update", "ticker": code, "price": price}
            gateway.broadcast(code, message, key=f"price:{code}")
    slow.reading.set()
    await settle()
    prices = [(m["ticker"], m["price"]) for m in slow.messages("price_update")]
    assert prices == [("005930", 149), ("000660", 149)]
    assert (gateway.totals.messages_coalesced, gateway.totals.messages_dropped) == (98, 0)


@pytest.mark.looptime
async def test_a_client_saturated_for_too_long_is_closed_with_1013() -> None:
    gateway = manager(queue_size=2, saturation_close_s=10, close_timeout_s=1)
    slow = FakeSocket()
    slow.reading.clear()
    slow.hang_close = True  # it does not read, so it cannot take a close frame either
    client = gateway.connect(slow)
    gateway.subscribe(client, "signals")
    start = loop_time()
    while not gateway.totals.closed_saturated:
        gateway.broadcast("signals", {"type": "signal"})
        await asyncio.sleep(1)
    # Sent at 0 s and 1 s fill the queue; the first drop is at 2 s, the close 10 s later
    # (12 s), seen after that round's sleep.
    assert loop_time() - start == 13
    assert gateway.client(client) is None
    assert gateway.totals.messages_dropped == 11
    assert not slow.aborted
    await asyncio.sleep(1)
    assert slow.aborted  # the close frame never went out: the connection was aborted


@pytest.mark.looptime
async def test_the_1013_close_says_why() -> None:
    gateway = manager(queue_size=1, saturation_close_s=5)
    slow = FakeSocket()
    slow.reading.clear()
    client = gateway.connect(slow)
    gateway.subscribe(client, "signals")
    await settle()  # the writer takes "connected" and blocks sending it
    for _ in range(8):
        gateway.broadcast("signals", {"type": "signal"})
        await asyncio.sleep(1)
    # Queued at 0 s; one drop a second from 1 s; at 6 s the first drop is 5 s old: closed.
    assert slow.closed == (
        1013,
        "send queue overflowed for 5.0 s (6 messages dropped): read faster or subscribe to "
        "fewer tickers",
    )


async def test_a_client_that_catches_up_is_not_closed() -> None:
    gateway = manager(queue_size=1, saturation_close_s=0.0001)
    socket = FakeSocket()
    client = gateway.connect(socket)
    await settle()
    gateway.subscribe(client, "signals")
    for _ in range(5):
        gateway.broadcast("signals", {"type": "signal"})
        gateway.broadcast("signals", {"type": "signal"})  # one drop each round
        await settle()  # ...and then it empties its queue
    assert (gateway.totals.messages_dropped, gateway.totals.closed_saturated) == (5, 0)
    assert gateway.client(client) is not None


async def test_close_sends_the_code_and_reason_and_forgets_the_client() -> None:
    gateway = manager()
    socket = FakeSocket()
    client = gateway.connect(socket)
    gateway.subscribe(client, "005930")
    await gateway.close(client, 1001, "bye")
    assert socket.closed == (1001, "bye")
    assert (len(gateway), gateway.topics()) == (0, {})


async def test_a_failed_send_forgets_the_client() -> None:
    gateway = manager()
    socket = FakeSocket()
    socket.fail_sends = True
    client = gateway.connect(socket)
    gateway.subscribe(client, "005930")
    await settle()
    assert gateway.client(client) is None
    assert (gateway.topics(), gateway.totals.send_failures) == ({}, 1)
    # Dropped, not left open and silent: the client sees it and can reconnect.
    assert socket.aborted


async def test_close_all_closes_every_client_with_going_away() -> None:
    gateway = manager()
    sockets = [FakeSocket() for _ in range(3)]
    for socket in sockets:
        gateway.connect(socket)
    await gateway.close_all()
    assert [s.closed for s in sockets] == [(1001, "gateway shutting down")] * 3
    assert len(gateway) == 0


async def test_a_failing_topic_listener_does_not_break_subscribing() -> None:
    gateway = manager()

    def broken(topic: str, active: bool) -> None:
        raise RuntimeError("listener bug")

    gateway.add_topic_listener(broken)
    client = gateway.connect(FakeSocket())
    assert gateway.subscribe(client, "005930") is True
    assert gateway.topics() == {"005930": 1}
