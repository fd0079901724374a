"""``FeedClient``: live prices and order books from a broker's realtime server.

What the messages look like is the broker's ``Dialect`` (``system.market.dialect``): KIS
(``protocol.KIS``, the default) or Kiwoom (``kiwoom_protocol.KIWOOM``). The rest is the
same for both. One task holds one connection at a time and keeps it honest:

- **Connect**: get a credential (KIS: an approval key; Kiwoom: the access token; once, and
  again only after the server refused it), open the WebSocket, say what the dialect says
  first (Kiwoom: LOGIN), register every wanted code (trades; books when asked and the
  dialect reads them).
- **Read**: every record of every data message; echo each heartbeat; answer nothing else.
- **Stall**: neither data nor a heartbeat for ``stall_after_s`` → the connection is dropped.
- **Reconnect**: any ending (close frame, reset, refused connect, failed handshake, stall, a
  refused session) → wait a jittered, doubling delay → connect again → register everything
  wanted (including what was asked while disconnected) → resync every code from REST,
  since trades made while disconnected never arrive on the feed. The delay only starts
  over once a connection has proved itself (an accepted subscription or data), so a server
  that accepts connections and then refuses everything is not hammered.
- **Gaps and duplicates** (``system.market.tape``): a duplicate or out-of-order trade is
  dropped; a gap is kept and its code resynchronised from REST.
- **Refused subscriptions** are counted and shown in ``status().detail``; they are asked
  again on the next connection, never in a loop on the same one.

Malformed messages are dropped and counted; nothing a server sends ends the task. All
timing is on the event loop's clock, so the client runs on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, NoReturn, TypeVar

from system.broker.backoff import jittered_backoff
from system.broker.clock import loop_time
from system.broker.models import check_code
from system.lifecycle import Lifecycle
from system.market.connection import Connect, Connection, connect_websocket
from system.market.dialect import Answer, Data, Dialect, DialectSession, Heartbeat, Registration
from system.market.errors import (
    FeedProtocolError,
    FeedUnavailable,
)
from system.market.model import (
    FEED_STATE_CODES,
    FeedState,
    FeedStatus,
    OrderBook,
    PriceFeed,
    PriceListener,
    PriceUpdate,
    StatusListener,
)
from system.market.protocol import KIS
from system.market.reconnect import (
    ConnectionLost,
    close_within,
    describe,
    read_until_silent,
)
from system.market.records import Trade
from system.market.resync import Resync
from system.market.settings import FeedSettings
from system.market.subscriptions import Subscriptions
from system.market.tape import Tape

log = logging.getLogger(__name__)

T = TypeVar("T")

# Returns the realtime credential: ``KisClient.approval_key`` (a new approval key) or
# ``KiwoomClient.tokens.get`` (the access token).
Credential = Callable[[], Awaitable[str]]


@dataclass
class _Counters:
    # Field names are metric names without their "feed_" prefix; see FeedClient.metrics.
    frames: int = 0
    records: int = 0
    trades: int = 0
    books: int = 0
    duplicates: int = 0
    gaps: int = 0
    resyncs: int = 0
    resyncs_stale: int = 0
    resync_failures: int = 0
    malformed_frames: int = 0
    encrypted_frames: int = 0
    pingpongs: int = 0
    connect_attempts: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    stalls: int = 0
    subscriptions_rejected: int = 0
    sessions_refused: int = 0
    listener_errors: int = 0


def metric_names() -> tuple[str, ...]:
    """Every name ``FeedClient.metrics()`` reports, known without a running client."""
    return (
        *(f"feed_{field.name}" for field in dataclasses.fields(_Counters)),
        "feed_subscriptions",
        "feed_subscriptions_active",
        "feed_state",
    )


class FeedClient(Lifecycle):
    """A ``PriceFeed`` on a broker's realtime WebSocket; see the module docstring.

    - ``credential``: returns what the server logs in with (``Credential``).
    - ``dialect``: the broker's realtime protocol (default KIS's).
    - ``resync``: the REST price of a code (``quote_resync(TradingService.quote)``).
    - ``connect``: opens a ``Connection`` to a URL; the test seam (default: websockets).
    - ``rng``: jitters the reconnect delays; seed it to make a scenario repeatable.

    Use ``async with`` (or ``start()`` and ``aclose()``).
    """

    def __init__(
        self,
        settings: FeedSettings,
        *,
        credential: Credential,
        resync: Resync,
        dialect: Dialect = KIS,
        connect: Connect = connect_websocket,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.dialect = dialect
        self._credential = credential
        self._resync = resync
        self._connect = connect
        self._rng = rng or random.Random()
        self._listeners: list[PriceListener] = []
        self._status_listeners: list[StatusListener] = []
        self._subscriptions = Subscriptions(
            settings.max_subscriptions, trades=dialect.trades, books=dialect.books
        )
        self._notice = ""
        self._prices: dict[str, PriceUpdate] = {}
        self._books: dict[str, OrderBook] = {}
        self._tape = Tape()
        self._counts = _Counters()
        self._state: FeedState = "stopped"
        self._since = 0.0
        self._detail = ""
        self._published: FeedStatus | None = None
        self._last_message_at: float | None = None
        self._key: str | None = None
        self._connection: Connection | None = None
        self._session: DialectSession | None = None
        self._ever_live = False
        self._attempt = 0
        self._runner: asyncio.Task[None] | None = None
        self._resyncs: dict[str, asyncio.Task[None]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background (idempotent); needs a running event loop."""
        if self._closed:
            raise RuntimeError("this feed client was closed; create a new FeedClient")
        if self._runner is not None:
            return
        self._set_state("connecting", "")
        name = f"{self.dialect.name.lower()}-feed"
        self._runner = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def aclose(self) -> None:
        """Stop every task of the client and close its connection (idempotent)."""
        self._closed = True
        tasks = [
            task
            for task in (self._runner, *self._resyncs.values(), *self._closing)
            if task is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None
        self._resyncs.clear()
        if self._connection is not None:  # the runner closes it; this covers a runner never run
            await self._close(self._connection)
            self._connection = None
        self._set_state("stopped", "closed")

    # -- PriceFeed ------------------------------------------------------------------------

    def add_listener(self, listener: PriceListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: PriceListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def add_status_listener(self, listener: StatusListener) -> None:
        self._status_listeners.append(listener)

    async def subscribe(self, code: str, *, book: bool | None = None) -> None:
        """Receive ``code``'s trades, and its order book if ``book`` (default: the
        ``books`` setting); idempotent. ``ValueError`` for a malformed code,
        ``SubscriptionLimitExceeded`` beyond ``max_subscriptions`` registrations.

        Returns once the request is sent (or queued for the next connection), without
        waiting for the server's ack: a refusal shows in ``status()`` and the metrics.
        """
        check_code(code)
        new = self._subscriptions.want(code, book=self.settings.books if book is None else book)
        if new:
            self._publish()
            await self._send_all(new, subscribe=True)

    async def unsubscribe(self, code: str) -> None:
        """Stop receiving ``code`` (trades and book) and forget its price; idempotent."""
        dropped = self._subscriptions.drop(code)
        if not dropped:
            return
        self._tape.forget(code)
        self._prices.pop(code, None)
        self._books.pop(code, None)
        resync = self._resyncs.pop(code, None)
        if resync is not None:
            resync.cancel()
        self._publish()
        await self._send_all(dropped, subscribe=False)

    def latest(self, code: str) -> PriceUpdate | None:
        return self._prices.get(code)

    def book(self, code: str) -> OrderBook | None:
        return self._books.get(code)

    def status(self) -> FeedStatus:
        details = [self._detail] if self._detail else []
        details += self._subscriptions.refusals()
        if self._notice:
            details.append(self._notice)
        return FeedStatus(
            state=self._state,
            since=self._since,
            subscriptions=self._subscriptions.codes(),
            reconnects=self._counts.reconnects,
            last_message_at=self._last_message_at,
            detail="; ".join(details),
            refused=tuple(
                sorted(
                    (code, why)
                    for (tr_id, code), why in self._subscriptions.refused.items()
                    if tr_id == self.dialect.trades
                )
            ),
        )

    def metrics(self) -> dict[str, float]:
        """Counters with stable names, for ``/metrics`` and scenario expectations.

        - ``feed_frames``: data frames received (``feed_encrypted_frames`` of them encrypted,
          which this client cannot read); ``feed_records``: records in the readable ones.
        - ``feed_trades``: trades accepted and published; ``feed_books``: books accepted.
        - ``feed_duplicates``: trades dropped as already seen or out of order;
          ``feed_gaps``: trades after missed ones (each starts a resync unless one runs).
        - ``feed_resyncs``: REST resyncs answered (``feed_resyncs_stale`` of them older than
          what the feed had shown, so not published); ``feed_resync_failures``: failed ones.
        - ``feed_malformed_frames``: server messages dropped as not matching the protocol.
        - ``feed_pingpongs``: heartbeats echoed (KIS PINGPONG, Kiwoom PING).
        - ``feed_connect_attempts`` / ``feed_connect_failures``: connections tried / that
          never opened; ``feed_reconnects``: connections opened after the first one;
          ``feed_stalls``: connections dropped for silence.
        - ``feed_subscriptions``: registrations wanted now (a code counts twice with its
          book); ``feed_subscriptions_active``: of those, acknowledged on this connection;
          ``feed_subscriptions_rejected``: error acks received;
          ``feed_sessions_refused``: sessions the server would not serve (KIS OPSP8996:
          the appkey is in use by another session; Kiwoom: the LOGIN was refused).
        - ``feed_listener_errors``: listener calls that raised.
        - ``feed_state``: 0 live, 1 connecting, 2 reconnecting, 3 stalled, 4 stopped.
        """
        values = {f"feed_{name}": float(n) for name, n in vars(self._counts).items()}
        values["feed_subscriptions"] = float(len(self._subscriptions))
        values["feed_subscriptions_active"] = float(len(self._subscriptions.active))
        values["feed_state"] = float(FEED_STATE_CODES[self._state])
        return values

    # -- the connection's life ------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._counts.connect_attempts += 1
            try:
                connection, key = await self._open()
            except ConnectionLost as lost:
                self._counts.connect_failures += 1
                await self._back_off(lost)
                continue
            resumed = self._ever_live
            if resumed:
                self._counts.reconnects += 1
            self._ever_live = True
            ended: ConnectionLost | None = None
            try:
                ended = await self._serve(connection, key, resumed=resumed)
            finally:
                self._connection = None
                if ended is not None and ended.stalled:
                    # A silent peer won't answer the closing handshake either; waiting for
                    # it would add the whole close timeout to the outage.
                    closing = asyncio.get_running_loop().create_task(self._close(connection))
                    self._closing.add(closing)
                    closing.add_done_callback(self._closing.discard)
                else:
                    await self._close(connection)
            await self._back_off(ended)

    async def _open(self) -> tuple[Connection, str]:
        if self._key is None:
            try:
                self._key = await self._credential()
            except Exception as error:
                raise ConnectionLost(
                    f"no realtime {self.dialect.credential}: {self._describe(error)}"
                ) from error
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                connection = await self._connect(self.settings.url)
        except Exception as error:
            raise ConnectionLost(self._describe(error)) from error
        return connection, self._key

    async def _serve(self, connection: Connection, key: str, *, resumed: bool) -> ConnectionLost:
        """Register everything, then read until the connection ends; why it ended."""
        self._connection = connection
        self._session = session = self.dialect.session(key, custtype=self.settings.custtype)
        registrations = self._subscriptions.new_connection()
        self._notice = ""
        connected_at = loop_time()
        if resumed:
            self._tape.resume()
        self._set_state("live", "")
        try:
            for text in session.opening():
                await connection.send(text)
            await self._send_all(registrations, subscribe=True, strict=True)
            if resumed and self.settings.resync_on_reconnect:
                for code in self._subscriptions.codes():
                    self._start_resync(code)
            await self._receive(connection, connected_at)
        except ConnectionLost as lost:
            return lost
        except FeedUnavailable as error:
            return ConnectionLost(error.message)
        except Exception as error:
            # A bug here must not end the feed for good: replace the connection instead.
            log.exception("realtime feed: unexpected error; replacing the connection")
            return ConnectionLost(f"unexpected {self._describe(error)}")

    async def _receive(self, connection: Connection, connected_at: float) -> NoReturn:
        def heard() -> float:
            return max(connected_at, self._last_message_at or connected_at)

        try:
            await read_until_silent(
                connection,
                partial(self._handle, connection),
                heard=heard,
                stall_after_s=self.settings.stall_after_s,
                silence="neither data nor a heartbeat",
            )
        except ConnectionLost as lost:
            if lost.stalled:  # not a refusal raised while handling a message
                self._counts.stalls += 1
            raise

    async def _back_off(self, lost: ConnectionLost) -> None:
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
        if lost.stalled:
            self._set_state(state, f"{lost.reason}; reconnecting")

    async def _close(self, connection: Connection) -> None:
        await close_within(connection, self.settings.connect_timeout_s)

    async def _send_all(
        self, registrations: list[Registration], *, subscribe: bool, strict: bool = False
    ) -> None:
        """(Un)register ``registrations`` on the current connection, if any.

        Outside the connection's own task (``strict`` False) a broken connection is left to
        that task, which notices it and registers everything again on the next connection.
        """
        connection, session = self._connection, self._session
        subscriptions = self._subscriptions
        for registration in registrations:
            if connection is None or session is None or self._connection is not connection:
                return
            due = (
                subscriptions.claim(registration)
                if subscribe
                else subscriptions.release(registration)
            )
            if not due:
                continue
            message = session.registration(registration, subscribe=subscribe)
            try:
                await connection.send(message)
            except FeedUnavailable:
                if strict:
                    raise
                return

    # -- what the server says -------------------------------------------------------------

    async def _handle(self, connection: Connection, text: str) -> None:
        # One clock reading per message: its records all arrived at this moment.
        now = loop_time()
        session = self._session
        if session is None:
            return
        try:
            event = session.parse(text, now=now)
        except FeedProtocolError:
            self._counts.malformed_frames += 1
            return
        self._last_message_at = now
        if isinstance(event, Heartbeat):
            self._counts.pingpongs += 1
            await connection.send(event.raw)
        elif isinstance(event, Answer):
            self._on_answer(event)
        else:
            self._on_data(event, now)

    def _on_data(self, data: Data, now: float) -> None:
        self._counts.frames += 1
        if data.encrypted:
            self._counts.encrypted_frames += 1
            return
        self._counts.records += data.count
        for item in data.trades:
            self._on_trade(item, now)
        for book in data.books:
            self._on_book(book)

    def _on_trade(self, item: Trade, now: float) -> None:
        code = item.code
        if not self._subscriptions.trades_wanted(code):
            return  # sent before our unsubscribe reached the server
        verdict = self._tape.check(code, volume=item.volume, accumulated=item.accumulated_volume)
        if verdict == "duplicate":
            self._counts.duplicates += 1
            return
        self._proved_healthy()
        self._counts.trades += 1
        update = PriceUpdate(
            code=code,
            price=item.price,
            change=item.change,
            change_rate=item.change_rate,
            volume=item.accumulated_volume,
            at=now,
            source="feed",
            traded_at=item.time,
        )
        self._prices[code] = update
        self._notify(self._listeners, update)
        if verdict == "gap":
            self._counts.gaps += 1
            self._start_resync(code)

    def _on_book(self, item: OrderBook) -> None:
        if (self.dialect.books, item.code) not in self._subscriptions:
            return
        self._proved_healthy()
        self._counts.books += 1
        self._books[item.code] = item

    def _on_answer(self, answer: Answer) -> None:
        if answer.outcome == "session-refused" or (
            answer.outcome == "credential-refused" and answer.fatal
        ):
            self._counts.sessions_refused += 1
            if answer.outcome == "credential-refused":
                self._key = None  # the next connection logs in with a fresh one
            raise ConnectionLost(f"the server refused the session: {answer.why}")
        registration = answer.registration
        if answer.outcome == "removed":
            return  # answers to unregistrations: nothing is kept about those
        if answer.outcome == "accepted":
            if registration is not None and self._subscriptions.acknowledged(registration):
                self._proved_healthy()
                self._publish()
            return
        self._counts.subscriptions_rejected += 1
        if answer.outcome == "credential-refused":
            self._key = None  # the next connection gets a fresh one
        kind, code = registration or ("?", "?")
        if registration is None or not self._subscriptions.refuse(registration, answer.why):
            self._notice = f"the server answered {kind or '?'} {code or '?'}: {answer.why}"
        self._publish()

    def _proved_healthy(self) -> None:
        # This connection works: the next loss starts the backoff from its base again.
        self._attempt = 0

    # -- REST resync ----------------------------------------------------------------------

    def _start_resync(self, code: str) -> None:
        if code in self._resyncs or not self._subscriptions.trades_wanted(code):
            return  # one at a time per code: a burst of gaps needs one fresh quote
        task = asyncio.get_running_loop().create_task(
            self._resync_one(code), name=f"kis-feed-resync-{code}"
        )
        self._resyncs[code] = task
        task.add_done_callback(partial(self._resync_done, code))

    def _resync_done(self, code: str, task: asyncio.Task[None]) -> None:
        if self._resyncs.get(code) is task:
            del self._resyncs[code]

    async def _resync_one(self, code: str) -> None:
        try:
            update = await self._resync(code)
        except Exception:
            # The quote source has its own retries; a failure waits for the next gap or
            # reconnect rather than being retried here.
            self._counts.resync_failures += 1
            return
        if not self._subscriptions.trades_wanted(code):
            return
        self._counts.resyncs += 1
        current = self._prices.get(code)
        if current is not None and current.volume > update.volume:
            # The feed has shown trades this quote does not include: the quote is older news.
            self._counts.resyncs_stale += 1
            return
        update = dataclasses.replace(update, code=code, source="rest")
        self._prices[code] = update
        self._notify(self._listeners, update)

    # -- status and listeners -------------------------------------------------------------

    def _set_state(self, state: FeedState, detail: str) -> None:
        if state != self._state:
            self._since = loop_time()
        self._state, self._detail = state, detail
        self._publish()

    def _publish(self) -> None:
        status = self.status()
        # Listeners hear of changes, not of every message's arrival time.
        comparable = dataclasses.replace(status, last_message_at=None)
        if comparable == self._published:
            return
        self._published = comparable
        self._notify(self._status_listeners, status)

    def _notify(self, listeners: list[Callable[[T], None]], value: T) -> None:
        for listener in list(listeners):
            try:
                listener(value)
            except Exception:
                # One broken consumer must not stop the feed or starve the others.
                self._counts.listener_errors += 1
                log.exception("realtime feed: listener %r failed", listener)

    def _describe(self, error: BaseException) -> str:
        return describe(error, connect_timeout_s=self.settings.connect_timeout_s)


if TYPE_CHECKING:
    # mypy proves here that the client is a PriceFeed, before any consumer relies on it.
    _implements: type[PriceFeed] = FeedClient
