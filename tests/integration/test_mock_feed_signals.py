"""The seed's extras on the mock feed, over real loopback sockets: public ``/health`` and
``/stats``, and the signals channel at ``/ws`` (prices, VCP and closing-bet signals, drawn
by probability or cued from the control plane).

Under ``looptime`` the feed's clock is virtual: the default two-second rounds of minutes of
feed run in a moment, and the messages' times are exact. The wire is read by hand with
``websockets``: the tests speak the seed's protocol, not any client's code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from mocks.clock import KST
from mocks.control import TOKEN_HEADER
from mocks.feed import FeedConfig, serve_feed
from mocks.market import Market

pytestmark = pytest.mark.looptime

SEED = 21
OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)
KEY = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"  # a KIS approval key (UUID-shaped)
CONTROL_TOKEN = "ctl-" + "t" * 28
QUIET = {"vcp_probability": 0.0, "closing_bet_probability": 0.0}


@dataclass
class Feed:
    url: str  # http://host:port
    ws: str  # ws://host:port/ws
    http: httpx.AsyncClient


@asynccontextmanager
async def feed(control_token: str | None = None, **config: Any) -> AsyncIterator[Feed]:
    settings = {"seed": SEED, **config}
    async with (
        serve_feed(FeedConfig(**settings), wall_origin=OPEN, control_token=control_token) as s,
        httpx.AsyncClient(base_url=s.url) as http,
    ):
        yield Feed(s.url, s.ws_url + "/ws", http)


async def receive(ws: ClientConnection, within: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(within):
        text = await ws.recv()
    assert isinstance(text, str)
    message: dict[str, Any] = json.loads(text)
    return message


async def ask(ws: ClientConnection, message: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """Send ``message`` and return the next answer (prices and signals skipped)."""
    await ws.send(message if isinstance(message, str | bytes) else json.dumps(message))
    while (answer := await receive(ws))["type"] in ("price", "signal"):
        pass
    return answer


async def subscribe(ws: ClientConnection, ticker: str) -> None:
    answer = await ask(ws, {"type": "subscribe", "ticker": ticker})
    assert answer == {"type": "subscribed", "ticker": ticker}


async def stream(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await receive(ws) for _ in range(count)]


def seconds(hhmmss: str) -> int:
    """Seconds after 09:00:00 of a message's time (the market step)."""
    return (int(hhmmss[:2]) - 9) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:])


async def stats(f: Feed) -> dict[str, Any]:
    answer = await f.http.get("/stats")
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


async def signals_open(f: Feed, expected: int) -> None:
    """Wait (briefly) for /stats to count ``expected`` open signals connections."""
    for _ in range(100):
        if (await stats(f))["channels"]["signals"]["connections"] == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"/stats never counted {expected} signals connection(s)")


# -- /health and /stats ----------------------------------------------------------------


async def test_health_is_public_and_ok_even_with_a_control_token() -> None:
    async with feed(control_token=CONTROL_TOKEN) as f:
        health = await f.http.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert (await f.http.get("/stats")).status_code == 200
        # The control plane beside them still wants the token.
        assert (await f.http.get("/_squall/feed/connections")).status_code == 403


async def test_stats_count_connections_subscriptions_and_messages_while_open() -> None:
    async with feed(**QUIET) as f:
        before = await stats(f)
        assert before["connections"] == 0
        assert set(before["channels"]) == {"kis", "kiwoom", "fx", "signals"}
        assert before["channels"]["kiwoom"]["paths"] == ["/api/dostk/websocket"]
        async with connect(f.ws) as ws, connect(f.url.replace("http", "ws") + "/tryitout") as kis:
            await subscribe(ws, "005930")
            await subscribe(ws, "000660")
            subscribe_kis = {
                "header": {
                    "approval_key": KEY,
                    "custtype": "P",
                    "tr_type": "1",
                    "content-type": "utf-8",
                },
                "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
            }
            await kis.send(json.dumps(subscribe_kis))
            assert json.loads(await kis.recv())["body"]["msg_cd"] == "OPSP0000"
            await stream(ws, 4)  # two rounds of two prices
            now = await stats(f)
            signals = now["channels"]["signals"]
            assert (signals["connections"], signals["subscriptions"]) == (1, 2)
            assert signals["messages_received"] == 2
            assert signals["messages_sent"] >= 6  # 2 answers and 4 prices, at least
            kis_counts = now["channels"]["kis"]
            assert (kis_counts["connections"], kis_counts["subscriptions"]) == (1, 1)
            assert now["channels"]["fx"]["connections"] == 0
            assert (now["connections"], now["subscriptions"]) == (2, 3)
            assert now["uptime_s"] >= 4.0
            assert now["step"] == int(now["uptime_s"])  # one market step a second
            text = (await f.http.get("/stats")).text
            assert KEY not in text
            assert "sha256:" not in text  # not even a fingerprint
        await signals_open(f, 0)
        after = await stats(f)
        assert after["channels"]["signals"]["subscriptions"] == 0
        assert after["channels"]["signals"]["messages_sent"] >= signals["messages_sent"]


async def test_uptime_runs_on_the_feeds_clock_and_a_reset_restarts_it() -> None:
    async with feed() as f:
        await asyncio.sleep(90)  # virtual
        first = await stats(f)
        assert 90 <= first["uptime_s"] < 91
        assert first["step"] == 90
        assert (await f.http.post("/_squall/reset")).status_code == 200
        again = await stats(f)
        assert again["uptime_s"] < 1
        assert again["messages_sent"] == 0


# -- the signals channel ---------------------------------------------------------------


async def test_prices_arrive_every_interval_from_the_feeds_market() -> None:
    market = Market(SEED)
    async with feed(**QUIET) as f, connect(f.ws) as ws:
        await subscribe(ws, "005930")
        prices = await stream(ws, 8)
        assert {m["type"] for m in prices} == {"price"}  # probability 0: no signal
        times = [seconds(m["time"]) for m in prices]
        assert [b - a for a, b in itertools.pairwise(times)] == [2] * 7
        for message in prices:
            tick = market.tick("005930", seconds(message["time"]))
            base = market.instrument("005930").base_price
            assert message == {
                "type": "price",
                "ticker": "005930",
                "price": tick.price,
                "change": tick.price - base,
                "change_rate": round((tick.price - base) / base * 100, 2),
                "volume": tick.volume,
                "time": message["time"],
            }


async def test_a_short_interval_is_honoured() -> None:
    async with feed(signal_interval_s=0.25, **QUIET) as f, connect(f.ws) as ws:
        await subscribe(ws, "000660")
        loop = asyncio.get_running_loop()
        start = loop.time()
        await stream(ws, 12)
        assert 2.75 <= loop.time() - start <= 3.25  # 12 rounds of 0.25 s (virtual time)


async def test_probability_one_sends_both_signals_every_round() -> None:
    always = {"vcp_probability": 1.0, "closing_bet_probability": 1.0}
    async with feed(**always) as f, connect(f.ws) as ws:
        await subscribe(ws, "005930")
        rounds = await stream(ws, 3 * 5)
        for n in range(5):
            price, vcp, closing = rounds[3 * n : 3 * n + 3]
            assert price["type"] == "price"
            for message, kind in ((vcp, "vcp"), (closing, "closing_bet")):
                assert (message["type"], message["signal"]) == ("signal", kind)
                assert (message["ticker"], message["price"]) == ("005930", price["price"])
                assert message["time"] == price["time"]
                assert "drawn with probability 1" in message["reason"]


async def test_one_kind_alone() -> None:
    async with feed(vcp_probability=0.0, closing_bet_probability=1.0) as f, connect(f.ws) as ws:
        await subscribe(ws, "005930")
        kinds = [m.get("signal", m["type"]) for m in await stream(ws, 10)]
        assert kinds == ["price", "closing_bet"] * 5


async def sequence(seed: int) -> list[tuple[Any, ...]]:
    half = {"vcp_probability": 0.5, "closing_bet_probability": 0.5}
    async with feed(**{**half, "seed": seed}) as f, connect(f.ws) as ws:
        await subscribe(ws, "005930")
        await subscribe(ws, "035720")
        return [
            (m["type"], m.get("signal"), m["ticker"], m["price"], m["time"])
            for m in await stream(ws, 60)
        ]


async def test_the_same_seed_sends_the_same_prices_and_signals() -> None:
    first = await sequence(SEED)
    assert first == await sequence(SEED)
    assert {kind for _, kind, *_ in first} == {None, "vcp", "closing_bet"}
    other = await sequence(SEED + 1)
    assert [m[:3] for m in other] != [m[:3] for m in first]  # other draws, other prices


async def test_connections_subscribed_to_a_ticker_get_the_same_signals() -> None:
    half = {"vcp_probability": 0.5, "closing_bet_probability": 0.5}
    async with feed(**half) as f, connect(f.ws) as one:
        await subscribe(one, "005930")
        await asyncio.sleep(7)  # the second connects rounds later, mid-round
        async with connect(f.ws) as two:
            await subscribe(two, "005930")
            seen_by_two = await stream(two, 20)
            seen_by_one = await stream(one, 60)
            start = seen_by_one.index(seen_by_two[0])
            assert seen_by_one[start : start + 20] == seen_by_two


async def test_unsubscribe_stops_a_tickers_messages() -> None:
    always = {"vcp_probability": 1.0, "closing_bet_probability": 1.0}
    async with feed(**always) as f, connect(f.ws) as ws:
        await subscribe(ws, "005930")
        await subscribe(ws, "000660")
        answer = await ask(ws, {"type": "unsubscribe", "ticker": "005930"})
        assert answer == {"type": "unsubscribed", "ticker": "005930"}
        assert {m["ticker"] for m in await stream(ws, 12)} == {"000660"}
        again = await ask(ws, {"type": "unsubscribe", "ticker": "005930"})
        assert again == {"type": "unsubscribed", "ticker": "005930"}  # the result is the same


async def test_bad_messages_get_an_error_and_the_connection_stays_usable() -> None:
    async with feed(**QUIET) as f, connect(f.ws) as ws:
        cases: list[tuple[str | bytes, str, str]] = [
            ("hello", "not_json", "send a JSON object"),
            (b"\x00\x01", "not_json", "binary"),
            ('{"type": "subscribe_all"}', "unknown_type", "valid types: subscribe"),
            ('{"type": "subscribe", "ticker": "5930"}', "bad_ticker", "6-digit stock code"),
            ('{"type": "subscribe", "ticker": "999999"}', "unknown_ticker", "listed: 005930"),
            (json.dumps({"type": "ping", "pad": "x" * 5000}), "too_large", "at most 4096"),
        ]
        for text, code, says in cases:
            answer = await ask(ws, text)
            assert (answer["type"], answer["code"]) == ("error", code), text
            assert says in answer["message"]
        assert await ask(ws, {"type": "ping"}) == {"type": "pong"}
        await subscribe(ws, "005930")
        assert (await receive(ws))["type"] == "price"


async def test_the_journal_records_the_channel_without_the_clients_text() -> None:
    always = {"vcp_probability": 1.0, "closing_bet_probability": 0.0}
    async with feed(**always) as f:
        async with connect(f.ws) as ws:
            await ask(ws, '{"type": "secret-ish", "token": "do-not-keep"}')
            await subscribe(ws, "005930")
            await stream(ws, 2)
        await signals_open(f, 0)
        entries = (await f.http.get("/_squall/journal")).json()["entries"]
        assert "do-not-keep" not in json.dumps(entries)
        rows = [(e["kind"], e["tr_id"], e["tr_key"], e["outcome"] or e["code"]) for e in entries]
        assert rows[:7] == [
            ("connect", None, None, None),
            ("message", "signals", None, "invalid"),
            ("ack", "signals", None, "unknown_type"),
            ("message", "signals", "005930", "subscribe"),
            ("ack", "signals", "005930", "subscribed"),
            ("frame", "price", "005930", "sent"),
            ("frame", "vcp", "005930", "sent"),
        ]
        assert entries[4]["meaning"] == "subscribed"  # as KIS's and Kiwoom's acks say it
        assert entries[6]["detail"] == "drawn"
        assert entries[-1]["kind"] == "disconnect"
        assert {e["connection"] for e in entries} == {1}


async def test_a_reset_closes_signals_connections() -> None:
    async with feed(**QUIET) as f, connect(f.ws) as ws:
        await subscribe(ws, "005930")
        assert (await f.http.post("/_squall/reset")).status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            await stream(ws, 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012
        await signals_open(f, 0)


# -- on cue ------------------------------------------------------------------------------


async def test_a_cue_reaches_every_subscriber_of_its_ticker_at_once() -> None:
    async with (
        feed(**QUIET) as f,
        connect(f.ws) as one,
        connect(f.ws) as two,
        connect(f.ws) as other,
    ):
        await subscribe(one, "005930")
        await subscribe(two, "005930")
        await subscribe(other, "000660")
        await asyncio.sleep(10.5)  # mid-round, so the signal can't be a round's
        cue = {"signal": "vcp", "ticker": "005930", "reason": "breakout on volume"}
        answer = await f.http.post("/_squall/feed/signals", json=cue)
        assert answer.status_code == 200
        body = answer.json()
        assert (body["signal"], body["ticker"], body["reached"]) == ("vcp", "005930", 2)
        assert seconds(body["time"]) == 10
        for ws in (one, two):
            backlog = await stream(ws, 6)  # five rounds' prices, then the cue
            assert backlog[-1] == {
                "type": "signal",
                "signal": "vcp",
                "ticker": "005930",
                "price": body["price"],
                "time": body["time"],
                "reason": "breakout on volume",
            }
        assert {m["type"] for m in await stream(other, 8)} == {"price"}
        plain = await f.http.post(
            "/_squall/feed/signals", json={"signal": "closing_bet", "ticker": "000660"}
        )
        assert plain.json()["reached"] == 1
        while (message := await receive(other))["type"] == "price":
            pass
        assert message["signal"] == "closing_bet"
        assert message["reason"] == "simulated closing bet (종가베팅): cued by the control plane"
        nobody = await f.http.post(
            "/_squall/feed/signals", json={"signal": "vcp", "ticker": "035720"}
        )
        assert nobody.json()["reached"] == 0


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"signal": "breakout", "ticker": "005930"}, 422, "'vcp' or 'closing_bet'"),
        ({"ticker": "005930"}, 422, "signal: Field required"),
        ({"signal": "vcp", "ticker": "5930"}, 422, "ticker"),
        ({"signal": "vcp", "ticker": "999999"}, 422, "not listed in the simulated market"),
        ({"signal": "vcp", "ticker": "005930", "extra": 1}, 422, "extra"),
        ("not json", 400, "signal: vcp or closing_bet"),
    ],
)
async def test_a_bad_cue_is_refused_with_what_is_valid(
    body: dict[str, Any] | str, status: int, says: str
) -> None:
    async with feed() as f:
        if isinstance(body, str):
            answer = await f.http.post("/_squall/feed/signals", content=body)
        else:
            answer = await f.http.post("/_squall/feed/signals", json=body)
        assert answer.status_code == status
        assert says in answer.json()["detail"]


async def test_the_cue_needs_the_control_token_when_there_is_one() -> None:
    cue = {"signal": "vcp", "ticker": "005930"}
    async with feed(control_token=CONTROL_TOKEN, **QUIET) as f, connect(f.ws) as ws:
        await subscribe(ws, "005930")
        refused = await f.http.post("/_squall/feed/signals", json=cue)
        assert refused.status_code == 403
        assert TOKEN_HEADER in refused.json()["detail"]
        wrong = await f.http.post("/_squall/feed/signals", json=cue, headers={TOKEN_HEADER: "nope"})
        assert wrong.status_code == 403
        ok = await f.http.post(
            "/_squall/feed/signals", json=cue, headers={TOKEN_HEADER: CONTROL_TOKEN}
        )
        assert (ok.status_code, ok.json()["reached"]) == (200, 1)
        while (message := await receive(ws))["type"] == "price":
            pass
        assert message["signal"] == "vcp"
