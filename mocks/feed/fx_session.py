"""The FX venue's ticker connections (``fx_protocol``): one ``FxSession`` per client.

Served by the feed app beside the KIS channel (``/v2``, as Kraken's endpoint is
``wss://ws.kraken.com/v2``), on the same clock, the same seed and the same market events,
so a ``mispricing`` the broker's control plane injects shows in the quotes at its step.

Three tasks share a connection: the *reader* (the ASGI task) answers requests; the
*emitter* sends, at every step, an update for each subscribed pair whose best bid or ask
changed (Kraken's ``event_trigger: bbo``), or a heartbeat when none did; the *sender* is
the only one that writes, in order, from one outbox. Requests, answers and ticker messages
are journaled in the feed's journal with ``tr_id`` "ticker" (the channel) and ``tr_key``
the pair; connection numbers are the feed server's. Heartbeats are not journaled.

The ticker channel takes no fault rules: the feed's rules (``mocks.faults.feed``) match the
KIS channel's tr_ids and stock codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from mocks.feed import fx_protocol
from mocks.feed.fx_protocol import Invalid, Ping, TickerRequest
from mocks.feed.state import Feed
from mocks.journal import FeedEntryKind
from mocks.market import STEP_SECONDS

logger = logging.getLogger(__name__)

PATH = "/v2"
BACKLOG_CLOSE = 1013  # try again later
RESET_CLOSE = 1012  # service restart
NOT_SUBSCRIBED = "Subscription Not Found"  # mock's choice
_DISCONNECTED = (WebSocketDisconnect, WebSocketDisconnected, OSError, RuntimeError)
_EXCERPT = 200


@dataclass(frozen=True)
class _Outgoing:
    """One message for the sender, and its journal entry (None: not journaled)."""

    text: str
    kind: FeedEntryKind | None = None
    tr_key: str | None = None
    code: str | None = None
    step: int | None = None
    detail: str | None = None


class FxVenue:
    """The ticker connections of one feed app; a control-plane reset drops them all."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.sessions: set[FxSession] = set()

    async def serve(self, websocket: WebSocket) -> None:
        await FxSession(self, websocket).run()

    def reset(self) -> None:
        for session in list(self.sessions):
            session.drop_silently()
        self.sessions.clear()


class FxSession:
    def __init__(self, venue: FxVenue, websocket: WebSocket) -> None:
        self.venue = venue
        self.feed = venue.feed
        self.ws = websocket
        self.number = 0
        # Subscribed pairs, in order, with the (bid, ask) last sent (None: nothing yet).
        self.subscribed: dict[str, tuple[float, float] | None] = {}
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._silent = False
        self._close_code: int | None = None

    async def run(self) -> None:
        try:
            await self.ws.accept()
        except _DISCONNECTED:
            return
        self.number = self.feed.next_connection()
        self.venue.sessions.add(self)
        self._journal("connect", detail=self.ws.url.path)
        self._spawn(self._send_loop())
        self._spawn(self._emit_loop())
        self._enqueue(_Outgoing(fx_protocol.status(self.number)))
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

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("FX connection %d: a task failed", self.number, exc_info=task.exception())
            self._spawn(self._close(1011, "internal error"))

    # -- reading ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                if self._close_code is None:
                    self._close_code = message.get("code")
                return
            text = message.get("text")
            if text is None:
                self._journal("message", outcome="invalid", detail="binary")
                self._answer_invalid(Invalid(fx_protocol.MOCK_NOT_JSON))
            else:
                self._handle(text)

    def _handle(self, text: str) -> None:
        parsed = fx_protocol.parse_client_message(
            text, max_chars=self.feed.config.max_message_chars
        )
        if isinstance(parsed, Ping):
            self._journal("message", tr_id="ping", outcome="ping")
            self._enqueue(_Outgoing(fx_protocol.pong(parsed, at=self.feed.clock.wall())))
        elif isinstance(parsed, Invalid):
            self._journal("message", outcome="invalid", detail=text[:_EXCERPT])
            self._answer_invalid(parsed)
        else:
            self._journal(
                "message",
                tr_id=fx_protocol.CHANNEL,
                outcome=parsed.method,
                detail=", ".join(parsed.symbols)[:_EXCERPT],
            )
            for symbol in parsed.symbols:
                self._request(parsed, symbol)

    def _request(self, request: TickerRequest, symbol: str) -> None:
        error: str | None = None
        if request.method == "unsubscribe":
            if self.subscribed.pop(symbol, False) is False:
                error = NOT_SUBSCRIBED
        elif symbol not in self.feed.market.fx.pairs:
            error = fx_protocol.PAIR_NOT_SUPPORTED
        text = fx_protocol.answer(request, symbol, at=self.feed.clock.wall(), error=error)
        self._enqueue(_Outgoing(text, "ack", symbol, code="error" if error else "ok"))
        if error is not None or request.method == "unsubscribe" or symbol in self.subscribed:
            return  # a pair already subscribed gets its updates already
        self.subscribed[symbol] = None
        if request.snapshot:
            self._send_quotes(symbol, self.feed.step(), "snapshot")

    def _answer_invalid(self, problem: Invalid) -> None:
        self._enqueue(_Outgoing(fx_protocol.invalid(problem, at=self.feed.clock.wall()), "ack"))

    # -- emitting ---------------------------------------------------------------------

    async def _emit_loop(self) -> None:
        clock = self.feed.clock
        while True:
            step = self.feed.step()
            sent = [self._send_quotes(pair, step, "update") for pair in list(self.subscribed)]
            if self.subscribed and not any(sent):
                self._enqueue(_Outgoing(fx_protocol.HEARTBEAT))
            # A hair past the boundary, so the step has surely turned when we wake.
            await asyncio.sleep(max(0.0, (step + 1) * STEP_SECONDS - clock.now()) + 1e-6)

    def _send_quotes(self, pair: str, step: int, kind: Literal["snapshot", "update"]) -> bool:
        """Send ``pair``'s quote at ``step`` if its best bid or ask moved (a snapshot
        always); False if there was nothing new."""
        quote = self.feed.market.fx.quote(pair, step)
        best = (quote.bid, quote.ask)
        if kind == "update" and self.subscribed.get(pair) == best:
            return False
        self.subscribed[pair] = best
        text = fx_protocol.ticker(kind, [quote], self.feed.clock.wall(step * STEP_SECONDS))
        self._enqueue(_Outgoing(text, "frame", pair, step=step, detail=kind))
        return True

    # -- sending ----------------------------------------------------------------------

    def _enqueue(self, item: _Outgoing) -> None:
        if self._close_code is not None:
            return
        if self._outbox.qsize() >= self.feed.config.max_backlog:
            self._journal("fault", detail=f"backlog of {self._outbox.qsize()} messages")
            self._spawn(self._close(BACKLOG_CLOSE, "backlog"))
            return
        self._outbox.put_nowait(item)

    async def _send_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                await self.ws.send_text(item.text)
            except _DISCONNECTED:
                return  # the reader sees the disconnect and ends the session
            if item.kind is not None:
                self._journal(
                    item.kind,
                    tr_id=fx_protocol.CHANNEL,
                    tr_key=item.tr_key,
                    code=item.code,
                    records=1 if item.kind == "frame" else None,
                    step=item.step,
                    outcome="sent" if item.kind == "frame" else None,
                    detail=item.detail,
                )

    async def _close(self, code: int, reason: str) -> None:
        if self._close_code is not None:
            return
        self._close_code = code
        with contextlib.suppress(*_DISCONNECTED):
            await self.ws.close(code, reason)

    def _journal(self, kind: FeedEntryKind, **fields: Any) -> None:
        if self._silent:
            return
        self.feed.journal.record(
            at=round(self.feed.clock.now(), 6), connection=self.number, kind=kind, **fields
        )
