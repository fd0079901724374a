"""Kiwoom's realtime WebSocket on the mock feed, over real loopback sockets, logged in with
a token the Kiwoom broker profile issued over HTTP: LOGIN, REG → REAL values from the seeded
market, REMOVE, PING both ways, a feed fault rule, the journal.

Under ``looptime`` the clocks run on virtual time. The wire is read by hand with
``websockets``: the tests speak Kiwoom's protocol, not any client's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from mocks.broker import BrokerConfig, create_app
from mocks.clock import KST
from mocks.feed import FeedConfig, create_feed_app
from mocks.market import Market
from mocks.server import serve

pytestmark = pytest.mark.looptime

SEED = 11
OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)
PATH = "/api/dostk/websocket"
APPKEY = "kwinteg" + "a" * 36
SECRETKEY = "kwsecret" + "s" * 35


@dataclass
class Mocks:
    broker: str  # base URLs
    feed: str
    ws: str
    token: str


@contextlib.asynccontextmanager
async def mocks() -> AsyncIterator[Mocks]:
    broker_app = create_app(BrokerConfig(api="kiwoom", seed=SEED), wall_origin=OPEN)
    feed_app = create_feed_app(
        FeedConfig(seed=SEED, ping_interval_s=5),
        wall_origin=OPEN,
        tokens=broker_app.state.broker.tokens,
    )
    async with (
        serve(broker_app) as broker,
        serve(feed_app, ws_ping_interval=None) as feed,
        httpx.AsyncClient(base_url=broker.url) as http,
    ):
        body = {"grant_type": "client_credentials", "appkey": APPKEY, "secretkey": SECRETKEY}
        answer = (await http.post("/oauth2/token", json=body)).json()
        assert answer["return_code"] == 0, answer
        yield Mocks(broker.url, feed.url, feed.ws_url + PATH, answer["token"])


def reg(*items: str, trnm: str = "REG", refresh: str = "1") -> str:
    data = [{"item": list(items), "type": ["0B"]}]
    return json.dumps({"trnm": trnm, "grp_no": "1", "refresh": refresh, "data": data})


async def receive(ws: ClientConnection, within: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(within):
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def next_not_ping(ws: ClientConnection, within: float = 10) -> dict[str, Any]:
    while True:
        message = await receive(ws, within)
        if message["trnm"] != "PING":
            return message
        await ws.send(json.dumps(message))


async def login(ws: ClientConnection, token: str) -> dict[str, Any]:
    await ws.send(json.dumps({"trnm": "LOGIN", "token": token}))
    return await next_not_ping(ws)


async def journal(feed: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=feed) as http:
        entries: list[dict[str, Any]] = (await http.get("/_squall/journal")).json()["entries"]
        return entries


async def test_an_issued_token_logs_in_and_a_bad_one_gets_8005_and_the_close() -> None:
    async with mocks() as m:
        async with connect(m.ws) as ws:
            early = json.loads(reg("005930"))
            await ws.send(json.dumps(early))
            refused = await next_not_ping(ws)
            assert (refused["trnm"], refused["return_code"]) == ("REG", 9001)
            ok = await login(ws, m.token)
            assert (ok["trnm"], ok["return_code"]) == ("LOGIN", 0)
        async with connect(m.ws) as ws:
            bad = await login(ws, m.token + "x")
            assert bad == {
                "trnm": "LOGIN",
                "return_code": 8005,
                "return_msg": "Token이 유효하지 않습니다",
            }
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
        entries = await journal(m.feed)
        assert m.token not in json.dumps(entries)  # fingerprinted, never the token


async def test_reg_sends_the_markets_ticks_and_remove_stops_them() -> None:
    market = Market(SEED)
    async with mocks() as m, connect(m.ws) as ws:
        await login(ws, m.token)
        await ws.send(reg("005930", "000660"))
        ack = await next_not_ping(ws)
        assert ack == {"trnm": "REG", "return_code": 0, "return_msg": ""}
        seen: dict[str, int] = {}
        while len(seen) < 2 or min(seen.values()) < 3:
            message = await next_not_ping(ws)
            assert message["trnm"] == "REAL"
            (entry,) = message["data"]
            assert (entry["type"], entry["name"]) == ("0B", "주식체결")
            values = entry["values"]
            hour = values["20"]
            step = int(hour[2:4]) * 60 + int(hour[4:6])  # 09:MM:SS from a 09:00 origin
            tick = market.tick(entry["item"], step)
            base = market.instrument(entry["item"]).base_price
            sign = "+" if tick.price > base else "-" if tick.price < base else ""
            assert values["10"] == f"{sign}{tick.price}"  # signed against the previous close
            assert values["13"] == str(tick.volume)
            seen[entry["item"]] = seen.get(entry["item"], 0) + 1
        await ws.send(reg("005930", trnm="REMOVE"))
        while (message := await next_not_ping(ws))["trnm"] == "REAL":
            pass  # messages sent before the REMOVE was read
        assert (message["trnm"], message["return_code"]) == ("REMOVE", 0)
        after = [await next_not_ping(ws) for _ in range(4)]
        assert {m["data"][0]["item"] for m in after} == {"000660"}
        await ws.send(reg("999999"))
        while (message := await next_not_ping(ws))["trnm"] == "REAL":
            pass
        assert (message["trnm"], message["return_code"]) == ("REG", 1902)
        frames = [e for e in await journal(m.feed) if e["kind"] == "frame"]
    assert frames
    assert {(e["tr_id"], e["tr_key"]) for e in frames} == {("0B", "005930"), ("0B", "000660")}


async def test_the_server_pings_and_echoes_a_clients_ping() -> None:
    async with mocks() as m, connect(m.ws) as ws:
        await login(ws, m.token)
        ping = await receive(ws, within=10)  # every 5 s (FeedConfig.ping_interval_s)
        assert ping == {"trnm": "PING"}
        await ws.send(json.dumps(ping))  # the echo, as the client must
        await asyncio.sleep(0.5)
        mine = '{"trnm":"PING","note":"mine"}'
        await ws.send(mine)
        assert await ws.recv() == mine
        entries = await journal(m.feed)
    heartbeats = [e for e in entries if e["kind"] == "pingpong" and e.get("tr_id") == "PING"]
    assert any(e.get("outcome") == "echoed" for e in heartbeats)
    assert any(e.get("outcome") == "echo" for e in heartbeats)


async def test_a_feed_close_rule_applies_to_kiwoom_connections() -> None:
    async with mocks() as m, connect(m.ws) as ws:
        await login(ws, m.token)
        rule = {
            "what": {"kind": "close", "code": 4001, "reason": "maintenance"},
            "where": {"event": "frame", "tr_id": "0B", "tr_key": "005930"},
            "when": {"first": 1},
        }
        async with httpx.AsyncClient(base_url=m.feed) as http:
            assert (await http.post("/_squall/faults", json=rule)).status_code == 201
        await ws.send(reg("005930"))
        assert (await next_not_ping(ws))["return_code"] == 0
        # The first frame fires the close instead of going out: no REAL before it.
        with pytest.raises(ConnectionClosed) as closed:
            await next_not_ping(ws)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "maintenance")


async def test_a_world_of_the_kiwoom_profile_logs_its_broker_tokens_into_its_feed() -> None:
    from mocks.world import serve_world

    async with serve_world(BrokerConfig(api="kiwoom", seed=SEED)) as world:
        async with httpx.AsyncClient(base_url=world.broker.url) as http:
            body = {"grant_type": "client_credentials", "appkey": APPKEY, "secretkey": SECRETKEY}
            token = (await http.post("/oauth2/token", json=body)).json()["token"]
        async with connect(world.feed.ws_url + PATH) as ws:
            assert (await login(ws, token))["return_code"] == 0
        async with connect(world.feed.ws_url + PATH) as ws:
            # A token this world's broker never issued does not log in.
            assert (await login(ws, token[::-1]))["return_code"] == 8005
