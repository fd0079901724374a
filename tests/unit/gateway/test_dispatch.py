"""MessageDispatcher: every client message gets its answer; a bad one an error, and the
connection goes on."""

from __future__ import annotations

import json

import pytest

from system.broker.clock import loop_time
from system.gateway import Gateway
from tests.unit.gateway.fakes import FakeFeed, FakeSocket, settle

pytestmark = pytest.mark.looptime  # times compared exactly


def connect(gateway: Gateway) -> tuple[str, FakeSocket]:
    socket = FakeSocket()
    return gateway.manager.connect(socket), socket


def feed_of(gateway: Gateway) -> FakeFeed:
    assert isinstance(gateway.feed, FakeFeed)
    return gateway.feed


async def test_subscribe_is_acknowledged_then_the_latest_price_follows(gateway: Gateway) -> None:
    feed_of(gateway).prices["005930"] = feed_of(gateway).emit("005930", 80200)
    client, socket = connect(gateway)
    gateway.dispatcher.handle(client, '{"type":"subscribe","ticker":"005930"}')
    await settle()
    assert [m["type"] for m in socket.messages()] == ["connected", "subscribed", "price_update"]
    assert socket.messages("subscribed") == [{"type": "subscribed", "ticker": "005930"}]
    assert socket.messages("price_update")[0]["data"]["price"] == 80200


async def test_errors_leave_the_connection_receiving_prices(gateway: Gateway) -> None:
    client, socket = connect(gateway)
    for text in [
        "{not json",
        '{"type":"subscribe_all"}',
        '{"type":"subscribe"}',
        json.dumps({"type": "subscribe", "ticker": "0" * 300}),
        '{"type":"subscribe","ticker":"5930"}',
    ]:
        gateway.dispatcher.handle(client, text)
    gateway.dispatcher.handle(client, '{"type":"subscribe","ticker":"005930"}')
    await settle()
    feed_of(gateway).emit("005930", 80300)
    await settle()
    assert [m["code"] for m in socket.messages("error")] == [
        "malformed_json",
        "unknown_type",
        "missing_field",
        "message_too_large",
        "invalid_ticker",
    ]
    assert [m["data"]["price"] for m in socket.messages("price_update")] == [80300]
    assert gateway.dispatcher.errors_sent == 5


async def test_unsubscribe_is_acknowledged_even_when_not_subscribed(gateway: Gateway) -> None:
    client, socket = connect(gateway)
    gateway.dispatcher.handle(client, '{"type":"unsubscribe","topic":"signals"}')
    await settle()
    assert socket.messages("unsubscribed") == [{"type": "unsubscribed", "topic": "signals"}]


async def test_subscribing_to_signals_replays_recent_ones_once(gateway: Gateway) -> None:
    gateway.signals.publish({"kind": "vcp", "code": "005930"})
    client, socket = connect(gateway)
    gateway.dispatcher.handle(client, '{"type":"subscribe","topic":"signals"}')
    gateway.dispatcher.handle(client, '{"type":"subscribe","topic":"signals"}')
    await settle()
    assert [m["type"] for m in socket.messages()] == [
        "connected",
        "subscribed",
        "signal",
        "subscribed",
    ]


async def test_a_pong_is_recorded_and_a_ping_answered(gateway: Gateway) -> None:
    client, socket = connect(gateway)
    gateway.dispatcher.handle(client, '{"type":"pong","ts":1.0}')
    gateway.dispatcher.handle(client, '{"type":"ping"}')
    await settle()
    assert gateway.heartbeat.last_seen(client) == loop_time()
    assert gateway.heartbeat.pongs_received == 1
    assert socket.messages("pong") == [{"type": "pong", "ts": loop_time()}]
