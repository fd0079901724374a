"""The system's feed client in Kiwoom's dialect against the mock world of the Kiwoom profile,
over real loopback sockets: LOGIN with the token the Kiwoom client holds, REG, REAL trades
that agree with the broker's REST quote, PING echoed, and, after the feed closes the
connection, a reconnect that logs in again, registers again and resyncs from REST. A token
the broker expired meanwhile is refused at LOGIN (8005); the client gets a fresh one.

Under ``looptime`` the clocks run on virtual time.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import httpx
import pytest

from mocks.broker import BrokerConfig
from mocks.clock import KST
from mocks.feed import FeedConfig
from mocks.world import World, serve_world
from system.broker.kiwoom import KiwoomClient, KiwoomSettings
from system.market import KIWOOM, FeedClient, FeedSettings, PriceUpdate, quote_resync

pytestmark = pytest.mark.looptime

SEED = 11
OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)
PATH = "/api/dostk/websocket"
APPKEY = "kwfeedc" + "a" * 36
SECRETKEY = "kwsecret" + "s" * 35
WAIT_S = 30.0


def world() -> AbstractAsyncContextManager[World]:
    # Served inside the test, not by a fixture: the mocks must share the test's virtual clock.
    return serve_world(
        BrokerConfig(api="kiwoom", seed=SEED),
        FeedConfig(seed=SEED, ping_interval_s=5),
        wall_origin=OPEN,
    )


async def next_update(updates: asyncio.Queue[PriceUpdate], source: str) -> PriceUpdate:
    async with asyncio.timeout(WAIT_S):
        while True:
            update = await updates.get()
            if update.source == source:
                return update


async def test_the_feed_client_reads_kiwoom_realtime_and_recovers_a_closed_connection() -> None:
    updates: asyncio.Queue[PriceUpdate] = asyncio.Queue()
    async with world() as mocks, KiwoomClient(settings(mocks), rng=random.Random(1)) as broker:
        feed = FeedClient(
            FeedSettings(url=mocks.feed.ws_url + PATH, backoff_base_s=0.5, backoff_max_s=1.0),
            credential=broker.tokens.get,
            resync=quote_resync(broker.get_price),
            dialect=KIWOOM,
            rng=random.Random(2),
        )
        feed.add_listener(updates.put_nowait)
        async with feed:
            await feed.subscribe("005930", book=True)  # Kiwoom's dialect reads no books
            live = await next_update(updates, "feed")
            assert live.code == "005930"
            # The feed and the broker show one market: the quote right after agrees.
            quote = await broker.get_price("005930")
            assert abs(quote.price - live.price) <= 5 * quote.tick
            assert feed.status().state == "live"
            assert feed.status().subscriptions == ("005930",)
            metrics = feed.metrics()
            assert metrics["feed_subscriptions"] == 1  # trades only
            assert metrics["feed_subscriptions_active"] == 1
            assert metrics["feed_malformed_frames"] == 0

            # Heartbeats every 5 s come back: the feed's journal marks them echoed.
            await asyncio.sleep(12)
            assert feed.metrics()["feed_pingpongs"] >= 2
            async with httpx.AsyncClient(base_url=mocks.feed.url) as http:
                entries = (await http.get("/_squall/journal")).json()["entries"]
            assert sum(e.get("outcome") == "echoed" for e in entries) >= 2

            # The broker retires every token and the feed closes the connection: the client
            # reconnects, its LOGIN with the old token is refused, it gets a new token,
            # registers again and resyncs from REST.
            async with httpx.AsyncClient(base_url=mocks.broker.url) as http:
                assert (await http.post("/_squall/broker/tokens/expire")).status_code == 200
                rule = {
                    "what": {"kind": "close", "code": 4001, "reason": "maintenance"},
                    "where": {"event": "frame", "tr_id": "0B"},
                    "when": {"first": 1},
                }
                async with httpx.AsyncClient(base_url=mocks.feed.url) as feed_http:
                    posted = await feed_http.post("/_squall/faults", json=rule)
                    assert posted.status_code == 201, posted.text
                    rest = await next_update(updates, "rest")
            assert rest.code == "005930"
            await next_update(updates, "feed")
            status = feed.status()
            assert status.state == "live"
            assert status.reconnects >= 2  # the close, then the refused LOGIN
            assert feed.metrics()["feed_sessions_refused"] >= 1
            assert feed.metrics()["feed_subscriptions_active"] == 1


def settings(mocks: World) -> KiwoomSettings:
    return KiwoomSettings(base_url=mocks.broker.url, appkey=APPKEY, secretkey=SECRETKEY)
