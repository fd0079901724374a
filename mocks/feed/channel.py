"""What the feed app's JSON channels share: the FX ticker (``fx_session``, at ``/v2``) and
the signals (``signals``, at ``/ws``). A ``ChannelSession`` is one client connection, from
accept to close; a ``ChannelVenue`` holds a channel's open connections.

Three tasks share a connection: the *reader* (the ASGI task) takes client messages; the
*emitter* sends what the channel sends on its own, on the feed's clock; the *sender* is the
only one that writes, in order, from one outbox that ``max_backlog`` bounds (over it, the
connection is closed with 1013, as the KIS channel's is). A channel says how a client
message is handled (``_received``), what the emitter sends (``_emit_loop``) and, item by
item, what the journal shows of it (``Outgoing``); the rest is here.

These channels take no fault rules (the feed's rules, ``mocks.faults.feed``, match the KIS
and Kiwoom channels' messages), so unlike the KIS ``Session`` nothing here stalls, holds
or reorders: a message goes out as it was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from mocks.feed.state import Feed
from mocks.journal import FeedEntryKind
from mocks.vocabulary import FeedMeaning

logger = logging.getLogger(__name__)

INTERNAL_CLOSE = 1011  # internal error
RESET_CLOSE = 1012  # service restart
BACKLOG_CLOSE = 1013  # try again later
DISCONNECTED = (WebSocketDisconnect, WebSocketDisconnected, OSError, RuntimeError)

SessionT = TypeVar("SessionT", bound="ChannelSession[Any]")
VenueT = TypeVar("VenueT", bound="ChannelVenue[Any]")


@dataclass(frozen=True)
class Outgoing:
    """One message for the sender, and the journal entry written when it goes out (none
    when ``kind`` is None: a greeting or a heartbeat)."""

    text: str
    kind: FeedEntryKind | None = None
    tr_id: str | None = None
    tr_key: str | None = None
    code: str | None = None
    step: int | None = None
    detail: str | None = None
    meaning: FeedMeaning | None = None  # an ack's, in neutral terms (mocks.vocabulary)


class ChannelVenue(Generic[SessionT]):
    """The connections of one channel of one feed app; a control-plane reset drops them all."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.sessions: set[SessionT] = set()  # open: accepted and not yet ended

    def reset(self) -> None:
        for session in list(self.sessions):
            session.drop_silently()
        self.sessions.clear()


class ChannelSession(Generic[VenueT]):
    label: ClassVar[str]  # the channel's name in the log

    def __init__(self, venue: VenueT, websocket: WebSocket) -> None:
        self.venue = venue
        self.feed = venue.feed
        self.ws = websocket
        self.number = 0
        self._outbox: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._silent = False  # dropped by a control-plane reset: journal nothing more
        self._close_code: int | None = None

    # -- life cycle -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.ws.accept()
        except DISCONNECTED:
            return
        self.number = self.feed.next_connection()
        self.venue.sessions.add(self)
        self._journal("connect", detail=self.ws.url.path)
        self._spawn(self._send_loop())
        self._spawn(self._emit_loop())
        self._greet()
        try:
            await self._read_loop()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.venue.sessions.discard(self)
            code = None if self._close_code is None else str(self._close_code)
            self._journal("disconnect", code=code)

    def drop_silently(self) -> None:
        """A control-plane reset: close the connection and journal nothing more of it."""
        self._silent = True
        self._spawn(self._close(RESET_CLOSE, "mock reset"))

    def _greet(self) -> None:
        """What the channel says as the connection opens, before any answer: nothing here."""

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "%s connection %d: a task failed",
                self.label,
                self.number,
                exc_info=task.exception(),
            )
            self._spawn(self._close(INTERNAL_CLOSE, "internal error"))

    # -- reading ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                if self._close_code is None:  # else the mock ended it, and knows how
                    self._close_code = message.get("code")
                return
            self._received(message)

    def _received(self, message: Message) -> None:
        """Handle one client message (``text`` or ``bytes``)."""
        raise NotImplementedError

    # -- emitting ---------------------------------------------------------------------

    async def _emit_loop(self) -> None:
        """Send, for as long as the connection lasts, what the channel sends unasked."""
        raise NotImplementedError

    # -- sending ----------------------------------------------------------------------

    def _enqueue(self, item: Outgoing) -> bool:
        """Queue ``item``; False if the connection is closing or just went over its
        backlog (it is closed with 1013)."""
        if self._close_code is not None:
            return False
        if self._outbox.qsize() >= self.feed.config.max_backlog:
            self._journal("fault", detail=f"backlog of {self._outbox.qsize()} messages")
            self._spawn(self._close(BACKLOG_CLOSE, "backlog"))
            return False
        self._outbox.put_nowait(item)
        return True

    async def _send_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                await self.ws.send_text(item.text)
            except DISCONNECTED:
                return  # the reader sees the disconnect and ends the session
            if item.kind is not None:
                self._journal(
                    item.kind,
                    tr_id=item.tr_id,
                    tr_key=item.tr_key,
                    code=item.code,
                    records=1 if item.kind == "frame" else None,
                    step=item.step,
                    outcome="sent" if item.kind == "frame" else None,
                    detail=item.detail,
                    meaning=item.meaning,
                )

    async def _close(self, code: int, reason: str) -> None:
        if self._close_code is not None:
            return
        self._close_code = code
        with contextlib.suppress(*DISCONNECTED):
            await self.ws.close(code, reason)

    def _journal(self, kind: FeedEntryKind, **fields: Any) -> None:
        if self._silent:
            return
        self.feed.journal.record(
            at=round(self.feed.clock.now(), 6), connection=self.number, kind=kind, **fields
        )
