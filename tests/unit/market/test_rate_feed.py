"""The rate feed client on virtual time, against an in-memory venue: subscribe, quotes to
the listeners, malformed messages dropped and counted, refusals, stalls and reconnects."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from system.market import FeedUnavailable, RateFeedClient, RateQuote
from system.market.settings import RateFeedSettings
from tests.unit.market.conftest import FakeConnection, FakeServer, close_to, now, seeded_delays

pytestmark = pytest.mark.looptime

URL = "ws://venue.test/v2"
PAIRS = ("USD/KRW", "JPY/KRW", "EUR/KRW")


def ticker(symbol: str, bid: float, ask: float, kind: str = "update") -> str:
    data = {"symbol": symbol, "bid": bid, "ask": ask, "last": (bid + ask) / 2}
    return json.dumps({"channel": "ticker", "type": kind, "data": [data]})


HEARTBEAT = '{"channel":"heartbeat"}'


async def say(connection: FakeConnection, *texts: str) -> None:
    """The venue sends ``texts``; returns once the client has read them all."""
    connection.push(*texts)
    await connection.delivered()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., tuple[RateFeedClient, FakeServer]]]:
    """Rate feed clients on a fake venue (the KIS tests' fake server: it leaves the rate
    feed's requests unanswered), with a seeded rng; closed after the test."""
    clients: list[RateFeedClient] = []

    def build(**overrides: Any) -> tuple[RateFeedClient, FakeServer]:
        venue = FakeServer()
        settings = RateFeedSettings(
            url=URL,
            pairs=PAIRS,
            **{"stall_after_s": 5.0, "backoff_base_s": 1.0, "backoff_max_s": 8.0, **overrides},
        )
        client = RateFeedClient(settings, connect=venue.connect, rng=random.Random(7))
        clients.append(client)
        return client, venue

    yield build
    for client in clients:
        await client.aclose()


async def test_it_subscribes_every_pair_and_gives_each_quote_to_the_listeners(
    make_client: Callable[..., tuple[RateFeedClient, FakeServer]],
) -> None:
    client, venue = make_client()
    heard: list[RateQuote] = []
    client.add_listener(heard.append)
    async with client:
        connection = await venue.connection(1)
        assert venue.urls == [URL]
        assert connection.messages() == [
            {
                "method": "subscribe",
                "params": {
                    "channel": "ticker",
                    "symbol": list(PAIRS),
                    "event_trigger": "bbo",
                    "snapshot": True,
                },
            }
        ]
        await say(connection, ticker("USD/KRW", 1380.1, 1380.5, "snapshot"))
        await asyncio.sleep(0.25)
        await say(connection, ticker("EUR/KRW", 1500.0, 1500.6), ticker("GBP/KRW", 1.0, 1.1))
        assert [(q.pair, q.bid, q.ask) for q in heard] == [
            ("USD/KRW", 1380.1, 1380.5),
            ("EUR/KRW", 1500.0, 1500.6),
        ]
        assert heard[1].at == close_to(heard[0].at + 0.25)
        assert client.latest("EUR/KRW") == heard[1]
        assert client.latest("GBP/KRW") is None  # not a pair it follows
        metrics = client.metrics()
        assert (metrics["rates_quotes"], metrics["rates_messages"]) == (2, 3)
        assert (metrics["rates_state"], metrics["rates_pairs"]) == (0, 3)
        assert client.status().subscriptions == PAIRS


async def test_malformed_messages_are_dropped_counted_and_reading_goes_on(
    make_client: Callable[..., tuple[RateFeedClient, FakeServer]],
) -> None:
    client, venue = make_client()
    heard: list[RateQuote] = []
    client.add_listener(heard.append)
    async with client:
        connection = await venue.connection(1)
        await say(
            connection,
            '{"channel":"ticker","type":"update","data":[{"symbol":"USD/KRW","bid":13',
            "0|H0STCNT0|001|005930",
            ticker("USD/KRW", 1380.5, 1380.1),  # crossed
            json.dumps(
                {
                    "channel": "ticker",
                    "type": "update",
                    "data": [
                        {"symbol": "JPY/KRW", "bid": 9.19, "ask": 9.2},
                        {"symbol": "EUR/KRW", "bid": "1500", "ask": 1500.6},
                    ],
                }
            ),
            ticker("JPY/KRW", 9.19, 9.2),
        )
        # The half-good message is dropped whole: JPY/KRW came once, from the last one.
        assert [(q.pair, q.bid) for q in heard] == [("JPY/KRW", 9.19)]
        assert client.metrics()["rates_malformed_messages"] == 4
        assert client.metrics()["rates_state"] == 0
        assert len(venue.connections) == 1


async def test_a_refused_pair_is_counted_and_shown(
    make_client: Callable[..., tuple[RateFeedClient, FakeServer]],
) -> None:
    client, venue = make_client()
    async with client:
        connection = await venue.connection(1)
        refused = {
            "method": "subscribe",
            "error": "Currency pair not supported EUR/KRW",
            "success": False,
            "symbol": "EUR/KRW",
        }
        ok = {"method": "subscribe", "result": {"channel": "ticker", "symbol": "USD/KRW"}}
        await say(connection, json.dumps(refused), json.dumps({**ok, "success": True}))
        assert client.metrics()["rates_pairs_refused"] == 1
        status = client.status()
        assert status.refused == (("EUR/KRW", "Currency pair not supported EUR/KRW"),)
        assert "EUR/KRW refused" in status.detail


async def test_heartbeats_keep_a_quiet_connection_and_silence_replaces_it(
    make_client: Callable[..., tuple[RateFeedClient, FakeServer]],
) -> None:
    client, venue = make_client()
    async with client:
        first = await venue.connection(1)
        started = now()
        for _ in range(8):
            await asyncio.sleep(1)
            await say(first, HEARTBEAT)
        assert client.metrics()["rates_heartbeats"] == 8
        assert len(venue.connections) == 1
        second = await venue.connection(2)  # silent for stall_after_s: dropped, redialled
        assert first.closed_by_client
        assert venue.attempts[1] == close_to(started + 8 + 5 + seeded_delays(7, 1)[0])
        metrics = client.metrics()
        assert (metrics["rates_stalls"], metrics["rates_reconnects"]) == (1, 1)
        assert second.sent == first.sent  # subscribed again


async def test_failed_connects_back_off_doubling_until_one_works(
    make_client: Callable[..., tuple[RateFeedClient, FakeServer]],
) -> None:
    client, venue = make_client()
    venue.failures = [FeedUnavailable("refused") for _ in range(3)]
    async with client:
        connection = await venue.connection(1)
        gaps = [b - a for a, b in zip(venue.attempts, venue.attempts[1:], strict=False)]
        assert gaps == [close_to(d) for d in seeded_delays(7, 3)]
        metrics = client.metrics()
        assert (metrics["rates_connect_attempts"], metrics["rates_connect_failures"]) == (4, 3)
        await say(connection, ticker("USD/KRW", 1380.1, 1380.5))
        # A quote proves the connection: the next loss backs off from the base again.
        connection.drop()
        lost_at = now()
        await venue.connection(2)
        assert venue.attempts[-1] - lost_at <= 1.0


async def test_a_listener_that_raises_is_counted_and_the_others_still_hear(
    make_client: Callable[..., tuple[RateFeedClient, FakeServer]],
) -> None:
    client, venue = make_client()
    heard: list[RateQuote] = []

    def broken(quote: RateQuote) -> None:
        raise RuntimeError("consumer bug")

    client.add_listener(broken)
    client.add_listener(heard.append)
    async with client:
        connection = await venue.connection(1)
        await say(connection, ticker("USD/KRW", 1380.1, 1380.5))
        assert len(heard) == 1
        assert client.metrics()["rates_listener_errors"] == 1
    assert client.metrics()["rates_state"] == 4  # stopped
