"""The FX venue's ticker channel, served beside the KIS feed, over real loopback sockets:
requests answered as Kraken's v2 API answers them, a quote per pair per step, a mispricing
injected through the broker's control plane shown in its window, the journal, a reset;
and the system's rate feed client reading it.

Under ``looptime`` the world's clocks run on virtual time. The wire is read by hand with
``websockets``, except where the system's client is the subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from mocks.broker import BrokerConfig
from mocks.clock import KST
from mocks.fx import PAIR_NAMES, FxMarket
from mocks.world import World, serve_world
from system.market import RateFeedClient, RateFeedSettings, RateQuote

pytestmark = pytest.mark.looptime

SEED = 13
OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)


@contextlib.asynccontextmanager
async def world() -> AsyncIterator[World]:
    async with serve_world(BrokerConfig(seed=SEED), wall_origin=OPEN) as served:
        yield served


def subscribe(*symbols: str, method: str = "subscribe", **params: Any) -> str:
    return json.dumps(
        {
            "method": method,
            "params": {"channel": "ticker", "symbol": list(symbols), **params},
            "req_id": 1,
        }
    )


async def receive(ws: ClientConnection, count: int, within: float = 30) -> list[dict[str, Any]]:
    """The next ``count`` messages other than heartbeats."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while len(messages) < count:
            message = json.loads(await ws.recv())
            if message.get("channel") != "heartbeat":
                messages.append(message)
    return messages


async def drain(ws: ClientConnection) -> None:
    """Read until the connection ends (the venue closes it)."""
    async with asyncio.timeout(10):
        while True:
            await ws.recv()


def quotes_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for m in messages if m.get("channel") == "ticker" for item in m["data"]]


async def test_subscribe_answers_per_symbol_then_a_snapshot_then_an_update_a_second() -> None:
    async with world() as served, connect(served.rates_url) as ws:
        (status,) = await receive(ws, 1)
        assert status["channel"] == "status"
        assert status["data"][0]["system"] == "online"
        await ws.send(subscribe("USD/KRW", "GBP/KRW", event_trigger="bbo"))
        ok, snapshot, refused = await receive(ws, 3)
        assert (ok["method"], ok["success"], ok["result"]["symbol"]) == (
            "subscribe",
            True,
            "USD/KRW",
        )
        assert (snapshot["type"], snapshot["data"][0]["symbol"]) == ("snapshot", "USD/KRW")
        assert refused["success"] is False
        assert refused["error"] == "Currency pair not supported GBP/KRW"
        updates = await receive(ws, 5)
        assert {m["type"] for m in updates} == {"update"}
        # One a step, each the venue's quote at that step, stamped with the step's time.
        fx = FxMarket(SEED)
        for message in updates:
            (item,) = message["data"]
            step = int(item["timestamp"][17:19]) + 60 * int(item["timestamp"][14:16])
            expected = fx.quote("USD/KRW", step)
            assert (item["bid"], item["ask"]) == (expected.bid, expected.ask)


async def test_the_served_quotes_are_consistent_and_a_mispricing_shows_in_its_window() -> None:
    async with world() as served, connect(served.rates_url) as ws:
        await served.broker_control.add_market_event(
            {"kind": "mispricing", "pair": "EUR/JPY", "pct": 1.5, "at": 5, "for": 3}
        )
        await ws.send(subscribe("EUR/KRW", "JPY/KRW", "EUR/JPY"))
        messages = await receive(ws, 1 + 6 + 3 * 10)
        by_step: dict[tuple[str, str], dict[str, Any]] = {}
        for item in quotes_of(messages):
            by_step[(item["symbol"], item["timestamp"])] = item
        stamps = sorted({stamp for _, stamp in by_step})
        edges = {}
        for stamp in stamps:
            legs = [by_step.get((pair, stamp)) for pair in ("EUR/KRW", "EUR/JPY", "JPY/KRW")]
            eur_krw, eur_jpy, jpy_krw = legs
            if eur_krw is None or eur_jpy is None or jpy_krw is None:
                continue
            # KRW -> EUR (buy at the ask) -> JPY (sell at the bid) -> KRW (sell at the bid).
            edges[int(stamp[17:19])] = 1 / eur_krw["ask"] * eur_jpy["bid"] * jpy_krw["bid"]
        assert {second for second, rate in edges.items() if rate > 1.01} == {5, 6, 7}
        assert all(rate < 1 for second, rate in edges.items() if second not in (5, 6, 7))


async def test_bad_requests_are_answered_and_the_connection_stays() -> None:
    async with world() as served, connect(served.rates_url) as ws:
        await receive(ws, 1)
        await ws.send("not json")
        await ws.send('{"method": "add_order", "req_id": 4}')
        await ws.send(subscribe("USD/KRW", method="unsubscribe"))
        await ws.send('{"method": "ping", "req_id": 5}')
        not_json, unknown, not_subscribed, pong = await receive(ws, 4)
        assert (not_json["success"], not_json["error"][:9]) == (False, "Malformed")
        assert (unknown["method"], unknown["req_id"]) == ("add_order", 4)
        assert not_subscribed["error"] == "Subscription Not Found USD/KRW"
        assert (pong["method"], pong["req_id"]) == ("pong", 5)
        await ws.send(subscribe("JPY/KRW"))
        assert [m.get("type") for m in await receive(ws, 3)] == [None, "snapshot", "update"]


async def test_the_journal_shows_the_channel_and_a_reset_drops_its_connections() -> None:
    async with world() as served, connect(served.rates_url) as ws:
        await ws.send(subscribe("USD/JPY"))
        await receive(ws, 4)
        entries = await served.feed_control.journal()
        kinds = [(e.kind, e.tr_id, e.tr_key, e.outcome) for e in entries]
        assert kinds[:4] == [
            ("connect", None, None, None),
            ("message", "ticker", None, "subscribe"),
            ("ack", "ticker", "USD/JPY", None),
            ("frame", "ticker", "USD/JPY", "sent"),
        ]
        assert entries[0].detail == "/v2"
        await served.feed_control.reset()
        with pytest.raises(ConnectionClosed) as closed:
            await drain(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012


async def test_the_systems_rate_feed_client_follows_every_pair_of_the_venue() -> None:
    heard: list[RateQuote] = []
    async with world() as served:
        settings = RateFeedSettings(url=served.rates_url)
        async with RateFeedClient(settings) as client:
            client.add_listener(heard.append)
            await asyncio.sleep(10.5)
            metrics = client.metrics()
        assert {q.pair for q in heard} == set(PAIR_NAMES)
        assert metrics["rates_malformed_messages"] == 0
        assert metrics["rates_pairs_refused"] == 0
        assert metrics["rates_quotes"] == len(heard) >= 6 * 10
        fx = FxMarket(SEED)
        last = client.latest("EUR/USD")
        assert last is not None
        assert (last.bid, last.ask) == (fx.quote("EUR/USD", 10).bid, fx.quote("EUR/USD", 10).ask)
