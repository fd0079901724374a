"""The trading service: the system's policy on top of its broker client.

The client (a ``BrokerClient``: ``KisClient`` for KIS) says exactly what happened on each
request; ``TradingService`` decides what to do about it, and that policy is what Squall's
scenarios test:

- A token cooldown is waited out (``TokenCooldown.retry_after``), an unavailable or
  rate-limited broker is retried after a pause, until a deadline; then the last error is
  raised. Only errors after which the broker certainly did nothing are retried.
- An order of unknown outcome is reconciled against the broker's order book before anything
  else is sent: found → its ack is returned; confirmed absent → it is sent again.
- Every order keeps a history (``orders()``) for invariant checkers, and the service reports
  ``health()`` and ``metrics()`` for expectations.
- With a ``recorder`` (``system.storage.Storage``), every quote served is stored as a
  snapshot, and every order is recorded *before* it is sent, together with its audit event
  (one atomic group), then again as it settles. An order the recorder refuses (its write
  buffer is full during a database outage) is not sent: the service would otherwise trade
  without a record of it.

Everything is timed on the event loop's clock, so scenarios can run it on virtual time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from system.broker import (
    AuthExpired,
    BrokerClient,
    BrokerError,
    BrokerMetrics,
    BrokerRejected,
    BrokerUnavailable,
    MalformedResponse,
    OrderAck,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequest,
    Quote,
    RateLimited,
    TokenCooldown,
)
from system.broker.clock import loop_time
from system.broker.settings import settings_from_env
from system.health import BrokerHealth, Health
from system.lifecycle import Lifecycle
from system.storage.buffer import WriteBufferError
from system.storage.records import AuditEvent, QuoteSnapshot, Record, StoredOrder

log = logging.getLogger(__name__)

T = TypeVar("T")

OrderStatus = Literal["pending", "acked", "rejected", "unknown", "reconciled", "failed"]


class ServiceSettings(BaseModel):
    """The service's policy knobs (frozen); ``from_env`` reads ``SQUALL_SERVICE_*``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quote_deadline_s: float = Field(
        default=120.0,
        ge=0,
        description="How long quote() keeps retrying (waiting out a token cooldown of up to "
        "60 s, retrying an unavailable broker) before it raises the last error.",
    )
    order_deadline_s: float = Field(
        default=120.0,
        ge=0,
        description="How long place_order() keeps working on one order: retrying sends that "
        "provably did not leave (TokenCooldown, BrokerUnavailable, RateLimited, ...) and "
        "reconciling outcomes that are unknown.",
    )
    retry_wait_s: float = Field(
        default=1.0,
        gt=0,  # 0 would retry instantly failing calls in a hot loop
        description="Pause before retrying after an error that carries no retry_after of its "
        "own (BrokerUnavailable, TokenIssuanceFailed, AuthExpired); TokenCooldown and "
        "RateLimited are retried after their retry_after.",
    )
    reconcile_delay_s: float = Field(
        default=2.0,
        ge=0,
        description="Wait after an OrderOutcomeUnknown before asking the broker about the "
        "order, so that an order that arrived late has been booked.",
    )
    on_unknown_order: Literal["reconcile", "resend"] = Field(
        default="reconcile",
        description='"reconcile" (the only safe choice) asks the broker whether an order of '
        'unknown outcome was placed before sending anything again. "resend" is DELIBERATELY '
        "UNSAFE: it re-sends the order without asking, as a naive client would, and can "
        "place it twice. It exists only so Squall can prove that its scenarios catch that "
        "bug; never use it against a real account.",
    )
    health_window_s: float = Field(
        default=30.0,
        gt=0,
        description="A failed broker interaction keeps health() at least degraded for this "
        "many seconds.",
    )
    unhealthy_after_failures: int = Field(
        default=3,
        ge=1,
        description="health() is unhealthy while this many broker interactions in a row "
        "have failed.",
    )

    @classmethod
    def from_env(
        cls, prefix: str = "SQUALL_SERVICE_", environ: Mapping[str, str] | None = None
    ) -> ServiceSettings:
        """Read ``{prefix}{FIELD}`` variables (upper case), e.g. ``SQUALL_SERVICE_RETRY_WAIT_S``.

        Every field has a default, so an empty environment is valid. Empty variables count as
        unset; errors name the variable, never its value.
        """
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the trading service",
            example=f"{prefix}ORDER_DEADLINE_S=60, {prefix}ON_UNKNOWN_ORDER=reconcile",
        )


@dataclass(frozen=True)
class OrderRecord:
    """One client order id as the service saw it (a snapshot; later changes don't show).

    ``status``: ``"pending"`` (``place_order`` is still working on it), ``"acked"`` (the
    broker acknowledged it), ``"rejected"`` (the broker refused it), ``"unknown"`` (it may be
    at the broker: sent without a verdict and not reconciled), ``"reconciled"`` (found at the
    broker after an unknown outcome), ``"failed"`` (never placed: the service gave up before
    it could be sent, or it was confirmed absent). ``odno`` is the broker's order number once
    known. ``events`` are ``(loop time, what happened)``, oldest first.
    """

    client_order_id: str
    order: OrderRequest
    status: OrderStatus
    odno: str | None
    events: list[tuple[float, str]]


@dataclass
class _Order:
    """The service's working state for one client order id."""

    order: OrderRequest
    # The service's count of its orders by status, kept as each changes: health reads the
    # unknown ones every time it is asked, which must not mean walking the day's orders.
    tally: Counter[OrderStatus]
    status: OrderStatus = "pending"
    odno: str | None = None
    events: list[tuple[float, str]] = field(default_factory=list)
    # The send that may have placed it (set on an unknown outcome, cleared when the broker
    # confirms it absent): while set, giving up must leave the order "unknown".
    maybe_placed: OrderOutcomeUnknown | None = None
    # The latest request handed to the client (the original, or a derived id in "resend" mode).
    sending: OrderRequest | None = None

    def __post_init__(self) -> None:
        self.tally[self.status] += 1

    def note(self, what: str) -> None:
        self.events.append((loop_time(), what))

    def become(self, status: OrderStatus) -> None:
        self.tally[self.status] -= 1
        self.tally[status] += 1
        self.status = status

    def close(self, status: OrderStatus, what: str, odno: str | None = None) -> None:
        self.become(status)
        self.odno = odno if odno is not None else self.odno
        self.note(what)

    def snapshot(self) -> OrderRecord:
        order = self.order
        return OrderRecord(order.client_order_id, order, self.status, self.odno, list(self.events))


@dataclass
class _Counters:
    # Field names are metric names; see TradingService.metrics.
    quotes_served: int = 0
    quotes_failed: int = 0
    orders_acked: int = 0
    orders_rejected: int = 0
    orders_failed: int = 0
    orders_unknown: int = 0
    orders_reconciled_present: int = 0
    orders_reconciled_absent: int = 0
    orders_resent: int = 0
    orders_not_recorded: int = 0
    records_refused: int = 0


def metric_names() -> tuple[str, ...]:
    """Every name ``TradingService.metrics()`` reports, known without a running service, so
    a scenario naming a metric that doesn't exist is refused when it is loaded."""
    return (
        *(f"broker_{f.name}" for f in dataclasses.fields(BrokerMetrics)),
        *(f.name for f in dataclasses.fields(_Counters)),
        "orders_unresolved",
        "health_state",
    )


def _worth_retrying(error: BrokerError) -> bool:
    """The broker certainly did nothing with the request, and waiting may change that.

    ``MalformedResponse`` is excluded although nothing was executed: the client has already
    retried it, and an answer that keeps making no sense (a wrong base_url, a proxy's error
    page) does not heal with time, so the caller should hear about it at once.
    """
    retryable = isinstance(error, BrokerUnavailable | RateLimited | AuthExpired)
    return retryable and not isinstance(error, MalformedResponse)


class Recorder(Protocol):
    """Where the service writes what it did (``system.storage.Storage``)."""

    def record(self, *records: Record) -> int:
        """Queue ``records`` as one atomic group; raises ``WriteBufferError`` if refused."""
        ...


class TradingService(Lifecycle):
    """Quotes and orders with the system's retry and reconciliation policy.

    Use ``async with`` (or ``aclose``) to close the client. See the module docstring for
    the policy, ``ServiceSettings`` for its knobs, ``system.health`` for the health rules.
    """

    def __init__(
        self,
        client: BrokerClient,
        settings: ServiceSettings | None = None,
        *,
        recorder: Recorder | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or ServiceSettings()
        self.recorder = recorder
        self._orders: dict[str, _Order] = {}  # insertion order is first-seen order
        self._tally: Counter[OrderStatus] = Counter()  # orders by status (see _Order.tally)
        self._counts = _Counters()
        self._health = BrokerHealth(
            window_s=self.settings.health_window_s,
            unhealthy_after=self.settings.unhealthy_after_failures,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def quote(self, code: str) -> Quote:
        """The current quote for ``code``, retried within ``quote_deadline_s``.

        Waits out a token cooldown and retries an unavailable or rate-limited broker; raises
        the last error once the next attempt could not start before the deadline. A business
        rejection (``BrokerRejected``), an answer that keeps making no sense
        (``MalformedResponse``) and a malformed code (``ValueError``) are raised at once.
        """
        deadline = loop_time() + self.settings.quote_deadline_s
        try:
            quote = await self._retry(partial(self.client.get_price, code), deadline)
        except Exception:
            self._counts.quotes_failed += 1
            raise
        self._counts.quotes_served += 1
        # A refused snapshot costs history, not the quote: the caller still gets its price,
        # and the refusal shows in records_refused and the storage's own counters.
        self._record(QuoteSnapshot(quote.code, quote.price, quote.volume, loop_time()))
        return quote

    async def place_order(self, order: OrderRequest) -> OrderAck:
        """Place ``order`` once, working on it for up to ``order_deadline_s``.

        Sends that provably did not leave are retried. An unknown outcome is reconciled
        (``on_unknown_order="reconcile"``): the broker's ack if it has the order, else the
        order is sent again. Raises ``OrderRejected`` (refused, not placed),
        ``OrderOutcomeUnknown`` (it may be placed; the service could not find out in time —
        do not re-send it), or the last not-sent error (not placed). ``ValueError`` if this
        client order id is already pending, placed or of unknown outcome in this service.
        """
        record = self._open(order)
        deadline = loop_time() + self.settings.order_deadline_s
        if self.recorder is not None:
            audit = AuditEvent("order-recorded", dataclasses.asdict(order), loop_time())
            try:
                self.recorder.record(self._stored(record), audit)
            except WriteBufferError as refused:
                record.close("failed", f"not sent: it could not be recorded ({refused})")
                self._counts.orders_failed += 1
                self._counts.orders_not_recorded += 1
                raise
        try:
            return await self._place(record, deadline)
        except asyncio.CancelledError:
            self._abandon(record)
            raise
        except Exception as error:
            final = self._give_up(record, error)
            if final is error:
                raise
            raise final from error
        finally:
            # However it settled (acked, rejected, unknown, failed, cancelled): store that.
            self._record(self._stored(record))

    def orders(self) -> list[OrderRecord]:
        """Every client order id given to ``place_order``, first seen first, as snapshots."""
        return [record.snapshot() for record in self._orders.values()]

    def recent_orders(self, limit: int) -> list[OrderRecord]:
        """The ``limit`` client order ids first seen last, newest first, as snapshots: what
        the dashboard lists, without copying the whole day's history on every poll."""
        records = itertools.islice(reversed(self._orders.values()), max(0, limit))
        return [record.snapshot() for record in records]

    def health(self) -> Health:
        """healthy / degraded / unhealthy with reasons; the rules are in ``system.health``."""
        tokens = self.client.tokens
        unanswered = self.client.unanswered
        return self._health.assess(
            loop_time(),
            unknown_orders=self._count_status("unknown"),
            token_usable=tokens.token is not None,
            token_cooldown_s=tokens.cooldown_remaining,
            unanswered=unanswered.in_a_row,
            last_unanswered=unanswered.last_error,
        )

    def metrics(self) -> dict[str, float]:
        """Counters for expectations; the names are stable (scenario files use them).

        - ``broker_<field>`` for every field of the client's ``BrokerMetrics``
          (``broker_requests_sent``, ``broker_token_issuance_attempts``, ...).
        - ``quotes_served`` / ``quotes_failed``: ``quote()`` calls that returned / raised.
        - ``orders_acked``: orders the broker acknowledged on sending (in "resend" mode,
          possibly a re-send's ack). ``orders_rejected``: orders the broker refused.
          ``orders_failed``: orders given up before they could be placed.
          ``orders_reconciled_present``: unknown outcomes found at the broker.
          These four count orders, once each, when ``place_order`` settles them.
        - ``orders_unknown``: sends that ended without a verdict (one order can count twice).
          ``orders_reconciled_absent``: reconciliations that found the order absent (each is
          followed by a send). ``orders_resent``: unsafe re-sends ("resend" mode only).
        - ``orders_not_recorded``: orders refused before sending because the recorder
          refused them (also counted in ``orders_failed``). ``records_refused``: snapshots
          and order updates the recorder refused (the order itself went ahead).
        - ``orders_unresolved``: orders whose status is "unknown" now.
        - ``health_state``: 0 healthy, 1 degraded, 2 unhealthy.
        """
        # vars, not dataclasses.asdict: flat counters need no deep copy, and the harness
        # reads these every simulated second.
        broker = vars(self.client.metrics)
        values: dict[str, float] = {f"broker_{name}": float(n) for name, n in broker.items()}
        values.update((name, float(n)) for name, n in vars(self._counts).items())
        values["orders_unresolved"] = float(self._count_status("unknown"))
        values["health_state"] = float(self.health().code)
        return values

    async def _place(self, record: _Order, deadline: float) -> OrderAck:
        cid = record.order.client_order_id
        resends = 0
        send = record.order
        while True:
            outcome = await self._send(record, send, deadline)
            if isinstance(outcome, OrderAck):
                record.close("acked", f"acked: ODNO {outcome.odno}", odno=outcome.odno)
                self._counts.orders_acked += 1
                return outcome
            record.maybe_placed = outcome
            record.close("unknown", f"outcome unknown: {outcome.reason}")
            self._counts.orders_unknown += 1
            if self.settings.on_unknown_order == "resend":
                # The bug this mode exists to exhibit: the first send may be at the exchange.
                await self._pause(self.settings.retry_wait_s, deadline, outcome)
                resends += 1
                # The client's ledger refuses an id whose outcome is unknown; a naive client
                # that re-sends effectively sends a new order, so it gets a new id.
                send = dataclasses.replace(record.order, client_order_id=f"{cid}~resend{resends}")
                record.note(f"resent (unsafe) as {send.client_order_id}")
                self._counts.orders_resent += 1
                continue
            await self._pause(self.settings.reconcile_delay_s, deadline, outcome)
            found = await self._retry(
                partial(self.client.reconcile, outcome), deadline, record.note
            )
            if found is not None:
                record.close("reconciled", f"reconciled: present ODNO {found.odno}", found.odno)
                self._counts.orders_reconciled_present += 1
                return found
            # Confirmed absent: sending it again cannot double it.
            record.maybe_placed = None
            record.close("pending", "reconciled: absent")
            self._counts.orders_reconciled_absent += 1

    async def _send(
        self, record: _Order, order: OrderRequest, deadline: float
    ) -> OrderAck | OrderOutcomeUnknown:
        record.sending = order  # kept after the send: a cancellation may need to look it up
        try:
            return await self._retry(partial(self.client.place_order, order), deadline, record.note)
        except OrderOutcomeUnknown as unknown:
            return unknown

    async def _retry(
        self,
        attempt: Callable[[], Awaitable[T]],
        deadline: float,
        note: Callable[[str], None] | None = None,
    ) -> T:
        """``attempt()`` until it succeeds, fails for good, or the deadline comes first.

        Only errors ``_worth_retrying`` are retried, after their ``retry_after`` or
        ``retry_wait_s``. When the wait would end past ``deadline`` the error is raised at
        once: sleeping only to fail later helps no caller. ``note`` hears of each retry.
        """
        while True:
            try:
                return await self._tracked(attempt())
            except BrokerError as error:
                if not _worth_retrying(error):
                    raise
                wait = self._wait_after(error)
                if loop_time() + wait > deadline:
                    raise
                if note is not None:
                    note(f"not executed ({type(error).__name__}); retrying in {wait:.1f} s")
                await asyncio.sleep(wait)

    async def _tracked(self, interaction: Awaitable[T]) -> T:
        """Await one broker interaction and tell the health tracker how it went."""
        try:
            result = await interaction
        except BrokerRejected:
            self._health.succeeded()  # the broker answered; "no" is a working broker
            raise
        except BrokerError as error:
            self._health.failed(loop_time(), error)
            raise
        self._health.succeeded()
        return result

    def _wait_after(self, error: BrokerError) -> float:
        if isinstance(error, TokenCooldown | RateLimited) and error.retry_after > 0:
            return error.retry_after
        return self.settings.retry_wait_s

    async def _pause(self, seconds: float, deadline: float, unknown: OrderOutcomeUnknown) -> None:
        """Sleep before the next step on an unknown order, or give up if it ends too late."""
        if loop_time() + seconds > deadline:
            raise unknown
        await asyncio.sleep(seconds)

    def _open(self, order: OrderRequest) -> _Order:
        cid = order.client_order_id
        record = self._orders.get(cid)
        if record is None:
            record = self._orders[cid] = _Order(order, self._tally)
            record.note("requested")
            return record
        if record.status == "pending":
            raise ValueError(
                f"client_order_id {cid!r} is being placed right now; wait for that "
                "place_order() call to finish"
            )
        if record.status in ("acked", "reconciled"):
            raise ValueError(
                f"client_order_id {cid!r} was already placed as broker order {record.odno}; "
                "sending it again would double the order — use a new client_order_id"
            )
        if record.status == "unknown":
            raise ValueError(
                f"the outcome of client_order_id {cid!r} is unknown; sending it again could "
                "double the order — reconcile it (the broker client's reconcile) first"
            )
        # Rejected or never placed: the id is free, and the record keeps one history.
        record.order = order
        record.become("pending")
        record.note("requested again")
        return record

    def _give_up(self, record: _Order, error: Exception) -> Exception:
        """Settle ``record`` after ``error`` ended ``place_order``; the error to raise."""
        if record.maybe_placed is not None:
            # Whatever went wrong last, an earlier send may be at the exchange: the caller
            # must hear "unknown", never "not sent".
            record.close("unknown", f"gave up, outcome unknown ({type(error).__name__})")
            return record.maybe_placed
        if isinstance(error, OrderRejected):
            record.close("rejected", f"rejected: {error.msg_cd} {error.msg1}")
            self._counts.orders_rejected += 1
            return error
        record.close("failed", f"gave up, not placed ({type(error).__name__})")
        self._counts.orders_failed += 1
        return error

    def _abandon(self, record: _Order) -> None:
        """``place_order`` was cancelled: record what the client knows about the order."""
        sending = record.sending
        in_flight = sending is not None and any(
            unknown.order.client_order_id == sending.client_order_id
            for unknown in self.client.unknown_orders
        )
        if in_flight and record.maybe_placed is None:
            self._counts.orders_unknown += 1
            record.close("unknown", "outcome unknown: cancelled while the order was in flight")
        elif record.maybe_placed is not None:
            record.close("unknown", "cancelled, outcome unknown")
        else:
            record.close("failed", "cancelled before it was placed")
            self._counts.orders_failed += 1

    def _record(self, record: Record) -> None:
        """Store ``record`` if there is a recorder; a refusal is counted and logged, not raised."""
        if self.recorder is None:
            return
        try:
            self.recorder.record(record)
        except WriteBufferError as refused:
            self._counts.records_refused += 1
            log.warning("service: a %s was not stored: %s", type(record).__name__, refused)

    @staticmethod
    def _stored(record: _Order) -> StoredOrder:
        order = record.order
        return StoredOrder(
            order.client_order_id,
            order.code,
            order.side,
            order.quantity,
            order.price,
            record.status,
            record.odno,
            loop_time(),
        )

    def _count_status(self, status: OrderStatus) -> int:
        return self._tally[status]
