"""One client connection to the feed, from accept to close.

Four tasks share a connection: the *reader* (the ASGI task itself) answers client messages;
the *emitter* turns each market step into frames; the *pinger* sends PINGPONG; the *sender*
is the only one that writes, in order, from one outbox. Keeping every write in one task is
what lets a delay hold everything behind a frame (as a TCP stream would) and a stall stop
all output at once.

Faults are decided per event (see ``mocks.faults.feed``) where the event happens: at a
client message in the reader, at a frame in the emitter, at a heartbeat in the pinger.
Everything is journaled with the loop-clock time it happened at and the connection number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import string
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, Literal

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from mocks import wire
from mocks.faults import (
    Decision,
    Duplicate,
    FeedClose,
    FeedReset,
    FrameDelay,
    Gap,
    Garbled,
    Reject,
    Reorder,
    Restart,
    SlowReader,
    Stall,
)
from mocks.faults.feed import FeedEventKind
from mocks.feed import protocol
from mocks.feed.protocol import Cipher, Invalid, PingPongEcho, Subscription
from mocks.feed.state import Feed
from mocks.journal import FeedEntry, FeedEntryKind, fingerprint
from mocks.market import STEP_SECONDS
from mocks.vocabulary import FeedMeaning
from mocks.wire import WireUnavailable

logger = logging.getLogger(__name__)

# Closing a second session of an app key; the public sources don't say which code KIS uses.
APPKEY_IN_USE_CLOSE = 1008  # policy violation
BACKLOG_CLOSE = 1013  # try again later
_KEY_VALUE = re.compile(r'("?approval_key"?\s*:\s*"?)([^",}\s]*)')
_EXCERPT = 200
_UNANSWERED_PINGS = 100  # heartbeats remembered for an echo to mark
_DISCONNECTED = (WebSocketDisconnect, WebSocketDisconnected, OSError, RuntimeError)


@dataclass
class _Outgoing:
    """One message for the sender, and what to journal when it goes out. A "close" item
    closes the connection once everything before it is sent; its text is the reason."""

    text: str
    kind: Literal["ack", "frame", "pingpong", "close"]
    tr_id: str | None = None
    tr_key: str | None = None
    code: str | None = None
    records: int | None = None
    step: int | None = None
    fault: str | None = None
    outcome: str | None = None
    detail: str | None = None
    meaning: FeedMeaning | None = None  # an ack's, in neutral terms (mocks.vocabulary)
    not_before: float = 0.0  # mock-clock time; a delay fault sets it
    close_code: int = 1000


class Session:
    def __init__(self, feed: Feed, websocket: WebSocket) -> None:
        self.feed = feed
        self.ws = websocket
        self.number = feed.open(self)
        self.appkey: str | None = None
        self.subscriptions = protocol.Subscriptions(feed.config.max_subscriptions)
        self.cipher = _cipher(feed.config.seed, self.number)
        self._next_step: dict[tuple[str, str], int] = {}
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._held: dict[tuple[str, str], list[_Outgoing]] = {}  # reordered frames
        self._pings: dict[str, FeedEntry] = {}  # PINGPONG datetime -> its journal entry
        self._live = asyncio.Event()  # clear while stalled: nothing goes out
        self._live.set()
        self._stall_end: asyncio.TimerHandle | None = None
        self._read_holds: dict[str, asyncio.TimerHandle | None] = {}  # reason -> its end
        self._sender: asyncio.Task[None] | None = None
        self._helpers: set[asyncio.Task[Any]] = set()
        self._silent = False  # dropped by a control-plane reset: journal nothing more
        self._close_code: int | None = None

    # -- life cycle -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.ws.accept()
        except _DISCONNECTED:
            self.feed.close(self)
            return
        self._journal("connect", detail=_peer(self.ws))
        self._sender = self._spawn(self._send_loop())
        self._spawn(self._emit_loop())
        self._spawn(self._ping_loop())
        try:
            # Even when a fault at connect takes the connection, read on: the close, reset
            # or restart shows up as the disconnect that ends the loop.
            self._event("connect")
            await self._read_loop()
        finally:
            await self._end()

    async def _end(self) -> None:
        for task in list(self._helpers):
            task.cancel()
        for task in list(self._helpers):
            with contextlib.suppress(BaseException):
                await task
        for handle in (self._stall_end, *self._read_holds.values()):
            if handle is not None:
                handle.cancel()
        self.feed.close(self)
        self._journal(
            "disconnect", code=None if self._close_code is None else str(self._close_code)
        )

    def condition(self) -> dict[str, Any]:
        """What the control plane shows of this connection besides its subscriptions."""
        return {
            "stalled": not self._live.is_set(),
            "reading": not self._read_holds,
            "backlog": self._outbox.qsize(),
            "closing": self._closing(),
        }

    def drop_silently(self) -> None:
        """A control-plane reset: cut the connection and journal nothing more of it."""
        self._silent = True
        self._spawn(self._close(1012, "mock reset"))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._helpers.add(task)
        task.add_done_callback(self._helper_done)
        return task

    def _helper_done(self, task: asyncio.Task[Any]) -> None:
        self._helpers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "feed connection %d: a task failed", self.number, exc_info=task.exception()
            )
            self._reset_wire()

    # -- reading ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            message = await self.ws.receive()
            if self._read_holds:
                # uvicorn resumes reading once its queue drains; a stall or a slow reader
                # must keep the socket unread.
                self._pause_reading()
            if message["type"] == "websocket.disconnect":
                if self._close_code is None:  # else the mock ended it, and knows how
                    self._close_code = message.get("code")
                return
            text = message.get("text")
            try:
                if text is None:
                    size = len(message.get("bytes") or b"")
                    self._journal("message", outcome="invalid", detail=f"binary, {size} bytes")
                    self._answer_invalid(
                        Invalid(protocol.NOT_JSON, "binary messages are not read; send text")
                    )
                else:
                    self._handle(text)
            except Exception:
                # A bug here must not take the connection down with it; the log shows it.
                logger.exception("feed connection %d: could not handle a message", self.number)
                self._answer_invalid(Invalid(protocol.NOT_JSON, "the mock failed on it"))

    def _handle(self, text: str) -> None:
        parsed = protocol.parse_client_message(text, max_chars=self.feed.config.max_message_chars)
        if isinstance(parsed, PingPongEcho):
            echo = {"header": {"tr_id": protocol.HEARTBEAT, "datetime": parsed.datetime}}
            self._journal("message", tr_id=protocol.HEARTBEAT, outcome="pingpong", message=echo)
            entry = self._pings.pop(parsed.datetime, None)
            if entry is not None:
                entry.outcome = "echoed"
            self._event("message", protocol.HEARTBEAT)
        elif isinstance(parsed, Invalid):
            self._journal(
                "message",
                tr_id=parsed.tr_id or None,
                tr_key=parsed.tr_key or None,
                outcome="invalid",
                detail=_scrubbed(text),
            )
            if self._event("message", parsed.tr_id or None, parsed.tr_key or None):
                self._answer_invalid(parsed)
        else:
            entry = self._journal(
                "message",
                tr_id=parsed.tr_id,
                tr_key=parsed.tr_key,
                outcome=parsed.action,
                message=parsed.as_message(),
            )
            self._request(parsed, entry)

    def _request(self, request: Subscription, entry: FeedEntry) -> None:
        key = (request.tr_id, request.tr_key)
        appkey = self.feed.appkey_for(request.approval_key)
        if appkey is None:
            self._ack(protocol.INVALID_APPROVAL, *key)
            return
        if self.appkey is None:
            if not self.feed.claim(appkey, self):
                self._ack(protocol.APPKEY_IN_USE, *key)
                self._enqueue(
                    _Outgoing(
                        protocol.MESSAGES[protocol.APPKEY_IN_USE][1],
                        "close",
                        close_code=APPKEY_IN_USE_CLOSE,
                    )
                )
                return
            self.appkey = appkey
            entry.detail = f"session of app key {fingerprint(appkey)}"
        elif appkey != self.appkey:
            self._ack(
                protocol.INVALID_HEADER,
                *key,
                detail="the approval key is another app key's than this session's",
            )
            return
        decision = self._decide(request.action, *key)
        if decision is not None:
            if isinstance(decision.action, Reject):
                action = decision.action
                self._ack(action.code, *key, message=action.message, fault=decision.label)
                return
            if not self._apply_to_connection(decision):
                return
        if request.action == "subscribe" and request.tr_key not in self.feed.market.instruments:
            self._ack(protocol.INVALID_TR_KEY, *key, detail="not listed in the simulated market")
            return
        code = self.subscriptions.apply(request)
        if code == protocol.SUBSCRIBED:
            # Records start at the next step boundary: KIS sends no snapshot on subscribe.
            self._next_step[key] = self.feed.step() + 1
        elif code == protocol.UNSUBSCRIBED:
            self._next_step.pop(key, None)
            self._held.pop(key, None)
        self._ack(code, *key)

    def _answer_invalid(self, invalid: Invalid) -> None:
        self._ack(invalid.code, invalid.tr_id, invalid.tr_key, detail=invalid.detail)

    def _ack(
        self,
        code: str,
        tr_id: str,
        tr_key: str,
        *,
        detail: str = "",
        message: str | None = None,
        fault: str | None = None,
    ) -> None:
        text = protocol.ack(code, tr_id, tr_key, cipher=self.cipher, detail=detail, message=message)
        self._enqueue(
            _Outgoing(
                text,
                "ack",
                tr_id or None,
                tr_key or None,
                code=code,
                fault=fault,
                detail=detail or message or None,
                meaning=protocol.ACK_MEANINGS.get(code),
            )
        )

    # -- emitting ---------------------------------------------------------------------

    async def _emit_loop(self) -> None:
        clock = self.feed.clock
        while True:
            step = self.feed.step()
            if self._live.is_set():
                self._emit(step)
            else:  # stalled: these steps are never sent, a gap when output resumes
                for key in self._next_step:
                    self._next_step[key] = step + 1
            # A hair past the boundary, so the step has surely turned when we wake.
            await asyncio.sleep(max(0.0, (step + 1) * STEP_SECONDS - clock.now()) + 1e-6)

    def _emit(self, step: int) -> None:
        """Frames for every subscription with enough records due: the steps from its next
        one up to ``step``, at least ``records_per_frame`` of them, in one frame (a late
        wake-up's backlog included, up to the 999 a frame can count)."""
        for key in self.subscriptions.active():
            first = self._next_step.get(key, step + 1)
            if step - first + 1 < self.feed.config.records_per_frame:
                continue
            self._next_step[key] = step + 1
            tape = self.feed.tape
            # A halted code has no trade records: its frames skip the halt's steps.
            due = [s for s in range(first, step + 1) if tape.sends(key[0], key[1], s)]
            for start in range(0, len(due), protocol.MAX_RECORDS_PER_FRAME):
                steps = due[start : start + protocol.MAX_RECORDS_PER_FRAME]
                records = [tape.record(key[0], key[1], s) for s in steps]
                self._frame(key, records, steps[0])
                if not self._live.is_set() or self._closing():
                    return

    def _frame_text(self, key: tuple[str, str], records: list[tuple[str, ...]]) -> str:
        """The data message that carries ``records`` of subscription ``key``: KIS's
        pipe-delimited frame here; another protocol's session renders its own."""
        return protocol.frame(key[0], records)

    def _frame(self, key: tuple[str, str], records: list[tuple[str, ...]], step: int) -> None:
        tr_id, tr_key = key
        text = self._frame_text(key, records)
        item = _Outgoing(text, "frame", tr_id, tr_key, records=len(records), step=step)
        decision = self._decide("frame", tr_id, tr_key)
        action = decision.action if decision is not None else None
        if decision is not None:
            item.fault = decision.label
            if not self._apply_to_connection(decision) or not self._live.is_set():
                return
        if isinstance(action, Gap):
            self._journal_item(replace(item, outcome="skipped"))
            return
        if isinstance(action, Reorder):
            self._held.setdefault(key, []).append(replace(item, outcome="reordered"))
            return
        if isinstance(action, Garbled):
            item.text = action.text if action.text is not None else text[: len(text) // 2]
            item.outcome = "malformed"
        elif isinstance(action, FrameDelay) and decision is not None:
            item.not_before = self.feed.clock.now() + decision.delay
            item.outcome = "delayed"
            item.detail = f"{decision.delay:.3f} s"
        self._enqueue(item)
        if isinstance(action, Duplicate):
            for _ in range(action.copies):
                self._enqueue(replace(item, outcome="duplicate"))
        for held in self._held.pop(key, []):
            self._enqueue(held)

    # -- heartbeat --------------------------------------------------------------------

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.feed.config.ping_interval_s)
            if not self._live.is_set():
                continue  # a stalled connection sends no heartbeat either
            if not self._event("pingpong", protocol.HEARTBEAT):
                return
            at = self.feed.clock.wall()
            text = protocol.pingpong(at)
            stamp = protocol.pingpong_stamp(at)
            self._enqueue(_Outgoing(text, "pingpong", protocol.HEARTBEAT, detail=stamp))

    # -- sending ----------------------------------------------------------------------

    def _enqueue(self, item: _Outgoing) -> None:
        if self._outbox.qsize() >= self.feed.config.max_backlog:
            if not self._closing():
                self._journal("fault", detail=f"backlog of {self._outbox.qsize()} messages")
                self._spawn(self._close(BACKLOG_CLOSE, "backlog"))
            return
        self._outbox.put_nowait(item)

    async def _send_loop(self) -> None:
        clock = self.feed.clock
        while True:
            item = await self._outbox.get()
            await self._live.wait()
            wait = item.not_before - clock.now()
            if wait > 0:
                await asyncio.sleep(wait)
                await self._live.wait()
            if item.kind == "close":
                await self._close(item.close_code, item.text)
                return
            try:
                await self.ws.send_text(item.text)
            except _DISCONNECTED:
                return  # the reader sees the disconnect and ends the session
            self._journal_item(item)

    def _journal_item(self, item: _Outgoing) -> None:
        if item.kind == "close":
            return
        entry = self._journal(
            item.kind,
            tr_id=item.tr_id,
            tr_key=item.tr_key,
            code=item.code,
            records=item.records,
            step=item.step,
            fault=item.fault,
            outcome=item.outcome or ("sent" if item.kind != "ack" else None),
            detail=item.detail,
            meaning=item.meaning,
        )
        if item.kind == "pingpong" and item.detail is not None:
            self._pings[item.detail] = entry
            if len(self._pings) > _UNANSWERED_PINGS:  # a client that never echoes
                del self._pings[next(iter(self._pings))]

    # -- faults -----------------------------------------------------------------------

    def _decide(
        self, kind: FeedEventKind, tr_id: str | None = None, tr_key: str | None = None
    ) -> Decision | None:
        if self._closing():
            return None
        return self.feed.decide(kind, self.number, tr_id, tr_key)

    def _event(
        self, kind: FeedEventKind, tr_id: str | None = None, tr_key: str | None = None
    ) -> bool:
        """Let the fault plan act at a non-frame event; False if the connection is going."""
        decision = self._decide(kind, tr_id, tr_key)
        return decision is None or self._apply_to_connection(decision)

    def _apply_to_connection(self, decision: Decision) -> bool:
        """Apply a connection-level action (on this or every connection); False when the
        connection is going away, so the event that fired it is dropped."""
        action = decision.action
        label = decision.label
        if isinstance(action, Restart):
            self._journal("fault", fault=label, detail=f"restart: down {action.seconds:g} s")
            try:
                self.feed.restart(self.ws.scope, action.seconds)
            except WireUnavailable as exc:
                self._journal("fault", fault=label, outcome="not applied", detail=str(exc))
                return True
            return False
        if not isinstance(action, FeedClose | FeedReset | Stall | SlowReader):
            return True  # a frame or subscribe action: the caller applies it
        targets = list(self.feed.sessions()) if action.all_connections else [self]
        for session in targets:
            session._suffer(action, label)
        return not isinstance(action, FeedClose | FeedReset)

    def _suffer(self, action: FeedClose | FeedReset | Stall | SlowReader, label: str) -> None:
        if self._closing():
            return
        if isinstance(action, FeedClose):
            self._journal("fault", fault=label, code=str(action.code), detail=action.reason)
            self._spawn(self._close(action.code, action.reason))
        elif isinstance(action, FeedReset):
            self._journal("fault", fault=label, outcome="reset")
            self._reset_wire()
        elif isinstance(action, Stall):
            self._journal("fault", fault=label, detail=_seconds(action.seconds, "stall"))
            self._stall(action.seconds)
        else:
            self._journal("fault", fault=label, detail=_seconds(action.seconds, "slow reader"))
            self._hold_reading("slow-reader", action.seconds)

    def _stall(self, seconds: float | None) -> None:
        self._live.clear()
        self._hold_reading("stall", seconds)
        if self._stall_end is not None:
            self._stall_end.cancel()
            self._stall_end = None
        if seconds is not None:
            self._stall_end = asyncio.get_running_loop().call_later(seconds, self._live.set)

    def _hold_reading(self, reason: str, seconds: float | None) -> None:
        previous = self._read_holds.get(reason)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        end = loop.call_later(seconds, self._release_reading, reason) if seconds else None
        self._read_holds[reason] = end
        self._pause_reading()

    def _release_reading(self, reason: str) -> None:
        self._read_holds.pop(reason, None)
        if not self._read_holds:
            with contextlib.suppress(WireUnavailable):
                wire.transport_of(self.ws.scope).resume_reading()

    def _pause_reading(self) -> None:
        # Without a real socket (an in-process test client) there is nothing to pause.
        with contextlib.suppress(WireUnavailable):
            wire.transport_of(self.ws.scope).pause_reading()

    def _reset_wire(self) -> None:
        self.cut()
        with contextlib.suppress(WireUnavailable):
            wire.reset(self.ws.scope)

    def cut(self) -> None:
        """The connection is about to be cut below WebSocket (a reset, a restart): it ends
        with 1006, the code for a connection lost without a close frame."""
        if self._close_code is None:
            self._close_code = 1006

    def _closing(self) -> bool:
        return self._close_code is not None

    async def _close(self, code: int, reason: str) -> None:
        if self._closing():
            return
        self._close_code = code
        sender = self._sender
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()
        with contextlib.suppress(*_DISCONNECTED):
            await self.ws.close(code, reason)

    # -- journal ----------------------------------------------------------------------

    def _journal(self, kind: FeedEntryKind, **fields: Any) -> FeedEntry:
        if self._silent:
            return FeedEntry(0, 0.0, self.number, kind)  # a stand-in once the journal is reset
        return self.feed.journal.record(
            at=round(self.feed.clock.now(), 6), connection=self.number, kind=kind, **fields
        )


def _seconds(seconds: float | None, what: str) -> str:
    return f"{what}: {seconds:g} s" if seconds is not None else f"{what}: until dropped"


def _cipher(seed: int, number: int) -> Cipher:
    """The AES key and IV in this connection's acks: fixed per connection, seeded."""
    rng = random.Random(f"squall-feed:{seed}:cipher:{number}")
    key = "".join(rng.choices(string.ascii_lowercase, k=32))
    return Cipher(key=key, iv=f"{rng.getrandbits(64):016x}")


def _peer(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{websocket.url.path} from {client.host}" if client else websocket.url.path


def _scrubbed(text: str) -> str:
    """An excerpt of a message that isn't JSON, with anything like an approval key replaced
    by its fingerprint: a broken subscribe message still carries the secret."""
    excerpt = protocol.UUID_SHAPE.sub(lambda match: fingerprint(match.group()), text[:_EXCERPT])
    return _KEY_VALUE.sub(lambda match: match.group(1) + fingerprint(match.group(2)), excerpt)
