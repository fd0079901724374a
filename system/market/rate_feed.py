"""``RateFeedClient``: currency-pair quotes from an FX venue's ticker stream.

The venue speaks Kraken's WebSocket API v2 ``ticker`` channel (``system.market
.rate_protocol``). One task holds one connection at a time, as ``FeedClient`` does, with
less to do (no approval key, no per-pair registrations to track, nothing to resync: a
ticker snapshot after every subscribe is the venue's own resync):

- **Connect**: open the WebSocket and subscribe every pair in one request.
- **Read**: every ticker message; each quote becomes a ``RateQuote`` stamped with the loop
  time it arrived, is kept as its pair's latest and is given to every listener, in order.
  Heartbeats and the status message only show the connection is alive.
- **Refused pairs** (an error answer, "Currency pair not supported …") are counted and
  shown in ``status().detail``; they are asked again on the next connection only.
- **Stall**: nothing at all for ``stall_after_s`` → the connection is dropped.
- **Reconnect**: any ending → a jittered, doubling delay → connect and subscribe again. The
  delay starts over once a connection has delivered a quote.

Malformed messages are dropped and counted (``rates_malformed_messages``), a ticker
message whole; nothing a server sends ends the task. All timing is on the event loop's
clock, so the client runs on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from dataclasses import dataclass

from system.broker.backoff import jittered_backoff
from system.broker.clock import loop_time
from system.lifecycle import Lifecycle
from system.market.connection import Connect, Connection, connect_websocket
from system.market.errors import FeedProtocolError, FeedUnavailable
from system.market.model import FEED_STATE_CODES, FeedState, FeedStatus, RateListener, RateQuote
from system.market.rate_protocol import (
    Answer,
    Heartbeat,
    Ticker,
    parse_message,
    subscribe_message,
)
from system.market.reconnect import (
    ConnectionLost,
    close_within,
    describe,
    read_until_silent,
)
from system.market.settings import RateFeedSettings

log = logging.getLogger(__name__)


@dataclass
class _Counters:
    # Field names are metric names without their "rates_" prefix; see RateFeedClient.metrics.
    messages: int = 0
    quotes: int = 0
    heartbeats: int = 0
    malformed_messages: int = 0
    pairs_refused: int = 0
    connect_attempts: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    stalls: int = 0
    listener_errors: int = 0


def metric_names() -> tuple[str, ...]:
    """Every name ``RateFeedClient.metrics()`` reports, known without a running client."""
    return (
        *(f"rates_{field.name}" for field in dataclasses.fields(_Counters)),
        "rates_pairs",
        "rates_state",
    )


class RateFeedClient(Lifecycle):
    """Quotes of ``settings.pairs`` from the venue at ``settings.url``; see the module.

    - ``connect``: opens a ``Connection`` to a URL; the test seam (default: websockets).
    - ``rng``: jitters the reconnect delays; seed it to make a scenario repeatable.

    Use ``async with`` (or ``start()`` and ``aclose()``).
    """

    def __init__(
        self,
        settings: RateFeedSettings,
        *,
        connect: Connect = connect_websocket,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._connect = connect
        self._rng = rng or random.Random()
        self._listeners: list[RateListener] = []
        self._latest: dict[str, RateQuote] = {}
        self._refused: dict[str, str] = {}  # pair -> why, on this connection
        self._counts = _Counters()
        self._state: FeedState = "stopped"
        self._since = 0.0
        self._detail = ""
        self._last_message_at: float | None = None
        self._ever_live = False
        self._attempt = 0
        self._runner: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background (idempotent); needs a running event loop."""
        if self._closed:
            raise RuntimeError("this rate feed client was closed; create a new RateFeedClient")
        if self._runner is None:
            self._set_state("connecting", "")
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="rate-feed")

    async def aclose(self) -> None:
        """Stop the client and close its connection (idempotent)."""
        self._closed = True
        tasks = [task for task in (self._runner, *self._closing) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None
        self._set_state("stopped", "closed")

    # -- what it gives ----------------------------------------------------------------------

    def add_listener(self, listener: RateListener) -> None:
        """Call ``listener`` with every quote, in the client's task: it must not block."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RateListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def latest(self, pair: str) -> RateQuote | None:
        """The last quote of ``pair``, or None."""
        return self._latest.get(pair)

    def status(self) -> FeedStatus:
        details = [self._detail] if self._detail else []
        details += [f"{pair} refused: {why}" for pair, why in sorted(self._refused.items())]
        return FeedStatus(
            state=self._state,
            since=self._since,
            subscriptions=self.settings.pairs,
            reconnects=self._counts.reconnects,
            last_message_at=self._last_message_at,
            detail="; ".join(details),
            refused=tuple(sorted(self._refused.items())),
        )

    def metrics(self) -> dict[str, float]:
        """Counters with stable names, for scenario expectations.

        - ``rates_messages``: server messages received; ``rates_malformed_messages`` of
          them dropped as not matching the protocol.
        - ``rates_quotes``: quotes accepted and given to the listeners.
        - ``rates_heartbeats``: heartbeats received.
        - ``rates_pairs_refused``: error answers to a pair's subscription.
        - ``rates_connect_attempts`` / ``rates_connect_failures``: connections tried / that
          never opened; ``rates_reconnects``: connections opened after the first one;
          ``rates_stalls``: connections dropped for silence.
        - ``rates_listener_errors``: listener calls that raised.
        - ``rates_pairs``: pairs followed; ``rates_state``: 0 live, 1 connecting,
          2 reconnecting, 3 stalled, 4 stopped (as ``feed_state``).
        """
        values = {f"rates_{name}": float(n) for name, n in vars(self._counts).items()}
        values["rates_pairs"] = float(len(self.settings.pairs))
        values["rates_state"] = float(FEED_STATE_CODES[self._state])
        return values

    # -- the connection's life ------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._counts.connect_attempts += 1
            try:
                async with asyncio.timeout(self.settings.connect_timeout_s):
                    connection = await self._connect(self.settings.url)
            except Exception as error:
                self._counts.connect_failures += 1
                await self._back_off(ConnectionLost(self._describe(error)))
                continue
            if self._ever_live:
                self._counts.reconnects += 1
            self._ever_live = True
            lost: ConnectionLost | None = None
            try:
                lost = await self._serve(connection)
            finally:
                if lost is not None and lost.stalled:
                    # A silent peer won't answer the closing handshake either; waiting for
                    # it would add the whole close timeout to the outage.
                    closing = asyncio.get_running_loop().create_task(self._close(connection))
                    self._closing.add(closing)
                    closing.add_done_callback(self._closing.discard)
                else:
                    await self._close(connection)
            await self._back_off(lost)

    async def _close(self, connection: Connection) -> None:
        await close_within(connection, self.settings.connect_timeout_s)

    async def _serve(self, connection: Connection) -> ConnectionLost:
        self._refused.clear()
        self._set_state("live", "")
        connected_at = loop_time()

        def heard() -> float:
            return max(connected_at, self._last_message_at or connected_at)

        try:
            await connection.send(subscribe_message(self.settings.pairs))
            await read_until_silent(
                connection,
                self._handle,
                heard=heard,
                stall_after_s=self.settings.stall_after_s,
                silence="neither a quote nor a heartbeat",
            )
        except ConnectionLost as lost:
            return lost
        except FeedUnavailable as error:
            return ConnectionLost(error.message)
        except Exception as error:
            # A bug here must not end the feed for good: replace the connection instead.
            log.exception("rate feed: unexpected error; replacing the connection")
            return ConnectionLost(f"unexpected {self._describe(error)}")

    async def _back_off(self, lost: ConnectionLost) -> None:
        if lost.stalled:
            self._counts.stalls += 1
        self._attempt += 1
        delay = jittered_backoff(
            self._attempt,
            base_s=self.settings.backoff_base_s,
            max_s=self.settings.backoff_max_s,
            rng=self._rng,
        )
        state: FeedState = "reconnecting" if self._ever_live else "connecting"
        self._set_state(
            "stalled" if lost.stalled else state, f"{lost.reason}; retry in {delay:.1f} s"
        )
        await asyncio.sleep(delay)

    # -- what the server says -------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        now = loop_time()
        self._counts.messages += 1
        try:
            message = parse_message(text, at=now)
        except FeedProtocolError as error:
            self._counts.malformed_messages += 1
            log.debug("rate feed: %s", error.message)
            return
        self._last_message_at = now
        if isinstance(message, Ticker):
            self._on_ticker(message)
        elif isinstance(message, Answer):
            self._on_answer(message)
        elif isinstance(message, Heartbeat):
            self._counts.heartbeats += 1

    def _on_ticker(self, ticker: Ticker) -> None:
        for quote in ticker.quotes:
            if quote.pair not in self.settings.pairs:
                continue  # sent before an unsubscribe reached the venue, or not ours
            self._attempt = 0  # this connection works: the next loss backs off from the base
            self._counts.quotes += 1
            self._latest[quote.pair] = quote
            for listener in list(self._listeners):
                try:
                    listener(quote)
                except Exception:
                    # One broken consumer must not stop the feed or starve the others.
                    self._counts.listener_errors += 1
                    log.exception("rate feed: listener %r failed", listener)

    def _on_answer(self, answer: Answer) -> None:
        if answer.ok or answer.method != "subscribe":
            return
        self._counts.pairs_refused += 1
        self._refused[answer.symbol or "?"] = answer.error

    # -- status ---------------------------------------------------------------------------

    def _set_state(self, state: FeedState, detail: str) -> None:
        if state != self._state:
            self._since = loop_time()
        self._state, self._detail = state, detail

    def _describe(self, error: BaseException) -> str:
        return describe(error, connect_timeout_s=self.settings.connect_timeout_s)
