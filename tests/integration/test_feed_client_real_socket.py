"""The feed client over a real WebSocket: subscribe, frames, PINGPONG echo, and a server
close followed by reconnect and resubscription.

The server is a few lines of websockets speaking just enough KIS realtime for that, started
inside the test so it shares the test's virtual clock (a server in a fixture would run on
another loop). It is not the mock feed: this proves the client's real connection path.
"""

from __future__ import annotations

import asyncio
import json
import random
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from system.market import FeedClient, FeedSettings, PriceUpdate
from tests.unit.market.conftest import ack, pingpong, trade_record, trades

pytestmark = pytest.mark.looptime

WAIT_S = 5.0  # virtual seconds; every step here takes none


class TinyKisServer:
    """Accepts connections, acks every subscribe, and queues what the client sent."""

    def __init__(self) -> None:
        self.peers: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self.received: asyncio.Queue[tuple[ServerConnection, dict[str, object], str]] = (
            asyncio.Queue()
        )

    async def handler(self, peer: ServerConnection) -> None:
        await self.peers.put(peer)
        async for text in peer:
            assert isinstance(text, str)
            message = json.loads(text)
            await self.received.put((peer, message, text))
            if "body" in message:  # a subscription: ack it as KIS does
                body = message["body"]["input"]
                await peer.send(ack(body["tr_id"], body["tr_key"]))

    async def next_peer(self) -> ServerConnection:
        return await asyncio.wait_for(self.peers.get(), WAIT_S)

    async def next_message(self) -> tuple[ServerConnection, dict[str, object], str]:
        return await asyncio.wait_for(self.received.get(), WAIT_S)


async def test_subscribe_frames_pingpong_and_reconnect_over_a_real_socket() -> None:
    kis = TinyKisServer()
    updates: asyncio.Queue[PriceUpdate] = asyncio.Queue()
    resyncs: list[str] = []

    async def approval() -> str:
        return "approval-over-the-wire"

    async def resync(code: str) -> PriceUpdate:
        resyncs.append(code)
        loop_now = asyncio.get_running_loop().time()
        return PriceUpdate(code, 72000, 500, 0.7, 9000, at=loop_now, source="rest")

    async with serve(kis.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = FeedSettings(
            url=f"ws://127.0.0.1:{port}/tryitout", backoff_base_s=0.5, backoff_max_s=1.0
        )
        feed = FeedClient(settings, credential=approval, resync=resync, rng=random.Random(3))
        feed.add_listener(updates.put_nowait)
        details: list[str] = []
        feed.add_status_listener(lambda status: details.append(status.detail))
        await feed.subscribe("005930")
        async with feed:
            first = await kis.next_peer()
            _, message, _ = await kis.next_message()
            assert message == {
                "header": {
                    "approval_key": "approval-over-the-wire",
                    "custtype": "P",
                    "tr_type": "1",
                    "content-type": "utf-8",
                },
                "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
            }

            # A two-record frame: both trades arrive, in order.
            await first.send(
                trades(trade_record(accumulated=1000), trade_record(volume=5, accumulated=1005))
            )
            got = [await asyncio.wait_for(updates.get(), WAIT_S) for _ in range(2)]
            assert [(u.code, u.price, u.volume, u.source) for u in got] == [
                ("005930", 71900, 1000, "feed"),
                ("005930", 71900, 1005, "feed"),
            ]
            assert feed.status().state == "live"

            # The heartbeat comes back byte for byte.
            heartbeat = pingpong("20260302093500")
            await first.send(heartbeat)
            peer, _, echoed = await kis.next_message()
            assert (peer, echoed) == (first, heartbeat)

            # The server goes away: the client reconnects, subscribes again, resyncs.
            await first.close(1011, "restart")
            second = await kis.next_peer()
            assert second is not first
            peer, message, _ = await kis.next_message()
            assert peer is second
            assert message["body"] == {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}
            rest = await asyncio.wait_for(updates.get(), WAIT_S)
            assert (rest.source, rest.volume, resyncs) == ("rest", 9000, ["005930"])
            assert feed.status().reconnects == 1
            closed = [d for d in details if "closed the connection" in d]
            assert closed[0].startswith(
                f"the realtime server closed the connection with code 1011 'restart' "
                f"(ws://127.0.0.1:{port}/tryitout); retry in "
            )
            assert feed.metrics()["feed_pingpongs"] == 1.0
        # Leaving the block closed the client's side cleanly.
        await asyncio.wait_for(second.wait_closed(), WAIT_S)
        assert feed.status().state == "stopped"


async def test_refused_connects_and_failed_handshakes_are_retried() -> None:
    """Nothing listening, then a server that answers HTTP 404: both are failed attempts."""

    def not_found(peer: ServerConnection, request: Request) -> Response:
        return peer.respond(HTTPStatus.NOT_FOUND, "no such path\n")

    async def approval() -> str:
        return "approval-over-the-wire"

    async def resync(code: str) -> PriceUpdate:
        raise AssertionError("no resync expected")

    details: asyncio.Queue[str] = asyncio.Queue()

    async def detail_with(text: str) -> str:
        while True:
            detail = await asyncio.wait_for(details.get(), WAIT_S)
            if text in detail:
                return detail

    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # the port is free again: connecting is refused
    url = f"ws://127.0.0.1:{port}/tryitout"
    feed = FeedClient(
        FeedSettings(url=url, backoff_base_s=1.0),
        credential=approval,
        resync=resync,
        rng=random.Random(3),
    )
    feed.add_status_listener(lambda status: details.put_nowait(status.detail))
    async with feed:
        refused = await detail_with("could not connect")
        assert refused.startswith(
            f"could not connect to the realtime server at {url} (ConnectionRefusedError: "
        )
        async with serve(
            lambda peer: peer.wait_closed(), "127.0.0.1", port, process_request=not_found
        ):
            rejected = await detail_with("handshake")
        assert rejected.startswith(
            f"the realtime server at {url} refused the WebSocket handshake (server rejected "
            "WebSocket connection: HTTP 404); check the url's host, port and path "
            "(KIS: /tryitout); retry in "
        )
        assert feed.status().state == "connecting"
        assert feed.metrics()["feed_connect_failures"] == 2.0
