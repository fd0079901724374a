"""The mock KIS realtime feed over real loopback sockets, with the websockets client.

Servers start inside each test so they share the test's loop: under ``looptime`` minutes of
feed (one step a second, PINGPONG, stalls, restarts) run in a moment. Frames are read here
by hand, not with the system's client: the tests speak the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.protocol import State

from mocks.broker import BrokerConfig
from mocks.clock import KST
from mocks.control_client import FeedControl
from mocks.feed import FeedConfig, serve_feed
from mocks.feed.records import BOOK_COLUMNS, TRADE_COLUMNS
from mocks.market import Market
from mocks.world import serve_world

OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)
KEY = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
OTHER_KEY = "99999999-8888-7777-6666-555555555555"
TRADES, BOOK = "H0STCNT0", "H0STASP0"
WIDTHS = {TRADES: len(TRADE_COLUMNS), BOOK: len(BOOK_COLUMNS)}
APPKEY = "PSfeed" + "f" * 30
APPSECRET = "f" * 180

pytestmark = pytest.mark.looptime


@asynccontextmanager
async def feed(config: FeedConfig | None = None) -> AsyncIterator[tuple[str, FeedControl]]:
    async with (
        serve_feed(config or FeedConfig(), wall_origin=OPEN) as server,
        FeedControl(server.url) as control,
    ):
        yield server.ws_url + "/tryitout", control


def request(tr_key: str = "005930", tr_id: str = TRADES, tr_type: str = "1", key: str = KEY) -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": key,
                "custtype": "P",
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


async def ask(ws: ClientConnection, text: str | bytes) -> dict[str, Any]:
    """Send ``text`` and return the next JSON answer (skipping frames and heartbeats)."""
    await ws.send(text)
    while True:
        message = await recv_text(ws)
        if message.startswith("{") and "PINGPONG" not in message:
            answer: dict[str, Any] = json.loads(message)
            return answer


async def subscribe(ws: ClientConnection, tr_key: str = "005930", **fields: str) -> str:
    """Subscribe and return the ack's msg_cd."""
    code: str = (await ask(ws, request(tr_key, **fields)))["body"]["msg_cd"]
    return code


async def recv_text(ws: ClientConnection, within: float = 30) -> str:
    async with asyncio.timeout(within):
        message = await ws.recv()
    assert isinstance(message, str)
    return message


def parse_frame(text: str) -> tuple[str, list[dict[str, str]]]:
    """(tr_id, records as column dicts) of a data frame, checking count × columns."""
    encrypted, tr_id, count, payload = text.split("|", 3)
    assert encrypted == "0"
    assert len(count) == 3
    fields = payload.split("^")
    width = WIDTHS[tr_id]
    assert len(fields) == int(count) * width, f"{count} records but {len(fields)} fields"
    columns = TRADE_COLUMNS if tr_id == TRADES else BOOK_COLUMNS
    rows = [
        dict(zip(columns, fields[i : i + width], strict=True)) for i in range(0, len(fields), width)
    ]
    return tr_id, rows


async def frames(ws: ClientConnection, count: int, within: float = 30) -> list[str]:
    """The next ``count`` data frames (heartbeats and acks skipped)."""
    found: list[str] = []
    while len(found) < count:
        message = await recv_text(ws, within)
        if message[:2] in ("0|", "1|"):
            found.append(message)
    return found


def trades(texts: list[str]) -> list[dict[str, str]]:
    return [row for text in texts for row in parse_frame(text)[1]]


def step_of(row: dict[str, str]) -> int:
    """The market step a record is of, from its time (09:00:00 + step seconds)."""
    hour = row.get("STCK_CNTG_HOUR") or row["BSOP_HOUR"]
    return (int(hour[:2]) - 9) * 3600 + int(hour[2:4]) * 60 + int(hour[4:])


def continuous(before: dict[str, str], after: dict[str, str]) -> bool:
    """The invariant a client checks: no record missing or repeated between the two."""
    return int(after["ACML_VOL"]) == int(before["ACML_VOL"]) + int(after["CNTG_VOL"])


# -- subscribing -----------------------------------------------------------------------


async def test_subscribe_unsubscribe_and_every_ack_code() -> None:
    async with feed() as (url, control), connect(url) as ws:
        first = await ask(ws, request())
        assert first["header"] == {"tr_id": TRADES, "tr_key": "005930", "encrypt": "N"}
        body = first["body"]
        assert (body["rt_cd"], body["msg_cd"], body["msg1"]) == (
            "0",
            "OPSP0000",
            "SUBSCRIBE SUCCESS",
        )
        assert (len(body["output"]["key"]), len(body["output"]["iv"])) == (32, 16)
        again = await ask(ws, request())
        assert again["body"] == {"rt_cd": "1", "msg_cd": "OPSP0002", "msg1": "ALREADY IN SUBSCRIBE"}
        (frame,) = await frames(ws, 1)
        assert frame.startswith("0|H0STCNT0|001|005930^")
        off = await ask(ws, request(tr_type="2"))
        assert (off["body"]["msg_cd"], off["body"]["msg1"]) == ("OPSP0001", "UNSUBSCRIBE SUCCESS")
        missing = await ask(ws, request(tr_type="2"))
        assert missing["body"] == {
            "rt_cd": "1",
            "msg_cd": "OPSP0003",
            "msg1": "UNSUBSCRIBE ERROR(not found!)",
        }
        with pytest.raises(TimeoutError):  # unsubscribed: no more frames
            await frames(ws, 1, within=5)
        unlisted = await ask(ws, request("123456"))
        assert unlisted["body"]["msg_cd"] == "OPSP9004"
        acks = [(e.tr_key, e.code) for e in await control.journal(kind="ack")]
        assert acks == [
            ("005930", "OPSP0000"),
            ("005930", "OPSP0002"),
            ("005930", "OPSP0001"),
            ("005930", "OPSP0003"),
            ("123456", "OPSP9004"),
        ]


async def test_bad_input_gets_an_error_ack_and_the_connection_survives() -> None:
    async with feed() as (url, control), connect(url) as ws:
        answers = [
            await ask(ws, "{not json"),
            await ask(ws, b"\x00\x01binary"),
            await ask(ws, "x" * 5000),
            await ask(ws, request(tr_id="H0STCNI0")),
            await ask(ws, request(tr_key="59300")),
            await ask(ws, json.dumps({"header": {"approval_key": KEY}, "body": {}})),
            await ask(ws, request(key="not-a-uuid")),
        ]
        assert [a["body"]["msg_cd"] for a in answers] == [
            "OPSP9001",
            "OPSP9001",
            "OPSP9005",
            "OPSP9003",
            "OPSP9004",
            "OPSP9001",
            "OPSP0011",
        ]
        assert answers[3]["header"] == {"tr_id": "H0STCNI0", "tr_key": "005930", "encrypt": "N"}
        assert answers[6]["body"]["msg1"] == "invalid approval : NOT FOUND"
        assert await subscribe(ws) == "OPSP0000"
        assert len(await frames(ws, 2)) == 2
        received = await control.journal(kind="message")
        assert [e.outcome for e in received] == ["invalid"] * 6 + ["subscribe"] * 2
        assert received[1].detail == "binary, 8 bytes"


async def test_the_journal_never_holds_an_approval_key() -> None:
    async with feed() as (url, control), connect(url) as ws:
        await subscribe(ws)
        await ask(ws, request(tr_id="H0XXXXX0"))
        await ask(ws, '{"header": {"approval_key": "' + KEY + '", "custtype": "P"')  # cut short
        await ask(ws, "approval_key: hunter2-secret")
        raw = (await control._http.get("/journal")).text
        assert KEY not in raw
        assert "hunter2-secret" not in raw
        assert "sha256:" in raw


async def test_41_subscriptions_per_session_then_max_subscribe_over() -> None:
    codes = list(Market(0).instruments)
    assert len(codes) == 31
    async with feed() as (url, _), connect(url) as ws:
        answers = [await subscribe(ws, code) for code in codes]
        answers += [await subscribe(ws, code, tr_id=BOOK) for code in codes[:10]]
        assert answers == ["OPSP0000"] * 41
        over = await ask(ws, request(codes[10], tr_id=BOOK))
        assert over["body"] == {"rt_cd": "1", "msg_cd": "OPSP0008", "msg1": "MAX SUBSCRIBE OVER"}
        got = {parse_frame(text)[1][0]["MKSC_SHRN_ISCD"] for text in await frames(ws, 82)}
        assert got == set(codes)


async def test_one_session_per_appkey() -> None:
    async with feed() as (url, control), connect(url) as first:
        assert await subscribe(first) == "OPSP0000"
        async with connect(url) as second:
            refused = await ask(second, request("000660"))
            assert refused["body"] == {
                "rt_cd": "9",
                "msg_cd": "OPSP8996",
                "msg1": "ALREADY IN USE appkey",
            }
            with pytest.raises(ConnectionClosed) as closed:
                await recv_text(second)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1008,
                "ALREADY IN USE appkey",
            )
        async with connect(url) as other_app:
            assert await subscribe(other_app, key=OTHER_KEY) == "OPSP0000"
        assert len(await frames(first, 2)) == 2  # the first session never noticed
        await first.close()
        async with connect(url) as third:
            assert await subscribe(third) == "OPSP0000"
        assert [c["connection"] for c in await control.connections()] == []


async def test_a_dropped_session_can_hold_its_appkey_for_a_while() -> None:
    async with feed(FeedConfig(appkey_release_s=30)) as (url, _):
        async with connect(url) as first:
            assert await subscribe(first) == "OPSP0000"
        closed_at = asyncio.get_running_loop().time()
        async with connect(url) as early:
            assert await subscribe(early) == "OPSP8996"
        await asyncio.sleep(30 - (asyncio.get_running_loop().time() - closed_at) + 0.1)
        async with connect(url) as late:
            assert await subscribe(late) == "OPSP0000"


async def test_root_path_is_served_too() -> None:
    async with feed() as (url, _), connect(url.removesuffix("/tryitout") + "/") as ws:
        assert await subscribe(ws) == "OPSP0000"


# -- frames ----------------------------------------------------------------------------


async def test_frames_parse_into_count_times_46_and_59_fields() -> None:
    async with feed() as (url, _), connect(url) as ws:
        await subscribe(ws)
        await subscribe(ws, "000660", tr_id=BOOK)
        texts = await frames(ws, 6)
        parsed = [parse_frame(text) for text in texts]
        assert sorted({tr_id for tr_id, _ in parsed}) == [BOOK, TRADES]
        for tr_id, rows in parsed:
            assert len(rows) == 1
            assert len(rows[0]) == WIDTHS[tr_id]
        book = next(rows[0] for tr_id, rows in parsed if tr_id == BOOK)
        assert book["MKSC_SHRN_ISCD"] == "000660"
        assert int(book["ASKP1"]) > int(book["BIDP1"])


async def test_multi_record_frames_carry_consecutive_steps() -> None:
    async with feed(FeedConfig(records_per_frame=3)) as (url, _), connect(url) as ws:
        await subscribe(ws)
        texts = await frames(ws, 3)
        assert all(text.startswith("0|H0STCNT0|003|") for text in texts)
        rows = trades(texts)
        assert len(rows) == 9
        steps = [step_of(row) for row in rows]
        assert steps == list(range(steps[0], steps[0] + 9))
        assert all(continuous(a, b) for a, b in itertools.pairwise(rows))


async def test_the_feed_and_the_brokers_rest_quote_agree() -> None:
    async with (
        serve_world(BrokerConfig(seed=7, requests_per_second=1000), wall_origin=OPEN) as world,
        httpx.AsyncClient(base_url=world.broker.url) as http,
    ):
        control = world.feed_control
        credentials = {"grant_type": "client_credentials", "appkey": APPKEY}
        token = await http.post("/oauth2/tokenP", json={**credentials, "appsecret": APPSECRET})
        approval = await http.post("/oauth2/Approval", json={**credentials, "secretkey": APPSECRET})
        key = approval.json()["approval_key"]
        headers = {
            "authorization": f"Bearer {token.json()['access_token']}",
            "appkey": APPKEY,
            "appsecret": APPSECRET,
            "tr_id": "FHKST01010100",
        }
        url = world.feed_url
        async with connect(url) as ws, connect(url) as second:
            assert await subscribe(ws, "035720", key=KEY) == "OPSP0011"  # never issued here
            assert await subscribe(ws, "035720", key=key) == "OPSP0000"
            again = await http.post(
                "/oauth2/Approval", json={**credentials, "secretkey": APPSECRET}
            )
            # Another key of the same app key: still one session per app key.
            assert await subscribe(second, key=again.json()["approval_key"]) == "OPSP8996"
            rows = []
            for _ in range(3):
                (row,) = trades(await frames(ws, 1))
                rows.append(row)
                await asyncio.sleep(0.5)  # mid-step on both clocks
                quote = await http.get(
                    "/uapi/domestic-stock/v1/quotations/inquire-price",
                    params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "035720"},
                    headers=headers,
                )
                output = quote.json()["output"]
                assert (row["STCK_PRPR"], row["ACML_VOL"]) == (
                    output["stck_prpr"],
                    output["acml_vol"],
                )
                assert (row["PRDY_VRSS"], row["PRDY_CTRT"]) == (
                    output["prdy_vrss"],
                    output["prdy_ctrt"],
                )
        sent = await control.journal(kind="frame")
        assert [e.step for e in sent] == [step_of(row) for row in rows]
        acks = await control.journal(kind="ack")
        assert [(e.connection, e.code) for e in acks] == [
            (1, "OPSP0011"),
            (1, "OPSP0000"),
            (2, "OPSP8996"),
        ]


async def test_pingpong_arrives_and_its_echo_is_journaled() -> None:
    async with feed(FeedConfig(ping_interval_s=10)) as (url, control), connect(url) as ws:
        first = await recv_text(ws, within=11)
        assert first == '{"header":{"tr_id":"PINGPONG","datetime":"20250106090010"}}'
        await ws.send(first)
        second = await recv_text(ws, within=11)
        assert json.loads(second)["header"]["datetime"] == "20250106090020"
        await asyncio.sleep(1)
        pings = await control.journal(kind="pingpong")
        assert [(e.detail, e.outcome) for e in pings] == [
            ("20250106090010", "echoed"),
            ("20250106090020", "sent"),
        ]
        assert [round(e.at) for e in pings] == [10, 20]
        echoes = await control.journal(kind="message", tr_id="PINGPONG")
        assert [e.message for e in echoes] == [json.loads(first)]


async def test_the_same_seed_gives_the_same_frames() -> None:
    async def run(seed: int) -> list[str]:
        async with feed(FeedConfig(seed=seed)) as (url, _), connect(url) as ws:
            await subscribe(ws)
            await subscribe(ws, "005930", tr_id=BOOK)
            return await frames(ws, 20)

    first, second, other = await run(3), await run(3), await run(4)
    assert first == second
    assert first != other


async def test_ten_minutes_of_feed_run_on_virtual_time() -> None:
    started = time.perf_counter()
    async with feed() as (url, control), connect(url, ping_interval=None) as ws:
        await subscribe(ws, "000890")
        loop_started = asyncio.get_running_loop().time()
        rows = trades(await frames(ws, 600))
        assert asyncio.get_running_loop().time() - loop_started >= 599
        assert all(continuous(a, b) for a, b in itertools.pairwise(rows))
        assert [step_of(r) for r in rows] == list(range(1, 601))
        assert len(await control.journal(kind="frame")) == 600
    assert time.perf_counter() - started < 120


# -- faults ----------------------------------------------------------------------------


async def started(url: str, ws: ClientConnection, tr_key: str = "005930") -> dict[str, str]:
    """Subscribe ``ws`` and return its first trade record."""
    assert await subscribe(ws, tr_key) == "OPSP0000"
    (row,) = trades(await frames(ws, 1))
    return row


async def test_close_with_a_code() -> None:
    async with feed() as (url, control), connect(url) as ws:
        await started(url, ws)
        await control.add_fault(
            {"what": {"kind": "close", "code": 4001, "reason": "maintenance"}, "when": {"first": 1}}
        )
        with pytest.raises(ConnectionClosedError) as closed:
            await frames(ws, 5)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "maintenance")
        (fault,) = await control.journal(kind="fault")
        assert (fault.fault, fault.code, fault.detail) == ("rule-1:close", "4001", "maintenance")


async def test_reset_is_a_connection_error_without_a_close_frame() -> None:
    async with feed() as (url, control), connect(url) as ws:
        await started(url, ws)
        await control.add_fault({"what": {"kind": "reset"}, "when": {"first": 1}})
        with pytest.raises(ConnectionClosedError) as closed:
            await frames(ws, 5)
        assert closed.value.rcvd is None  # no close frame: the TCP connection was reset
        assert isinstance(closed.value.__cause__, ConnectionResetError)
        (fault,) = await control.journal(kind="fault")
        assert (fault.fault, fault.outcome) == ("rule-1:reset", "reset")


async def test_stall_sends_nothing_while_the_socket_stays_open() -> None:
    async with feed(FeedConfig(ping_interval_s=5)) as (url, control):
        async with connect(url, ping_interval=None) as ws:
            before = await started(url, ws)
            await control.add_fault(
                {"what": {"kind": "stall", "seconds": 30}, "when": {"first": 1}}
            )
            with pytest.raises(TimeoutError):
                await recv_text(ws, within=29)
            assert ws.state is State.OPEN
            pong = await ws.ping()
            with pytest.raises(TimeoutError):  # not even a WebSocket pong
                async with asyncio.timeout(0.5):
                    await asyncio.shield(pong)
            (after,) = trades(await frames(ws, 1, within=5))
            async with asyncio.timeout(1):
                await pong  # answered once the stall is over
            assert step_of(after) >= step_of(before) + 31
            assert not continuous(before, after)  # the stalled steps are a gap
        stall = (await control.journal(kind="fault"))[0]
        assert (stall.fault, stall.detail) == ("rule-1:stall", "stall: 30 s")
        sent = [e for e in await control.journal() if e.kind in ("frame", "pingpong")]
        quiet = [e for e in sent if stall.at < e.at < stall.at + 29.9]
        assert quiet == []


async def test_delay_holds_a_frame_and_everything_behind_it() -> None:
    async with feed() as (url, control), connect(url) as ws:
        first = await started(url, ws)
        await control.add_fault({"what": {"kind": "delay", "seconds": 3}, "when": {"first": 1}})
        rows = trades(await frames(ws, 5))
        assert [step_of(r) for r in rows] == list(range(step_of(first) + 1, step_of(first) + 6))
        assert all(continuous(a, b) for a, b in itertools.pairwise([first, *rows]))
        sent = await control.journal(kind="frame", since=0)
        held = next(e for e in sent if e.outcome == "delayed")
        assert held.step is not None
        assert (held.fault, held.detail) == ("rule-1:delay", "3.000 s")
        assert held.step + 3 <= held.at < held.step + 3.1
        behind = [e for e in sent if e.step in (held.step + 1, held.step + 2)]
        assert [round(e.at - held.at, 1) for e in behind] == [0.0, 0.0]


async def test_duplicate_frames_repeat_accumulated_volume() -> None:
    async with feed() as (url, control), connect(url) as ws:
        first = await started(url, ws)
        await control.add_fault({"what": {"kind": "duplicate"}, "when": {"first": 1}})
        texts = await frames(ws, 4)
        assert texts[0] == texts[1]
        rows = trades(texts)
        assert rows[0]["ACML_VOL"] == rows[1]["ACML_VOL"]
        assert not continuous(rows[0], rows[1])
        assert continuous(first, rows[0])
        assert continuous(rows[1], rows[2])
        outcomes = [e.outcome for e in await control.journal(kind="frame")]
        assert outcomes[1:4] == ["sent", "duplicate", "sent"]


async def test_reorder_sends_a_frame_after_the_next_one() -> None:
    async with feed() as (url, control), connect(url) as ws:
        first = await started(url, ws)
        await control.add_fault({"what": {"kind": "reorder"}, "when": {"first": 1}})
        rows = trades(await frames(ws, 4))
        s = step_of(first)
        assert [step_of(r) for r in rows] == [s + 2, s + 1, s + 3, s + 4]
        assert int(rows[1]["ACML_VOL"]) < int(rows[0]["ACML_VOL"])
        reordered = [e for e in await control.journal(kind="frame") if e.outcome == "reordered"]
        assert [(e.step, e.fault) for e in reordered] == [(s + 1, "rule-1:reorder")]


async def test_gap_loses_a_frame() -> None:
    async with feed() as (url, control), connect(url) as ws:
        first = await started(url, ws)
        await control.add_fault(
            {"where": {"tr_key": "005930"}, "what": {"kind": "gap"}, "when": {"first": 1}}
        )
        rows = trades(await frames(ws, 2))
        assert step_of(rows[0]) == step_of(first) + 2
        assert not continuous(first, rows[0])
        missing = Market(0).tick("005930", step_of(first) + 1).volume - int(first["ACML_VOL"])
        assert int(rows[0]["ACML_VOL"]) == int(first["ACML_VOL"]) + missing + int(
            rows[0]["CNTG_VOL"]
        )
        skipped = [e for e in await control.journal(kind="frame") if e.outcome == "skipped"]
        assert [e.step for e in skipped] == [step_of(first) + 1]


async def test_malformed_replaces_a_frame_with_garbage() -> None:
    async with feed() as (url, control), connect(url) as ws:
        await started(url, ws)
        await control.add_fault({"what": {"kind": "malformed"}, "when": {"first": 1}})
        garbled, good = await frames(ws, 2)
        assert garbled.startswith("0|H0STCNT0|001|005930^")
        with pytest.raises(AssertionError, match="1 records but"):
            parse_frame(garbled)
        parse_frame(good)
        await control.add_fault(
            {"what": {"kind": "malformed", "text": "0|H0STCNT0|0x1|??"}, "when": {"first": 1}}
        )
        assert (await frames(ws, 1)) == ["0|H0STCNT0|0x1|??"]


async def test_reject_refuses_one_code_with_an_error_ack() -> None:
    async with feed() as (url, control), connect(url) as ws:
        await control.add_fault(
            {"where": {"tr_key": "005930"}, "what": {"kind": "reject", "code": "OPSP0008"}}
        )
        refused = await ask(ws, request("005930"))
        assert refused["body"] == {"rt_cd": "1", "msg_cd": "OPSP0008", "msg1": "MAX SUBSCRIBE OVER"}
        assert await subscribe(ws, "000660") == "OPSP0000"
        await control.add_fault({"what": {"kind": "reject"}, "when": {"first": 1}})
        assert (await ask(ws, request("035720")))["body"]["msg1"] == "SUBSCRIBE REJECTED"
        codes = {parse_frame(t)[1][0]["MKSC_SHRN_ISCD"] for t in await frames(ws, 3)}
        assert codes == {"000660"}
        acks = await control.journal(kind="ack")
        assert [(e.tr_key, e.code, e.fault) for e in acks] == [
            ("005930", "OPSP0008", "rule-1:reject"),
            ("000660", "OPSP0000", None),
            ("035720", "OPSP9009", "rule-2:reject"),
        ]


async def test_restart_refuses_then_accepts_on_the_same_port() -> None:
    async with feed() as (url, control), connect(url) as ws:
        await started(url, ws)
        await control.add_fault({"what": {"kind": "restart", "seconds": 5}, "when": {"first": 1}})
        with pytest.raises(ConnectionClosedError) as dropped:
            await frames(ws, 3)
        assert dropped.value.rcvd is None  # cut, not closed
        down_since = asyncio.get_running_loop().time()
        with pytest.raises(OSError, match=r"Connect call failed|refused"):
            await connect(url)
        with pytest.raises(httpx.ConnectError):
            await control.journal()
        await asyncio.sleep(5 - (asyncio.get_running_loop().time() - down_since) + 0.2)
        async with connect(url) as again:
            assert await subscribe(again) == "OPSP0000"
            assert len(await frames(again, 1)) == 1
        faults = await control.journal(kind="fault")
        assert [(e.fault, e.detail) for e in faults] == [("rule-1:restart", "restart: down 5 s")]
        ended = await control.journal(kind="disconnect")
        assert [(e.connection, e.code) for e in ended] == [(1, "1006"), (2, "1000")]


async def test_slow_reader_leaves_client_messages_unread_while_frames_flow() -> None:
    async with feed() as (url, control), connect(url, ping_interval=None) as ws:
        await started(url, ws)
        await control.add_fault(
            {"what": {"kind": "slow-reader", "seconds": 10}, "when": {"first": 1}}
        )
        await frames(ws, 1)  # the frame that set it off
        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        await ws.send(request("000660"))
        seen: list[str] = []
        while True:
            message = await recv_text(ws, within=15)
            if message.startswith("{"):
                break
            seen.append(message)
        assert json.loads(message)["body"]["msg_cd"] == "OPSP0000"
        assert loop.time() - asked_at >= 8.9
        assert len(seen) >= 8  # frames of 005930 kept coming meanwhile
        (subscribe_entry,) = [
            e for e in await control.journal(kind="message") if e.tr_key == "000660"
        ]
        fault = (await control.journal(kind="fault"))[0]
        assert fault.detail == "slow reader: 10 s"
        assert subscribe_entry.at >= fault.at + 9.99


async def test_close_every_connection_at_once() -> None:
    async with feed() as (url, control), connect(url) as one, connect(url) as two:
        await started(url, one)
        assert await subscribe(two, key=OTHER_KEY) == "OPSP0000"
        await control.add_fault(
            {"what": {"kind": "close", "code": 1001, "all_connections": True}, "when": {"first": 1}}
        )
        for ws in (one, two):
            with pytest.raises(ConnectionClosed) as closed:
                await frames(ws, 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        assert sorted(e.connection for e in await control.journal(kind="fault")) == [1, 2]


async def test_a_rule_can_target_one_connection() -> None:
    async with feed() as (url, control), connect(url) as one, connect(url) as two:
        await started(url, one)
        assert await subscribe(two, key=OTHER_KEY) == "OPSP0000"
        await control.add_fault(
            {"where": {"connection": 2}, "what": {"kind": "close", "code": 4002}}
        )
        with pytest.raises(ConnectionClosed):
            await frames(two, 5)
        assert len(await frames(one, 3)) == 3
        assert [c["connection"] for c in await control.connections()] == [1]


async def test_control_plane_reset_drops_connections_and_numbers_from_one() -> None:
    async with feed() as (url, control):
        async with connect(url) as ws:
            await started(url, ws)
            await control.add_fault({"what": {"kind": "gap"}})
            await control.reset()
            with pytest.raises(ConnectionClosed) as closed:
                await frames(ws, 3)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1012
        assert await control.journal() == []
        assert await control.faults() == []
        async with connect(url) as again:
            assert await subscribe(again) == "OPSP0000"
            assert len(await frames(again, 2)) == 2
        assert {e.connection for e in await control.journal()} == {1}
