"""The trading desk with its guards real and its broker faked: paper and live, exits and
P&L, halts stored and alerted once, unknown outcomes kept reserved, a full queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date

import pytest

from system.broker import OrderAck, OrderRequest
from system.broker.errors import BrokerUnavailable, OrderOutcomeUnknown
from system.market import PriceUpdate
from system.storage.records import AuditEvent, Halt, QuoteSnapshot, Record
from system.storage.records import Signal as StoredSignal
from system.trading.alerts import Alert
from system.trading.desk import Desk, DeskSettings, _second_of_day
from system.trading.detectors import Signal
from system.trading.risk import (
    CapitalCap,
    LossLimits,
    PreTradeValidator,
    RiskGate,
    StopConditions,
    TradeLimits,
)

DAY = date(2026, 11, 23)
CODE = "005930"


@dataclass
class BuyAt:
    """A detector that says "buy" at the prices it is given."""

    prices: set[int]
    name: str = "test"

    def on_price(self, update: PriceUpdate) -> list[Signal]:
        if update.price not in self.prices:
            return []
        return [Signal(self.name, update.code, "buy", None, "test", 1.0, update.at)]


@dataclass
class Broker:
    """Fills every order at the last price it was told; or fails as told."""

    price: int = 0
    orders: list[OrderRequest] = field(default_factory=list)
    unknown: bool = False
    fill_failures: int = 0  # how many readings of a fill fail before one answers

    async def place_order(self, order: OrderRequest) -> OrderAck:
        self.orders.append(order)
        if self.unknown:
            raise OrderOutcomeUnknown(order=order, sent_at=0.0, endpoint="test", reason="lost")
        return OrderAck(order.client_order_id, f"{len(self.orders):010d}", "00950", "090000")

    async def fill_of(self, ack: OrderAck, order: OrderRequest) -> tuple[int, int] | None:
        if self.fill_failures > 0:
            self.fill_failures -= 1
            raise BrokerUnavailable("the broker answered 503")
        return order.quantity, self.price


@dataclass
class Sink:
    records: list[Record] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    def record(self, *records: Record) -> int:
        self.records.extend(records)
        return len(records)

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def kinds(self) -> list[str]:
        return [r.kind for r in self.records if isinstance(r, AuditEvent)]


def gate(daily_loss: int | None = None) -> RiskGate:
    return RiskGate(
        capital_cap=CapitalCap(10_000_000),
        loss_limits=LossLimits(daily_limit=daily_loss, cumulative_limit=None),
        trade_limits=TradeLimits(max_concurrent_trades=5, max_exposure_per_asset=None),
        pre_trade=PreTradeValidator(min_order_value=1),
        stop_conditions=StopConditions(max_source_latency_s=None, max_consecutive_failures=3),
    )


def desk(
    broker: Broker,
    sink: Sink,
    *,
    mode: str = "live",
    daily_loss: int | None = None,
    buy_at: set[int] | None = None,
    **settings: object,
) -> Desk:
    return Desk(
        detectors=[BuyAt(buy_at if buy_at is not None else {10_000})],
        gate=gate(daily_loss),
        executor=broker,
        fills=broker,
        settings=DeskSettings.model_validate(
            {"mode": mode, "capital_per_trade": 1_000_000, **settings}
        ),
        recorder=sink,
        notifier=sink,
        today=lambda: DAY,
    )


async def feed(d: Desk, broker: Broker, *prices: int) -> None:
    for price in prices:
        broker.price = price
        d.on_price(PriceUpdate(CODE, price, 0, 0.0, 1, asyncio.get_running_loop().time()))
        await d.drain()


async def test_paper_mode_evaluates_and_records_but_sends_nothing() -> None:
    broker, sink = Broker(), Sink()
    async with desk(broker, sink, mode="paper") as d:
        await feed(d, broker, 10_000)
    assert broker.orders == []
    assert sink.kinds() == ["paper-order"]
    assert [type(r) for r in sink.records] == [QuoteSnapshot, StoredSignal, AuditEvent]
    assert d.metrics()["desk_paper_orders"] == 1
    assert d.gate.open_trades == {}


async def test_live_mode_buys_by_signal_id_and_exits_at_the_stop_with_its_loss() -> None:
    broker, sink = Broker(), Sink()
    async with desk(broker, sink, stop_loss_pct=0.03) as d:
        await feed(d, broker, 10_000)
        (buy,) = broker.orders
        assert (buy.side, buy.quantity, buy.price) == ("buy", 100, None)
        assert buy.client_order_id.startswith("test-005930-")
        assert set(d.gate.open_trades) == {buy.client_order_id}
        await feed(d, broker, 9_800)  # inside the stop: held
        assert len(broker.orders) == 1
        await feed(d, broker, 9_700)  # at the stop: out
    sell = broker.orders[1]
    assert (sell.side, sell.quantity, sell.client_order_id) == (
        "sell",
        100,
        f"{buy.client_order_id}-exit",
    )
    assert d.book.realised_on(DAY) == 100 * (9_700 - 10_000)
    assert d.gate.open_trades == {}
    assert d.metrics()["desk_trades_open"] == 0


async def test_a_loss_past_the_daily_limit_halts_once_stored_audited_alerted() -> None:
    broker, sink = Broker(), Sink()
    # Each trade risks 30% of 1M against a 400k limit: the first fits. A gap to 5,000 goes
    # through its stop: marked at that price the day has lost 500k, so trading halts on the
    # price itself, before the stop-loss sale could realise the loss past the limit.
    async with desk(
        broker,
        sink,
        daily_loss=400_000,
        take_profit_pct=5.0,
        stop_loss_pct=0.3,
        buy_at={10_000, 5_000},
    ) as d:
        await feed(d, broker, 10_000, 5_000)  # bought at 10,000; 5,000 is past the stop
        assert len(broker.orders) == 1  # the buy only: the halt holds the sale
        assert d.book.realised_on(DAY) == 0
        halts = [r for r in sink.records if isinstance(r, Halt)]
        assert [(h.reason, h.released) for h in halts] == [("daily-loss-limit", False)]
        assert [a.category for a in sink.alerts] == ["halt"]
        await feed(d, broker, 10_000, 5_000)  # new signals: refused by the kill switch
        assert len(broker.orders) == 1
        assert "signal-refused" in sink.kinds()
        assert d.release(by="operator")  # a person accepts the loss at 5,000
        await feed(d, broker, 5_000)  # released: the stop-loss sale goes now
        assert d.book.realised_on(DAY) == -500_000
        assert d.gate.halt is None  # the loss the person accepted is no new breach
    released = [r for r in sink.records if isinstance(r, Halt) and r.released]
    assert len(released) == 1
    assert [a.category for a in sink.alerts] == ["halt", "release"]


async def test_a_price_snapshot_per_code_is_stored_once_a_minute() -> None:
    broker, sink = Broker(), Sink()
    async with desk(broker, sink, buy_at=set()) as d:
        now = asyncio.get_running_loop().time()
        for at, price in ((0.0, 10_000), (30.0, 10_100), (60.0, 10_200), (61.0, 10_300)):
            d.on_price(PriceUpdate(CODE, price, 0, 0.0, 7, now + at))
        await d.drain()
    snapshots = [r for r in sink.records if isinstance(r, QuoteSnapshot)]
    assert [(s.code, s.price, s.volume) for s in snapshots] == [
        (CODE, 10_000, 7),
        (CODE, 10_200, 7),
    ]


@pytest.mark.looptime
async def test_a_fill_that_cannot_be_read_is_asked_again_and_the_trade_kept() -> None:
    # The broker took the buy; reading its fill fails twice. Taking that as "not filled"
    # would forget a position the account holds and free its exposure for another buy.
    broker, sink = Broker(fill_failures=2), Sink()
    async with desk(broker, sink) as d:
        await feed(d, broker, 10_000)
        (order,) = broker.orders
        assert set(d.gate.open_trades) == {order.client_order_id}
        assert d.book.position(CODE) is not None
        assert d.metrics()["desk_fill_reads_failed"] == 2
        assert d.metrics()["desk_orders_failed"] == 0
        assert d.gate.stop_conditions.halt is None


async def test_an_order_of_unknown_outcome_keeps_its_reservation() -> None:
    broker, sink = Broker(unknown=True), Sink()
    async with desk(broker, sink) as d:
        await feed(d, broker, 10_000)
    (order,) = broker.orders
    assert set(d.gate.open_trades) == {order.client_order_id}
    assert d.metrics()["desk_orders_unknown"] == 1
    assert "order-unknown" in sink.kinds()


async def test_the_manual_kill_switch_stops_every_order_until_released() -> None:
    broker, sink = Broker(), Sink()
    async with desk(broker, sink) as d:
        assert d.engage("pressed in a test", by="operator")
        assert not d.engage("pressed twice", by="operator")
        await feed(d, broker, 10_000)
        assert broker.orders == []
        d.release(by="operator")
        await feed(d, broker, 10_000)
    assert len(broker.orders) == 1
    assert [a.category for a in sink.alerts] == ["halt", "release"]


async def test_a_full_queue_drops_the_oldest_update() -> None:
    broker, sink = Broker(), Sink()
    d = desk(broker, sink, mode="paper", queue_size=2)
    for price in (10_000, 10_100, 10_200):  # the worker is not running: they wait
        d.on_price(PriceUpdate(CODE, price, 0, 0.0, 1, 0.0))
    async with d:
        await d.drain()
    assert d.metrics()["desk_updates_dropped"] == 1
    assert d.metrics()["desk_updates"] == 2
    assert broker.orders == []
    assert sink.kinds() == []  # the one buy signal's update was the one dropped


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="stop_loss_pct"):
        DeskSettings(stop_loss_pct=0)


async def test_an_order_that_did_not_fill_frees_its_place_at_the_gate() -> None:
    class Unfilled(Broker):
        async def fill_of(self, ack: OrderAck, order: OrderRequest) -> tuple[int, int] | None:
            return None

    broker, sink = Unfilled(), Sink()
    async with desk(broker, sink) as d:
        await feed(d, broker, 10_000)
    assert len(broker.orders) == 1
    assert d.gate.open_trades == {}
    assert d.book.positions() == []


async def test_prices_late_behind_the_exchange_halt_trading_for_source_latency() -> None:
    from datetime import datetime, timedelta

    from system.broker.clock import KST

    opening = datetime(2026, 11, 23, 9, 0, tzinfo=KST)
    broker, sink = Broker(), Sink()
    risk = RiskGate(
        capital_cap=CapitalCap(10_000_000),
        loss_limits=LossLimits(daily_limit=None, cumulative_limit=None),
        trade_limits=TradeLimits(max_concurrent_trades=5, max_exposure_per_asset=None),
        pre_trade=PreTradeValidator(min_order_value=1),
        stop_conditions=StopConditions(max_source_latency_s=5, max_consecutive_failures=None),
    )
    d = Desk(
        detectors=[BuyAt(set())],
        gate=risk,
        executor=broker,
        fills=broker,
        recorder=sink,
        notifier=sink,
        today=lambda: DAY,
        wall=lambda at: opening + timedelta(seconds=at),
    )
    loop = asyncio.get_running_loop()

    def traded(seconds_ago: float) -> PriceUpdate:
        now = loop.time()
        stamp = (opening + timedelta(seconds=now - seconds_ago)).strftime("%H%M%S")
        return PriceUpdate(CODE, 10_000, 0, 0.0, 1, now, traded_at=stamp)

    async with d:
        d.on_price(traded(3))  # within the five seconds (and the clock's one-second grain)
        await d.drain()
        assert d.gate.halt is None
        d.on_price(traded(10))
        await d.drain()
    assert d.gate.halt is not None
    assert d.gate.halt.reason == "source-latency"
    assert [a.category for a in sink.alerts] == ["halt"]


async def test_an_update_that_fails_is_logged_and_counted_and_the_desk_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(BuyAt):
        def on_price(self, update: PriceUpdate) -> list[Signal]:
            if update.price == 1:
                raise RuntimeError("a detector bug")
            return super().on_price(update)

    broker, sink = Broker(), Sink()
    d = desk(broker, sink)
    d.detectors = [Broken({10_000})]
    async with d:
        await feed(d, broker, 1, 10_000)
    assert d.metrics()["desk_updates_failed"] == 1
    assert len(broker.orders) == 1  # the next price still traded
    assert "a detector bug" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("093354", 9 * 3600 + 33 * 60 + 54),
        ("000000", 0),
        ("235959", 86_399),
        ("240000", None),  # no 24 o'clock
        ("096000", None),
        ("093360", None),
        ("09335", None),
        ("0933545", None),
        ("09:335", None),
        ("０９３３５４", None),  # full-width digits are digits to str.isdigit, not to KIS
        ("", None),
    ],
)
def test_a_trade_time_is_read_as_hhmmss_or_not_at_all(text: str, expected: int | None) -> None:
    assert _second_of_day(text) == expected
