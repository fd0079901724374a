"""Market events in a served world: injected through the broker's control plane, seen alike
in REST quotes, fills and the feed's frames, over real loopback sockets.

Under ``looptime`` the world's clocks run on virtual time: a minute of market passes in a
moment. Frames are read by hand, not with the system's client: the tests speak the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from mocks.broker import BrokerConfig
from mocks.clock import KST
from mocks.feed import FeedConfig, create_feed_app
from mocks.feed.records import BOOK_COLUMNS, TRADE_COLUMNS
from mocks.market import Market
from mocks.world import World, serve_world

pytestmark = pytest.mark.looptime

OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)
SEED = 7
CODE = "035720"
APPKEY = "PSevnt" + "e" * 30
APPSECRET = "e" * 180
TRADES, BOOK = "H0STCNT0", "H0STASP0"
COLUMNS = {TRADES: TRADE_COLUMNS, BOOK: BOOK_COLUMNS}
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
LIMIT_DOWN = range(5, 10)  # steps: at 5 for 5
VI = range(15, 35)  # steps: at 15 for 20


@dataclass
class Tape:
    """Every record the feed sent, by tr_id, in arrival order."""

    rows: dict[str, list[dict[str, str]]] = field(default_factory=lambda: {TRADES: [], BOOK: []})

    def add(self, text: str) -> None:
        _, tr_id, count, payload = text.split("|", 3)
        fields, width = payload.split("^"), len(COLUMNS[tr_id])
        assert len(fields) == int(count) * width
        for i in range(0, len(fields), width):
            self.rows[tr_id].append(dict(zip(COLUMNS[tr_id], fields[i : i + width], strict=True)))

    def at(self, tr_id: str) -> dict[int, dict[str, str]]:
        return {step_of(row): row for row in self.rows[tr_id]}


def step_of(row: dict[str, str]) -> int:
    hour = row.get("STCK_CNTG_HOUR") or row["BSOP_HOUR"]
    return (int(hour[:2]) - 9) * 3600 + int(hour[2:4]) * 60 + int(hour[4:])


@dataclass
class Session:
    world: World
    http: httpx.AsyncClient
    headers: dict[str, str]
    approval_key: str

    async def quote(self) -> dict[str, str]:
        answer = await self.http.get(
            PRICE,
            params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": CODE},
            headers={**self.headers, "tr_id": "FHKST01010100"},
        )
        output: dict[str, str] = answer.json()["output"]
        return output

    async def market_buy(self, quantity: int = 1) -> dict[str, Any]:
        body = {
            "CANO": "50012345",
            "ACNT_PRDT_CD": "01",
            "PDNO": CODE,
            "ORD_DVSN": "01",
            "ORD_QTY": str(quantity),
            "ORD_UNPR": "0",
        }
        answer = await self.http.post(
            ORDER, json=body, headers={**self.headers, "tr_id": "TTTC0012U"}
        )
        result: dict[str, Any] = answer.json()
        return result


@contextlib.asynccontextmanager
async def session() -> AsyncIterator[Session]:
    async with (
        serve_world(BrokerConfig(seed=SEED, requests_per_second=1000), wall_origin=OPEN) as world,
        httpx.AsyncClient(base_url=world.broker.url) as http,
    ):
        credentials = {"grant_type": "client_credentials", "appkey": APPKEY}
        token = await http.post("/oauth2/tokenP", json={**credentials, "appsecret": APPSECRET})
        approval = await http.post("/oauth2/Approval", json={**credentials, "secretkey": APPSECRET})
        headers = {
            "authorization": f"Bearer {token.json()['access_token']}",
            "appkey": APPKEY,
            "appsecret": APPSECRET,
        }
        # Both mocks' clocks started with the world, a moment apart: event times and steps
        # mean the same on both.
        yield Session(world, http, headers, approval.json()["approval_key"])


def subscription(tr_id: str, key: str) -> str:
    header = {"approval_key": key, "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
    return json.dumps({"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": CODE}}})


async def record(ws: ClientConnection, tape: Tape) -> None:
    async for message in ws:
        assert isinstance(message, str)
        if message.startswith("0|"):
            tape.add(message)


async def until(world: World, seconds: float) -> None:
    """Sleep until the broker's clock reads ``seconds``."""
    now = await world.broker_control.now()
    await asyncio.sleep(max(0.0, seconds - now))


async def test_limit_down_and_a_vi_agree_in_quotes_orders_and_frames() -> None:
    async with session() as s:
        world = s.world
        control = world.broker_control
        await control.add_market_event(
            {"kind": "limit-down", "code": CODE, "at": LIMIT_DOWN.start, "for": len(LIMIT_DOWN)}
        )
        await control.add_market_event({"kind": "vi", "code": CODE, "at": VI.start, "for": len(VI)})
        # One market serves both mocks: the frames below and the REST answers read it.
        # (Two markets of one seed and one set of events agree too: see the unit tests.)
        feed_market: Market = world.feed_app.state.feed.market
        broker_market: Market = world.broker_app.state.broker.market
        assert feed_market is broker_market

        tape = Tape()
        async with connect(world.feed_url) as ws:
            await ws.send(subscription(TRADES, s.approval_key))
            await ws.send(subscription(BOOK, s.approval_key))
            reader = asyncio.get_running_loop().create_task(record(ws, tape))
            try:
                await until(world, LIMIT_DOWN.start + 2.5)
                pinned = await s.quote()
                await until(world, VI.start + 5.5)
                halted = await s.quote()
                refused = await s.market_buy()
                await until(world, VI.stop + 5.5)
                resumed = await s.quote()
                filled = await s.market_buy()
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

        instrument = broker_market.instrument(CODE)
        lower = str(instrument.lower_limit)

        # REST: pinned at the lower limit, then halted at the last trade before the VI.
        assert (pinned["stck_prpr"], pinned["prdy_vrss_sign"], pinned["vi_cls_code"]) == (
            lower,
            "4",
            "N",
        )
        last_before_vi = str(broker_market.tick(CODE, VI.start - 1).price)
        assert (halted["stck_prpr"], halted["vi_cls_code"]) == (last_before_vi, "Y")
        assert resumed["vi_cls_code"] == "N"
        assert (refused["rt_cd"], refused["msg_cd"]) == ("1", "APBK1690")
        assert "단일가매매" in refused["msg1"]
        assert filled["rt_cd"] == "0"

        # The feed: trades at the lower limit, then none at all during the VI.
        trades, books = tape.at(TRADES), tape.at(BOOK)
        seen = sorted(trades)
        assert seen[0] <= LIMIT_DOWN.start - 1
        assert seen[-1] >= VI.stop + 1
        assert not set(seen) & set(VI)
        expected = [s for s in range(seen[0], seen[-1] + 1) if s not in VI]
        assert seen == expected  # nothing else missing
        for step in LIMIT_DOWN:
            assert (trades[step]["STCK_PRPR"], trades[step]["PRDY_VRSS_SIGN"]) == (lower, "4")
            assert (books[step]["BIDP1"], books[step]["ASKP1"]) == ("0", lower)
        assert trades[LIMIT_DOWN.stop]["STCK_PRPR"] != lower
        assert trades[VI.start - 1]["STCK_PRPR"] == last_before_vi
        # Volume stood still through the halt: the client's gap check still passes.
        for before, after in itertools.pairwise(trades[step] for step in seen):
            assert int(after["ACML_VOL"]) == int(before["ACML_VOL"]) + int(after["CNTG_VOL"])
        assert trades[VI.stop]["ACML_VOL"] == str(broker_market.tick(CODE, VI.stop).volume)
        # Book frames go on through the halt, marked as the VI's auction.
        assert all(books[step]["HOUR_CLS_CODE"] == "C" for step in VI)
        assert books[VI.start - 1]["HOUR_CLS_CODE"] == books[VI.stop]["HOUR_CLS_CODE"] == "0"
        assert all(books[step]["ANTC_CNPR"] == last_before_vi for step in VI)

        # And the feed's records are the broker's market, step for step.
        for step in seen:
            assert trades[step]["STCK_PRPR"] == str(broker_market.tick(CODE, step).price)
            assert feed_market.tick(CODE, step) == broker_market.tick(CODE, step)

        journal = await world.feed_control.journal(kind="frame", tr_id=TRADES)
        assert not {entry.step for entry in journal} & set(VI)


async def test_clearing_the_events_restores_the_undisturbed_world() -> None:
    async with session() as s:
        control = s.world.broker_control
        await control.add_market_event({"kind": "limit-down", "code": CODE, "at": 1})
        await until(s.world, 2.5)
        assert (await s.quote())["stck_prpr"] == (await s.quote())["stck_llam"]
        assert await control.clear_market_events() == 1
        calm = Market(SEED)
        # The quote is the undisturbed path's, whichever second the calls took to make.
        assert (await s.quote())["stck_prpr"] in {str(calm.tick(CODE, n).price) for n in (2, 3)}


async def test_one_world_has_one_market_unless_the_feed_is_given_another_seed() -> None:
    async with serve_world(BrokerConfig(seed=SEED), wall_origin=OPEN) as world:
        assert world.feed_app.state.feed.market is world.broker_app.state.broker.market
    async with serve_world(
        BrokerConfig(seed=SEED), FeedConfig(seed=SEED + 1), wall_origin=OPEN
    ) as world:
        feed_market = world.feed_app.state.feed.market
        assert feed_market is not world.broker_app.state.broker.market
        assert feed_market.seed == SEED + 1
        # Still one collection of events: the broker's control plane moves both.
        assert feed_market.events is world.broker_app.state.broker.market.events


def test_a_feed_refuses_a_market_of_another_seed() -> None:
    with pytest.raises(ValueError, match="the feed's seed is 1 but the market given is seed 2"):
        create_feed_app(FeedConfig(seed=1), market=Market(2))
