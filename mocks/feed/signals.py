"""The signals channel (``signals_protocol``) on the feed app, at ``PATH``: the seed's
simulated prices and VCP / closing-bet signals, by probability or on cue.

A ``ChannelSession`` (``mocks.feed.channel``: reader, emitter and sender, the backlog
limit, the journal), as the FX channel's: the reader answers client messages; the emitter
runs a round every ``signal_interval_s`` of the feed's clock, sending each subscribed
ticker's price and the signals drawn for it. A cue
(``SignalVenue.cue``, the control plane's ``POST /_squall/feed/signals``) puts a signal in
the outbox of every connection subscribed to its ticker, at once.

Decisions (the seed leaves them open):

- Rounds fall on one grid of the feed's clock (round n at n × ``signal_interval_s``), not
  on each connection's own timer, and a round's numbers are those of the market step at
  its time (``feed.tape``'s H0STCNT0 record): every connection subscribed to a ticker gets
  the same prices and the same signals at the same rounds, and a round's draw
  (``signals_protocol.fired``: seed, ticker, round number) doesn't depend on who listens.
  A round is keyed by its number rather than its step because a round shorter than a step
  would otherwise repeat the step's draw.
- No price on subscribe: the first comes with the next round. A VI-halted ticker sends no
  price and draws no signal (nothing trades); a cue still reaches it.
- Subscribing twice answers "subscribed" again and sends one stream; unsubscribing a listed
  ticker that isn't subscribed answers "unsubscribed" (the result is the same, as for
  Kiwoom's REMOVE). No limit per connection beyond the market's listing.
- The channel takes no fault rules (the feed's rules match the KIS channel's tr_ids and
  Kiwoom's types) and has no heartbeat of its own: a ``ping`` gets a ``pong``.
- Journal (the feed's, connection numbers the feed server's): ``connect``/``disconnect``;
  each client message as ``message`` (``tr_id`` "signals", ``tr_key`` the ticker, ``outcome``
  subscribe, unsubscribe, ping or invalid; an invalid message by its length only, never its
  text); each answer as ``ack`` (``code`` subscribed, unsubscribed, pong or the error's;
  ``meaning`` subscribed or unsubscribed, as on the other channels); each price and signal
  as ``frame`` (``tr_id`` "price", "vcp" or "closing_bet", ``step``, ``detail`` "drawn" or
  "cued" for a signal), when written.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Message
from starlette.websockets import WebSocket

from mocks.feed import signals_protocol as sp
from mocks.feed.channel import ChannelSession, ChannelVenue, Outgoing
from mocks.feed.protocol import TRADES
from mocks.feed.signals_protocol import Invalid, Ping, Quote, SignalKind, TickerRequest
from mocks.feed.state import Feed
from mocks.vocabulary import FeedMeaning

logger = logging.getLogger(__name__)

PATH = "/ws"  # the seed's
CHANNEL = "signals"  # tr_id of the channel's messages and answers in the journal


class SignalCue(BaseModel):
    """The body of ``POST /_squall/feed/signals``: send ``signal`` for ``ticker`` now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signal: SignalKind
    ticker: str = Field(pattern=r"^[0-9]{6}$")
    # What the message's reason says instead of "cued by the control plane".
    reason: str | None = Field(default=None, min_length=1, max_length=200)


@dataclass(frozen=True)
class CueResult:
    quote: Quote
    reached: int  # connections subscribed to the ticker whose outbox took the signal


class SignalVenue(ChannelVenue["SignalSession"]):
    """The signals connections of one feed app; a control-plane reset drops them all."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed)
        config = feed.config
        self.probabilities: dict[SignalKind, float] = {
            "vcp": config.vcp_probability,
            "closing_bet": config.closing_bet_probability,
        }

    async def serve(self, websocket: WebSocket) -> None:
        await SignalSession(self, websocket).run()

    def quote(self, ticker: str, step: int) -> Quote:
        return sp.quote(self.feed.tape.record(TRADES, ticker, step))

    def cue(self, kind: SignalKind, ticker: str, reason: str | None = None) -> CueResult:
        """Send ``kind`` for ``ticker`` (listed) to every connection subscribed to it, with
        the price of the current step. Raises ``UnknownInstrument`` for a ticker the market
        doesn't list (``signals_protocol.check`` says so in words)."""
        self.feed.market.instrument(ticker)
        step = self.feed.step()
        at = self.quote(ticker, step)
        text = sp.signal(kind, at, reason or sp.cued_reason(kind))
        item = Outgoing(text, "frame", kind, ticker, step=step, detail="cued")
        reached = sum(
            session._enqueue(item) for session in list(self.sessions) if ticker in session.tickers
        )
        return CueResult(at, reached)


class SignalSession(ChannelSession[SignalVenue]):
    label = "signals"

    def __init__(self, venue: SignalVenue, websocket: WebSocket) -> None:
        super().__init__(venue, websocket)
        self.tickers: dict[str, None] = {}  # subscribed, in order (an ordered set)

    # -- reading ----------------------------------------------------------------------

    def _received(self, message: Message) -> None:
        text = message.get("text")
        try:
            if text is None:
                size = len(message.get("bytes") or b"")
                detail = f"binary, {size} bytes"
                self._journal("message", tr_id=CHANNEL, outcome="invalid", detail=detail)
                self._answer_invalid(Invalid(sp.NOT_JSON, "binary messages are not read"))
            else:
                self._handle(text)
        except Exception:
            # A bug here must not take the connection down with it; the log shows it.
            logger.exception("signals connection %d: could not handle a message", self.number)
            self._answer_invalid(Invalid(sp.INTERNAL, "the mock failed on this message"))

    def _handle(self, text: str) -> None:
        parsed = sp.parse_client_message(text, max_chars=self.feed.config.max_message_chars)
        if isinstance(parsed, Ping):
            self._journal("message", tr_id=CHANNEL, outcome="ping")
            self._enqueue(Outgoing(sp.pong(), "ack", CHANNEL, code="pong"))
        elif isinstance(parsed, Invalid):
            # The length only: the text is the client's, and may hold anything.
            detail = f"{len(text)} characters"
            self._journal("message", tr_id=CHANNEL, outcome="invalid", detail=detail)
            self._answer_invalid(parsed)
        else:
            self._request(parsed)

    def _request(self, request: TickerRequest) -> None:
        ticker = request.ticker
        self._journal(
            "message",
            tr_id=CHANNEL,
            tr_key=ticker,
            outcome=request.action,
            message=request.as_message(),
        )
        problem = sp.check(ticker, self.feed.market.instruments)
        if problem is not None:
            self._answer_invalid(problem, ticker)
            return
        if request.action == "subscribe":
            self.tickers[ticker] = None  # prices start with the next round
        else:
            self.tickers.pop(ticker, None)
        answered: FeedMeaning = "subscribed" if request.action == "subscribe" else "unsubscribed"
        text = sp.answer(request)
        self._enqueue(Outgoing(text, "ack", CHANNEL, ticker, code=answered, meaning=answered))

    def _answer_invalid(self, problem: Invalid, ticker: str | None = None) -> None:
        text = sp.error(problem)
        item = Outgoing(text, "ack", CHANNEL, ticker, code=problem.code, detail=problem.message)
        self._enqueue(item)

    # -- emitting ---------------------------------------------------------------------

    async def _emit_loop(self) -> None:
        clock = self.feed.clock
        interval = self.feed.config.signal_interval_s
        done = math.floor(clock.now() / interval)  # the round under way when we connected
        while True:
            # A hair past the round's time, so the clock has surely reached it when we wake.
            await asyncio.sleep(max(0.0, (done + 1) * interval - clock.now()) + 1e-6)
            due = math.floor(clock.now() / interval)
            for number in range(done + 1, due + 1):  # a late wake-up sends what it missed
                self._round(number)
            done = max(done, due)

    def _round(self, number: int) -> None:
        """Round ``number``: each subscribed ticker's price at the round's step, then the
        signals drawn for it."""
        feed = self.feed
        step = feed.market.step_at(number * feed.config.signal_interval_s)
        for ticker in list(self.tickers):
            if not feed.tape.sends(TRADES, ticker, step):
                continue  # halted: nothing trades
            at = self.venue.quote(ticker, step)
            self._enqueue(Outgoing(sp.price(at), "frame", "price", ticker, step=step))
            for kind in sp.fired(feed.config.seed, ticker, number, self.venue.probabilities):
                reason = sp.drawn_reason(kind, self.venue.probabilities[kind])
                text = sp.signal(kind, at, reason)
                self._enqueue(Outgoing(text, "frame", kind, ticker, step=step, detail="drawn"))
