"""The trading desk: price updates in, signals, risk decisions and orders out.

One worker task takes the feed's price updates in arrival order and, for each:

1. marks the open positions at the new price (a price snapshot of each code is stored once
   a minute: ``snapshot_every_s``), which the loss limits watch, and checks open trades
   against their exits (stop-loss, take-profit);
2. asks every detector what it sees, records each signal and tells the signal listeners
   (the gateway broadcasts them);
3. sizes a trade for each signal and asks the risk gate to admit it;
4. in ``live`` mode hands an admitted trade to the executor (the trading service, which
   records the order before it sends it and reconciles an unknown outcome before any
   retry), then books its fill; in ``paper`` mode it stops there: everything is evaluated
   and recorded, no order is sent.

Currency-pair quotes come in too (``on_rate``, the rate feed's listener): the rate
detectors (``triangular``) price each one, and an arbitrage opportunity is recorded
(``opportunities``) and told to the opportunity listeners (the gateway broadcasts it) once,
when its cycle turns profitable (``system.trading.opportunities``). The desk does not trade
it: its broker is KIS, Korean equities, with no FX or crypto legs to execute, so an
opportunity is information, recorded and broadcast, as a sell signal is. Halts do not
silence it.

A halt (a loss limit, a stop condition, the manual kill switch) is stored with its reason,
audited and alerted once, when it happens; a release likewise. Orders run as their own
tasks so a slow broker never holds up the price stream, and the gate's books are updated
synchronously before any ``await``, so no two trades can slip past a limit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from system.broker import OrderAck, OrderRequest
from system.broker.clock import kst_today, loop_time
from system.broker.errors import BrokerError, OrderBlocked, OrderOutcomeUnknown
from system.lifecycle import Lifecycle
from system.market import PriceUpdate, RateQuote
from system.service import Recorder
from system.storage.buffer import WriteBufferError
from system.storage.records import AuditEvent, QuoteSnapshot, Record
from system.storage.records import Halt as StoredHalt
from system.storage.records import Signal as StoredSignal
from system.trading.alerts import Alert, Severity
from system.trading.detectors import Detector, Opportunity, RateDetector, Signal, WallClock
from system.trading.opportunities import OpenOpportunities, as_record
from system.trading.positions import Book, Fill
from system.trading.risk import Halt, Refused, RiskGate, TradeProposal

log = logging.getLogger(__name__)

Mode = Literal["paper", "live"]

# How long the desk waits before asking again for the fill of an order the broker took,
# after a failed reading: doubling from the first to the most.
FILL_RETRY_FIRST_S = 1.0
FILL_RETRY_MAX_S = 30.0


class DeskSettings(BaseModel):
    """How the desk sizes and leaves trades."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Field(default="paper", description="paper: evaluate everything, send nothing.")
    capital_per_trade: int = Field(default=1_000_000, gt=0, description="Won per new trade.")
    # An open trade is sold when the price falls this far below its entry, or rises
    # take_profit_pct above it.
    stop_loss_pct: float = Field(default=0.03, gt=0, lt=1)
    take_profit_pct: float = Field(default=0.06, gt=0)
    # A gap can jump a stop: the worst case held against the loss limits is this share of
    # the trade's value (KRX moves at most 30% a day).
    worst_case_pct: float = Field(default=0.30, gt=0, le=1)
    queue_size: int = Field(default=10_000, gt=0, description="Updates waiting, at most.")
    # A price snapshot per code is stored at most this often (0: every update). The feed
    # trades every second; storing each trade would make the database the desk's pace.
    snapshot_every_s: float = Field(default=60.0, ge=0)


class Executor(Protocol):
    """What the desk needs of the trading service."""

    async def place_order(self, order: OrderRequest) -> OrderAck: ...


class FillSource(Protocol):
    """Where the desk learns what an acknowledged order filled: (quantity, average price),
    or None if nothing filled (yet)."""

    async def fill_of(self, ack: OrderAck, order: OrderRequest) -> tuple[int, int] | None: ...


class Notifier(Protocol):
    def notify(self, alert: Alert) -> None: ...


class _Unknown:
    """An order that may or may not be at the exchange."""


UNKNOWN = _Unknown()


@dataclass
class _Trade:
    """An open trade: bought ``quantity`` of ``code`` at ``entry`` won on average."""

    trade_id: str
    code: str
    quantity: int
    entry: int
    exiting: bool = False


@dataclass
class _Counts:
    updates: int = 0
    updates_dropped: int = 0
    updates_failed: int = 0
    signals: int = 0
    refused: int = 0
    paper_orders: int = 0
    orders_sent: int = 0
    orders_failed: int = 0
    orders_unknown: int = 0
    orders_blocked: int = 0
    fill_reads_failed: int = 0
    exits: int = 0
    halts: int = 0
    rates: int = 0
    opportunities: int = 0


def metric_names() -> tuple[str, ...]:
    return (
        *(f"desk_{name}" for name in _Counts.__dataclass_fields__),
        "desk_trades_open",
        "desk_opportunities_open",
    )


class Desk(Lifecycle):
    """The pipeline from price updates to orders; ``on_price`` is the feed's listener."""

    def __init__(
        self,
        *,
        detectors: Sequence[Detector],
        gate: RiskGate,
        executor: Executor,
        fills: FillSource,
        settings: DeskSettings | None = None,
        available_cash: Callable[[], Awaitable[int]] | None = None,
        recorder: Recorder | None = None,
        notifier: Notifier | None = None,
        today: Callable[[], date] = kst_today,
        wall: WallClock | None = None,
    ) -> None:
        self.detectors = list(detectors)
        self.gate = gate
        self.executor = executor
        self.fills = fills
        self.settings = settings or DeskSettings()
        self.book = Book()
        self._available_cash = available_cash
        self.recorder = recorder
        self._notifier = notifier
        self._today = today
        self._wall = wall
        self._updates: deque[PriceUpdate] = deque()
        self._arrived = asyncio.Event()
        self._trades: dict[str, _Trade] = {}
        self._marks: dict[str, int] = {}
        self._snapshot_at: dict[str, float] = {}  # when each code's last snapshot was stored
        self._orders: set[asyncio.Task[None]] = set()
        self._signal_listeners: list[Callable[[Signal], object]] = []
        self._worker: asyncio.Task[None] | None = None
        self._halt_seen: Halt | None = gate.halt
        # Set while the worker has nothing queued and nothing in hand (drain waits on it).
        self._idle = asyncio.Event()
        self._idle.set()
        self._counts = _Counts()
        # The detectors that price currency pairs too (on_rate), and what they see open.
        self._rate_detectors = [d for d in self.detectors if isinstance(d, RateDetector)]
        self._opportunities = OpenOpportunities()
        self._opportunity_listeners: list[Callable[[Opportunity], object]] = []

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="trading-desk")

    async def aclose(self) -> None:
        tasks = [task for task in (self._worker, *self._orders) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- inputs ------------------------------------------------------------------------

    def on_price(self, update: PriceUpdate) -> None:
        """Queue ``update`` (called in the feed's task: it must not block). When the queue
        is full the oldest update goes: a newer price of the same market beats it."""
        if len(self._updates) >= self.settings.queue_size:
            self._updates.popleft()
            self._counts.updates_dropped += 1
        self._updates.append(update)
        self._idle.clear()
        self._arrived.set()

    def add_signal_listener(self, listener: Callable[[Signal], object]) -> None:
        self._signal_listeners.append(listener)

    def on_rate(self, quote: RateQuote) -> None:
        """A currency pair's quote (called in the rate feed's task: it must not block).

        Every rate detector prices it; each opportunity that opens is recorded and told to
        the opportunity listeners (see the module docstring). Nothing here awaits: the
        detectors are pure and the recorder queues."""
        self._counts.rates += 1
        for detector in self._rate_detectors:
            found = detector.on_rate(quote)
            for opportunity in self._opportunities.update(detector.name, quote.pair, found):
                self._on_opportunity(opportunity)

    def add_opportunity_listener(self, listener: Callable[[Opportunity], object]) -> None:
        self._opportunity_listeners.append(listener)

    @property
    def open_opportunities(self) -> list[Opportunity]:
        """The cycles the rate detectors see profitable now, each as last reported."""
        return list(self._opportunities)

    def permit(self, order: OrderRequest) -> str | None:
        """The last check before an order leaves (``KisClient.order_permit``): while
        trading is halted no order goes out, even one decided on before the halt."""
        halt = self.gate.halt
        return None if halt is None else f"trading is halted ({halt.reason}: {halt.detail})"

    def engage(self, detail: str, *, by: str) -> bool:
        """The manual kill switch; False if trading was halted already."""
        engaged = self.gate.engage(detail, at=loop_time(), by=by)
        self._notice_halt()
        return engaged

    def release(self, *, by: str) -> bool:
        """Ends every halt; False if none was in force."""
        halt = self.gate.halt
        released = self.gate.release(at=loop_time(), by=by)
        if released and halt is not None:
            self._store(StoredHalt(halt.reason, True, loop_time()))
            self._audit("halt-released", {"reason": halt.reason, "by": by})
            self._alert("release", "info", "trading resumed", f"{halt.reason} released by {by}")
        self._halt_seen = self.gate.halt
        return released

    # -- what it knows -----------------------------------------------------------------

    @property
    def halt(self) -> Halt | None:
        """The halt in force (the gateway's kill switch shows it), or None."""
        return self.gate.halt

    @property
    def marks(self) -> Mapping[str, int]:
        """The latest price handled per code: what open positions are marked at."""
        return self._marks

    def metrics(self) -> dict[str, float]:
        counts = {f"desk_{k}": float(v) for k, v in self._counts.__dict__.items()}
        return {
            **counts,
            "desk_trades_open": float(len(self._trades)),
            "desk_opportunities_open": float(len(self._opportunities)),
        }

    async def wind_down(self) -> None:
        """Take no more updates (and so open no more trades), then wait for the orders
        still working: the desk's books are final once this returns."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        while self._orders:
            await asyncio.wait(set(self._orders))

    async def drain(self) -> None:
        """Wait until the updates queued now are handled and every order task is done.
        (Updates that arrive meanwhile are not waited for: a live feed never stops.)"""
        await self._idle.wait()
        while self._orders:
            await asyncio.wait(set(self._orders))

    # -- the pipeline ------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._updates:
                update = self._updates.popleft()
                try:
                    await self._handle(update)
                except Exception:
                    # One bad update (a bug, a refused record) must not end the desk: log it
                    # in full, count it, and go on with the next price.
                    self._counts.updates_failed += 1
                    log.exception("trading desk: handling %s at %s failed", update.code, update.at)
            self._idle.set()

    async def _handle(self, update: PriceUpdate) -> None:
        self._counts.updates += 1
        self._marks[update.code] = update.price
        self._snapshot(update)
        # Marked before the exits: a gap through a stop-loss that breaks a loss limit halts
        # trading on this price, before a sale realises the loss past the limit.
        now = loop_time()
        self.gate.mark_to_market(self.book.unrealised(self._marks), day=self._today(), at=now)
        self.gate.on_source_latency(self._latency(update), at=now)
        self._notice_halt()
        self._check_exits(update)
        for detector in self.detectors:
            for signal in detector.on_price(update):
                await self._on_signal(signal, update)

    async def _on_signal(self, signal: Signal, update: PriceUpdate) -> None:
        self._counts.signals += 1
        detail: dict[str, Any] = {
            "signal_id": signal.signal_id,
            "detector": signal.detector,
            "side": signal.side,
            "reason": signal.reason,
            "strength": signal.strength,
        }
        self._store(StoredSignal(signal.code, signal.detector, detail, signal.at))
        for listener in self._signal_listeners:
            listener(signal)
        if signal.side != "buy":
            return  # the desk opens long trades only; a sell signal is information
        if self.gate.halt is not None:
            # Halted: refused without asking the broker for cash, which may be what is down.
            self._refused(signal, f"halted: {self.gate.halt.reason}")
            return
        price = signal.limit_price or update.price
        quantity = self.settings.capital_per_trade // price
        if quantity <= 0:
            self._refused(signal, "capital-per-trade buys no share at this price")
            return
        value = quantity * price
        proposal = TradeProposal(
            signal.code,
            "buy",
            quantity,
            price,
            worst_case_loss=round(value * self.settings.worst_case_pct),
        )
        day = self._today()
        # Every guard but the balance first (as if the cash were there): most refusals are
        # limits, and they need no call to the broker, whose budget orders share.
        verdict = self.gate.check(proposal, day=day, available_cash=value)
        if not isinstance(verdict, Refused):
            # Then the cash, and the gate decides again: nothing awaits between that decision
            # and the gate opening the trade, so concurrent signals can't share one headroom.
            cash = value if self._available_cash is None else await self._available_cash()
            verdict = self.gate.admit(signal.signal_id, proposal, day=day, available_cash=cash)
        if isinstance(verdict, Refused):
            self._refused(signal, f"{verdict.reason}: {verdict.detail}")
            return
        # A market order: a limit left resting would hold its reservation with no end.
        order = OrderRequest(signal.signal_id, "buy", signal.code, quantity)
        if self.settings.mode == "paper":
            self._counts.paper_orders += 1
            self._audit("paper-order", {"client_order_id": order.client_order_id, **detail})
            self.gate.on_trade_cancelled(signal.signal_id)
            return
        self._spawn(self._open(order, day))

    def _snapshot(self, update: PriceUpdate) -> None:
        last = self._snapshot_at.get(update.code)
        if last is not None and update.at - last < self.settings.snapshot_every_s:
            return
        self._snapshot_at[update.code] = update.at
        self._store(QuoteSnapshot(update.code, update.price, update.volume, update.at))

    def _latency(self, update: PriceUpdate) -> float:
        """How late ``update`` is handled: behind the exchange's trade time when the feed
        gave one (to its one-second resolution), and never less than its wait in the queue."""
        now = loop_time()
        late = max(0.0, now - update.at)
        if self._wall is None or update.traded_at is None:
            return late
        wall = self._wall(now)
        traded = _second_of_day(update.traded_at)
        if traded is None:
            return late  # a malformed time says nothing about lateness
        clock = wall.hour * 3600 + wall.minute * 60 + wall.second + wall.microsecond / 1e6
        behind = clock - traded
        # Trade times have whole seconds: up to one second behind is on time.
        return max(late, behind - 1.0) if 0 <= behind < 12 * 3600 else late

    def _check_exits(self, update: PriceUpdate) -> None:
        for trade in list(self._trades.values()):
            if trade.code != update.code or trade.exiting:
                continue
            low = trade.entry * (1 - self.settings.stop_loss_pct)
            high = trade.entry * (1 + self.settings.take_profit_pct)
            if low < update.price < high:
                continue
            if isinstance(self.gate.check_exit(), Refused):
                continue  # halted: no order at all until a person releases
            trade.exiting = True
            self._counts.exits += 1
            order = OrderRequest(f"{trade.trade_id}-exit", "sell", trade.code, trade.quantity)
            self._spawn(self._close(trade, order))

    # -- execution ---------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._orders.add(task)
        task.add_done_callback(self._orders.discard)

    async def _open(self, order: OrderRequest, day: date) -> None:
        filled = await self._execute(order)
        if isinstance(filled, _Unknown):
            # It may be at the exchange: its reservation stays, so the limits still count
            # it, until a person looks (the service already asked the broker and could not
            # tell).
            return
        if filled is None:
            self.gate.on_trade_cancelled(order.client_order_id)
            return
        quantity, price = filled
        self.book.apply(
            Fill(order.client_order_id, order.code, "buy", quantity, price, loop_time(), day)
        )
        self._trades[order.client_order_id] = _Trade(
            order.client_order_id, order.code, quantity, price
        )

    async def _close(self, trade: _Trade, order: OrderRequest) -> None:
        filled = await self._execute(order)
        if isinstance(filled, _Unknown):
            return  # it may have sold: never sell twice; it stays "exiting"
        if filled is None:
            trade.exiting = False  # still held: the next price tries again
            return
        quantity, price = filled
        day = self._today()
        pnl = self.book.apply(
            Fill(order.client_order_id, trade.code, "sell", quantity, price, loop_time(), day)
        )
        del self._trades[trade.trade_id]
        self.gate.on_trade_closed(trade.trade_id, pnl, day=day, at=loop_time())
        self._notice_halt()

    async def _execute(self, order: OrderRequest) -> tuple[int, int] | _Unknown | None:
        """Place ``order`` and read its fill: (quantity, average price); None when it did
        not fill (refused, failed before it was sent); ``UNKNOWN`` when it may have."""
        self._counts.orders_sent += 1
        try:
            ack = await self.executor.place_order(order)
        except OrderBlocked as blocked:
            # Stopped at the last moment by a halt: not sent, so not an execution failure.
            self._counts.orders_blocked += 1
            self._audit(
                "order-blocked",
                {"client_order_id": order.client_order_id, "reason": blocked.reason},
            )
            return None
        except OrderOutcomeUnknown:
            self._counts.orders_unknown += 1
            self.gate.on_execution(False, at=loop_time())
            self._notice_halt()
            self._audit("order-unknown", {"client_order_id": order.client_order_id})
            return UNKNOWN
        except (BrokerError, OSError) as error:
            self._counts.orders_failed += 1
            self.gate.on_execution(False, at=loop_time())
            self._notice_halt()
            self._audit(
                "order-failed",
                {"client_order_id": order.client_order_id, "error": type(error).__name__},
            )
            return None
        # The broker has the order now: the execution went through, whatever becomes of
        # the reading of its fill.
        self.gate.on_execution(True, at=loop_time())
        return await self._fill_of(ack, order)

    async def _fill_of(self, ack: OrderAck, order: OrderRequest) -> tuple[int, int] | None:
        """What an order the broker took filled, asked until the broker answers.

        Giving up on a failed reading would be wrong both ways: a buy taken as unfilled
        forgets a position the account holds (and frees its exposure for another buy), a
        sale taken as unfilled is sold again. So a failure waits (on loop time, doubling up
        to ``FILL_RETRY_MAX_S``) and asks again; the trade keeps its place in the limits
        meanwhile.
        """
        delay = FILL_RETRY_FIRST_S
        while True:
            try:
                return await self.fills.fill_of(ack, order)
            except (BrokerError, OSError) as error:
                self._counts.fill_reads_failed += 1
                log.warning(
                    "trading desk: reading the fill of %s (ODNO %s) failed (%s); asking again "
                    "in %.0f s",
                    order.client_order_id,
                    ack.odno,
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, FILL_RETRY_MAX_S)

    # -- records -----------------------------------------------------------------------

    def _on_opportunity(self, opportunity: Opportunity) -> None:
        self._counts.opportunities += 1
        self._store(as_record(opportunity))
        for listener in self._opportunity_listeners:
            listener(opportunity)

    def _refused(self, signal: Signal, why: str) -> None:
        self._counts.refused += 1
        self._audit("signal-refused", {"signal_id": signal.signal_id, "why": why})

    def _notice_halt(self) -> None:
        """Store, audit and alert a halt the first time it is seen."""
        halt = self.gate.halt
        if halt is None or halt == self._halt_seen:
            self._halt_seen = halt
            return
        self._halt_seen = halt
        self._counts.halts += 1
        self._store(StoredHalt(halt.reason, False, halt.at))
        self._audit("halt", {"reason": halt.reason, "detail": halt.detail})
        how = "automatically" if halt.automatic else "by hand"
        self._alert("halt", "critical", f"trading halted: {halt.reason}", f"{halt.detail} ({how})")

    def _audit(self, kind: str, detail: dict[str, Any]) -> None:
        self._store(AuditEvent(kind, detail, loop_time()))

    def _store(self, record: Record) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.record(record)
        except WriteBufferError as refused:  # storage says so on /health; trading goes on
            log.warning("could not record %s: %s", type(record).__name__, refused)

    def _alert(self, category: str, severity: Severity, title: str, message: str) -> None:
        if self._notifier is not None:
            alert = Alert(
                category=category, severity=severity, title=title, message=message, at=loop_time()
            )
            self._notifier.notify(alert)


def _second_of_day(hhmmss: str) -> int | None:
    """``HHMMSS`` as seconds since midnight, None when it is no time of day. Neither
    ``strptime`` nor a ``time``: the desk reads a trade time on every price."""
    if len(hhmmss) != 6 or not (hhmmss.isascii() and hhmmss.isdigit()):
        return None
    hour, minute, second = int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:])
    if hour > 23 or minute > 59 or second > 59:  # 24 o'clock, minute 60, ...
        return None
    return hour * 3600 + minute * 60 + second
