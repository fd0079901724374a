"""The FX venue's ticker connections (``fx_protocol``): one ``FxSession`` per client.

Served by the feed app beside the KIS channel (``/v2``, as Kraken's endpoint is
``wss://ws.kraken.com/v2``), on the same clock, the same seed and the same market events,
so a ``mispricing`` the broker's control plane injects shows in the quotes at its step.

A ``ChannelSession`` (``mocks.feed.channel``: reader, emitter and sender, the backlog
limit, the journal): the reader answers requests; the emitter sends, at every step, an
update for each subscribed pair whose best bid or ask changed (Kraken's ``event_trigger:
bbo``), or a heartbeat when none did. The connection opens with Kraken's status message.
Requests, answers and ticker messages are journaled in the feed's journal with ``tr_id``
"ticker" (the channel) and ``tr_key`` the pair; connection numbers are the feed server's.
The status message and heartbeats are not journaled.

The ticker channel takes no fault rules: the feed's rules (``mocks.faults.feed``) match the
KIS channel's tr_ids and stock codes.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from starlette.types import Message
from starlette.websockets import WebSocket

from mocks.feed import fx_protocol
from mocks.feed.channel import ChannelSession, ChannelVenue, Outgoing
from mocks.feed.fx_protocol import CHANNEL, Invalid, Ping, TickerRequest
from mocks.market import STEP_SECONDS

PATH = "/v2"
NOT_SUBSCRIBED = "Subscription Not Found"  # mock's choice
_EXCERPT = 200


class FxVenue(ChannelVenue["FxSession"]):
    """The ticker connections of one feed app; a control-plane reset drops them all."""

    async def serve(self, websocket: WebSocket) -> None:
        await FxSession(self, websocket).run()


class FxSession(ChannelSession[FxVenue]):
    label = "FX"

    def __init__(self, venue: FxVenue, websocket: WebSocket) -> None:
        super().__init__(venue, websocket)
        # Subscribed pairs, in order, with the (bid, ask) last sent (None: nothing yet).
        self.subscribed: dict[str, tuple[float, float] | None] = {}

    def _greet(self) -> None:
        self._enqueue(Outgoing(fx_protocol.status(self.number)))

    # -- reading ----------------------------------------------------------------------

    def _received(self, message: Message) -> None:
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
            self._enqueue(Outgoing(fx_protocol.pong(parsed, at=self.feed.clock.wall())))
        elif isinstance(parsed, Invalid):
            self._journal("message", outcome="invalid", detail=text[:_EXCERPT])
            self._answer_invalid(parsed)
        else:
            self._journal(
                "message",
                tr_id=CHANNEL,
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
        self._enqueue(Outgoing(text, "ack", CHANNEL, symbol, code="error" if error else "ok"))
        if error is not None or request.method == "unsubscribe" or symbol in self.subscribed:
            return  # a pair already subscribed gets its updates already
        self.subscribed[symbol] = None
        if request.snapshot:
            self._send_quotes(symbol, self.feed.step(), "snapshot")

    def _answer_invalid(self, problem: Invalid) -> None:
        text = fx_protocol.invalid(problem, at=self.feed.clock.wall())
        self._enqueue(Outgoing(text, "ack", CHANNEL))

    # -- emitting ---------------------------------------------------------------------

    async def _emit_loop(self) -> None:
        clock = self.feed.clock
        while True:
            step = self.feed.step()
            sent = [self._send_quotes(pair, step, "update") for pair in list(self.subscribed)]
            if self.subscribed and not any(sent):
                self._enqueue(Outgoing(fx_protocol.HEARTBEAT))
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
        self._enqueue(Outgoing(text, "frame", CHANNEL, pair, step=step, detail=kind))
        return True
