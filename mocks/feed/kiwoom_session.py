"""Kiwoom's realtime connections (``kiwoom_protocol``) on the feed app, at ``PATH``.

A ``KiwoomSession`` is a ``Session`` (the KIS connection) speaking another protocol: it
inherits the four tasks (reader, emitter, pinger, sender), the connection numbering, the
fault model (``mocks.faults.feed``: close, reset, stall, slow reader, restart, delay,
duplicate, reorder, gap, malformed, reject), the backlog limit and the journal, and
overrides only what is said on the wire. So a feed fault rule applies to Kiwoom
connections as to KIS ones: it matches ``tr_id`` "0B" (the type) and ``tr_key`` the item
for REAL messages and registrations, "LOGIN" and "PING" for those messages.

Decisions (the public sources leave them open):

- Tokens: with the broker's ``TokenBook`` (``create_feed_app(tokens=...)``, as
  ``mocks.world`` passes it) only a live token it issued logs in; without one, any
  non-empty token does (as the KIS channel's "uuid" approval policy). A failed LOGIN gets
  8005 and the connection is closed with 1008. The token is checked at LOGIN only: a
  session outlives its token, as a KIS session outlives its approval key.
- Before LOGIN only LOGIN and PING are served; a REG or REMOVE gets MOCK_NOT_LOGGED_IN and
  the connection stays, so a client that logs in late still can.
- One REAL message per step per registered item (Kiwoom's ``data`` list could carry
  several; one each keeps the fault model's unit, a frame, one item's step). No snapshot on
  REG: data starts at the next step, as on the KIS channel. ``records_per_frame`` does
  not apply. A VI-halted item sends no 0B, as the KIS channel sends no H0STCNT0.
- Heartbeat: ``{"trnm": "PING"}`` every ``ping_interval_s``. A client PING while a server
  PING is unanswered is taken as its echo (journaled "echoed"); any other client PING is
  echoed back unchanged. Kiwoom's own client echoes every PING it gets and sends none of its
  own, so this never ping-pongs with it.
- Registrations: at most ``max_subscriptions`` distinct (type, item) pairs per session,
  over all groups; a REG beyond it gets MOCK_TOO_MANY and changes nothing.
- No one-session-per-app-key rule (KIS's OPSP8996): Kiwoom documents none.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from starlette.websockets import WebSocket

from mocks.broker.tokens import Token, TokenCheck
from mocks.faults import Reject
from mocks.faults.feed import FeedEventKind
from mocks.feed import kiwoom_protocol as kw
from mocks.feed import protocol
from mocks.feed.protocol import TRADES as KIS_TRADES
from mocks.feed.session import Session, _Outgoing
from mocks.feed.state import Feed

PATH = "/api/dostk/websocket"
LOGIN_FAILED_CLOSE = 1008  # policy violation; the code Kiwoom closes with is unpublished


class TokenRegistry(Protocol):
    """The broker's live tokens; the mock broker's ``tokens`` (a ``TokenBook``) is one.
    ``validate`` raises ``TokenCheck`` for a token that isn't live."""

    def validate(self, value: str, appkey: str | None, now: float) -> Token: ...


class KiwoomVenue:
    """The Kiwoom connections of one feed app. Its sessions are the feed's (``Feed.open``),
    so a control-plane reset, ``/connections`` and all-connection faults include them."""

    def __init__(self, feed: Feed, tokens: TokenRegistry | None = None) -> None:
        self.feed = feed
        self.tokens = tokens

    async def serve(self, websocket: WebSocket) -> None:
        await KiwoomSession(self, websocket).run()

    def login(self, token: str) -> tuple[bool, str | None]:
        """Whether ``token`` logs in, and the app key behind it (None without a broker)."""
        if not token:
            return False, None
        if self.tokens is None:
            return True, None
        try:
            # The broker's and the feed's clocks share an origin and run on one loop.
            found = self.tokens.validate(token, None, self.feed.clock.now())
        except TokenCheck:
            return False, None
        return True, found.appkey


class KiwoomSession(Session):
    def __init__(self, venue: KiwoomVenue, websocket: WebSocket) -> None:
        super().__init__(venue.feed, websocket)
        self.venue = venue
        self.logged_in = False
        self.registrations = kw.Registrations(venue.feed.config.max_subscriptions)
        self._heartbeats = 0

    # -- reading ----------------------------------------------------------------------

    def _handle(self, text: str) -> None:
        parsed = kw.parse_client_message(text, max_chars=self.feed.config.max_message_chars)
        if isinstance(parsed, kw.Ping):
            self._ping(parsed)
        elif isinstance(parsed, kw.Login):
            self._login(parsed)
        elif isinstance(parsed, kw.Invalid):
            # Never the text itself: a broken LOGIN still carries the token.
            self._journal(
                "message",
                tr_id=parsed.trnm or None,
                outcome="invalid",
                detail=f"{len(text)} characters",
            )
            if self._event("message", parsed.trnm or None):
                self._answer(parsed.trnm, parsed.code, parsed.detail)
        else:
            self._register(parsed)

    def _ping(self, ping: kw.Ping) -> None:
        self._journal("message", tr_id=kw.PING, outcome="pingpong", detail=ping.text[:200])
        if self._pings:  # the echo of the oldest unanswered heartbeat
            entry = self._pings.pop(next(iter(self._pings)))
            entry.outcome = "echoed"
            self._event("message", kw.PING)
            return
        if self._event("message", kw.PING):
            self._enqueue(_Outgoing(ping.text, "pingpong", kw.PING, outcome="echo"))

    def _login(self, login: kw.Login) -> None:
        self._journal("message", tr_id=kw.LOGIN, outcome=kw.LOGIN, message=login.as_message())
        if not self._event("message", kw.LOGIN):
            return
        ok, appkey = self.venue.login(login.token)
        if not ok:
            self._answer(kw.LOGIN, kw.TOKEN_INVALID, kw.message(kw.TOKEN_INVALID))
            self._enqueue(_Outgoing("login failed", "close", close_code=LOGIN_FAILED_CLOSE))
            return
        self.logged_in = True
        self.appkey = appkey
        self._answer(kw.LOGIN, kw.OK, kw.LOGIN_OK)

    def _register(self, request: kw.Registration) -> None:
        single = request.pairs[0] if len(request.pairs) == 1 else (None, None)
        self._journal(
            "message",
            tr_id=single[0],
            tr_key=single[1],
            outcome=request.action,
            message=request.as_message(),
        )
        trnm = request.action
        if not self.logged_in:
            self._answer(trnm, kw.MOCK_NOT_LOGGED_IN, kw.message(kw.MOCK_NOT_LOGGED_IN), *single)
            return
        kind: FeedEventKind = "subscribe" if request.action == kw.REG else "unsubscribe"
        for pair in request.pairs:
            decision = self._decide(kind, *pair)
            if decision is None:
                continue
            if isinstance(decision.action, Reject):
                reject = decision.action
                code = int(reject.code) if reject.code.isdigit() else kw.MOCK_REJECTED
                text = reject.message or kw.message(code)
                self._answer(trnm, code, text, *pair, fault=decision.label)
                return
            if not self._apply_to_connection(decision):
                return
        problem = kw.check(request, self.feed.market.instruments)
        if problem is not None:
            self._answer(trnm, *problem, *single)
            return
        before = set(self.registrations.active())
        code = self.registrations.apply(request)
        if code != kw.OK:
            self._answer(trnm, code, kw.message(code, self.registrations.limit), *single)
            return
        active = self.registrations.active()
        for key in set(active) - before:
            # Data starts at the next step boundary: no snapshot on REG, as on KIS's channel.
            self._next_step[key] = self.feed.step() + 1
        for key in before - set(active):
            self._next_step.pop(key, None)
            self._held.pop(key, None)
        self._mirror(active)
        self._answer(trnm, kw.OK, "", *single)

    def _mirror(self, active: list[tuple[str, str]]) -> None:
        """Copy the registrations into the KIS-shaped ``subscriptions`` the control plane's
        ``/connections`` lists (type as tr_id, item as tr_key)."""
        mirror = protocol.Subscriptions(max(len(active), 1))
        for kind, item in active:
            mirror.apply(protocol.Subscription("", "P", "subscribe", kind, item))
        self.subscriptions = mirror

    def _answer_invalid(self, invalid: protocol.Invalid) -> None:
        # The base reader calls this for a binary message or a message it failed on.
        why = "binary messages are not read; send text"
        self._answer("", kw.BAD_INPUT, kw.message(kw.BAD_INPUT, "message", why))

    def _answer(
        self,
        trnm: str,
        code: int,
        text: str,
        tr_id: str | None = None,
        tr_key: str | None = None,
        *,
        fault: str | None = None,
    ) -> None:
        item = _Outgoing(
            kw.answer(trnm, code, text),
            "ack",
            tr_id or trnm or None,
            tr_key,
            code=str(code),
            fault=fault,
            detail=text if code != kw.OK else None,
            meaning=kw.meaning(trnm, code),
        )
        self._enqueue(item)

    # -- emitting ---------------------------------------------------------------------

    def _emit(self, step: int) -> None:
        """A REAL message per registered item per step, from its next step up to ``step``
        (a late wake-up's backlog included); none for a halted item's steps."""
        tape = self.feed.tape
        for key in self.registrations.active():
            first = self._next_step.get(key, step + 1)
            if first > step:
                continue
            self._next_step[key] = step + 1
            for due in range(first, step + 1):
                if not tape.sends(KIS_TRADES, key[1], due):
                    continue
                self._frame(key, [tape.record(KIS_TRADES, key[1], due)], due)
                if not self._live.is_set() or self._closing():
                    return

    def _frame_text(self, key: tuple[str, str], records: list[tuple[str, ...]]) -> str:
        # One REAL message per item per step: the emit loop hands over one record at a time
        # (records_per_frame does not apply to Kiwoom).
        kind, code = key
        base_price = self.feed.market.instrument(code).base_price
        return kw.real(kind, code, kw.trade_values(records[0], base_price))

    # -- heartbeat --------------------------------------------------------------------

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.feed.config.ping_interval_s)
            if not self._live.is_set():
                continue  # a stalled connection sends no heartbeat either
            if not self._event("pingpong", kw.PING):
                return
            self._heartbeats += 1
            # The detail names the heartbeat, so its echo can mark its journal entry.
            label = f"heartbeat {self._heartbeats}"
            self._enqueue(_Outgoing(kw.ping(), "pingpong", kw.PING, detail=label))
