"""The life cycle the feed's JSON channels share (``mocks.feed.channel``), on a stand-in
socket: the order of writes, the journal, the backlog limit, a failed task, a reset.

The FX and signals channels' own messages are tested through the app, in
``tests/integration/test_fx_venue.py`` and ``tests/integration/test_mock_feed_signals.py``.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.types import Message
from starlette.websockets import WebSocket

from mocks.feed import FeedConfig, create_feed_app
from mocks.feed.channel import ChannelSession, ChannelVenue, Outgoing
from mocks.feed.state import Feed


class Socket:
    """What a ``ChannelSession`` calls of a starlette ``WebSocket``; ``hold`` keeps every
    write waiting, as a client that doesn't read would."""

    def __init__(self) -> None:
        self.url = SimpleNamespace(path="/test")
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed: int | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    async def accept(self) -> None:
        pass

    async def receive(self) -> Message:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        await self.writable.wait()
        self.sent.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = code
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})

    def say(self, text: str) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})

    def leave(self, code: int = 1000) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})


class EchoVenue(ChannelVenue["EchoSession"]):
    pass


class EchoSession(ChannelSession[EchoVenue]):
    """Greets unjournaled, echoes each text as a journaled ack; its emitter sends nothing,
    or fails at once when ``failing``."""

    label = "echo"
    failing = False

    def _greet(self) -> None:
        self._enqueue(Outgoing("hello"))

    def _received(self, message: Message) -> None:
        self._enqueue(Outgoing(message["text"], "ack", "ECHO", code="ok"))

    async def _emit_loop(self) -> None:
        if self.failing:
            raise ValueError("emitter broke")
        await asyncio.Event().wait()


@pytest.fixture
async def feed() -> Feed:
    return create_feed_app(FeedConfig(seed=1, max_backlog=10)).state.feed


async def settled() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def kinds(feed: Feed) -> list[tuple[str, Any, Any]]:
    return [(e.kind, e.tr_id, e.code) for e in feed.journal.entries()]


async def test_writes_go_out_in_order_and_are_journaled_when_written(feed: Feed) -> None:
    venue, socket = EchoVenue(feed), Socket()
    running = asyncio.create_task(EchoSession(venue, cast(WebSocket, socket)).run())
    socket.say("one")
    socket.say("two")
    await settled()
    assert len(venue.sessions) == 1
    socket.leave(1001)
    await running

    assert socket.sent == ["hello", "one", "two"]
    assert kinds(feed) == [
        ("connect", None, None),
        ("ack", "ECHO", "ok"),
        ("ack", "ECHO", "ok"),
        ("disconnect", None, "1001"),
    ]
    assert venue.sessions == set()


async def test_a_client_over_its_backlog_is_closed_with_1013(feed: Feed) -> None:
    venue, socket = EchoVenue(feed), Socket()
    socket.writable.clear()
    running = asyncio.create_task(EchoSession(venue, cast(WebSocket, socket)).run())
    for n in range(10):  # the greeting and nine echoes fill the outbox; the tenth is too many
        socket.say(str(n))
    await asyncio.wait_for(running, 5)

    assert socket.closed == 1013
    assert [(e.kind, e.detail) for e in feed.journal.entries(kind="fault")] == [
        ("fault", "backlog of 10 messages")
    ]
    assert kinds(feed)[-1] == ("disconnect", None, "1013")


async def test_a_failed_task_closes_the_connection_with_1011(
    feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    socket = Socket()
    session = EchoSession(EchoVenue(feed), cast(WebSocket, socket))
    session.failing = True
    await asyncio.wait_for(session.run(), 5)

    assert socket.closed == 1011
    assert "echo connection 1: a task failed" in caplog.text
    assert kinds(feed)[-1] == ("disconnect", None, "1011")


async def test_a_reset_closes_with_1012_and_journals_nothing_more(feed: Feed) -> None:
    venue, socket = EchoVenue(feed), Socket()
    running = asyncio.create_task(EchoSession(venue, cast(WebSocket, socket)).run())
    await settled()
    venue.reset()
    await asyncio.wait_for(running, 5)

    assert socket.closed == 1012
    assert venue.sessions == set()
    assert kinds(feed) == [("connect", None, None)]
