"""The desk's rate path: currency-pair quotes priced by its rate detectors, each opportunity
recorded and broadcast once when its cycle opens, nothing traded, halts no matter."""

from __future__ import annotations

import json

from system.gateway.signals import to_jsonable
from system.market import PriceUpdate, RateQuote
from system.storage.records import Opportunity as StoredOpportunity
from system.trading.desk import Desk, DeskSettings, metric_names
from system.trading.detectors import Opportunity, TriangularArbitrageDetector, TriangularParams
from system.trading.opportunities import OpenOpportunities
from system.trading.settings import TradingSettings
from tests.unit.trading.test_desk import Broker, BuyAt, Sink, gate

# A consistent KRW/USD/JPY triangle (1 USD = 1380 KRW = 150 JPY), two bp either side.
USD_KRW = (1379.7, 1380.3)
JPY_KRW = (9.198, 9.202)
USD_JPY = (149.97, 150.03)


def desk(sink: Sink, broker: Broker, *detectors: object) -> Desk:
    return Desk(
        detectors=list(detectors) or [triangular()],  # type: ignore[arg-type]
        gate=gate(),
        executor=broker,
        fills=broker,
        settings=DeskSettings(mode="live"),
        recorder=sink,
        notifier=sink,
    )


def triangular() -> TriangularArbitrageDetector:
    return TriangularArbitrageDetector(TriangularParams(fee_bps=0, max_age_s=5))


def quote(pair: str, prices: tuple[float, float], at: float, factor: float = 1.0) -> RateQuote:
    return RateQuote(pair, prices[0] * factor, prices[1] * factor, at)


def consistent(d: Desk, at: float) -> None:
    d.on_rate(quote("USD/KRW", USD_KRW, at))
    d.on_rate(quote("JPY/KRW", JPY_KRW, at))
    d.on_rate(quote("USD/JPY", USD_JPY, at))


def stored(sink: Sink) -> list[StoredOpportunity]:
    return [r for r in sink.records if isinstance(r, StoredOpportunity)]


def test_a_consistent_market_gives_no_opportunity() -> None:
    sink, broker = Sink(), Broker()
    d = desk(sink, broker)
    for second in range(10):
        consistent(d, float(second))
    metrics = d.metrics()
    assert metrics["desk_rates"] == 30
    assert (metrics["desk_opportunities"], metrics["desk_opportunities_open"]) == (0, 0)
    assert sink.records == []


def test_a_mispriced_pair_is_recorded_broadcast_and_counted_once_while_it_lasts() -> None:
    sink, broker = Sink(), Broker()
    d = desk(sink, broker)
    heard: list[Opportunity] = []
    d.add_opportunity_listener(heard.append)
    consistent(d, 0.0)
    # USD/JPY 1 % too dear: KRW -> USD -> JPY -> KRW returns about 1 %.
    for second in (1.0, 2.0, 3.0):
        d.on_rate(quote("USD/KRW", USD_KRW, second))
        d.on_rate(quote("JPY/KRW", JPY_KRW, second))
        d.on_rate(quote("USD/JPY", USD_JPY, second, factor=1.01))
    assert [o.cycle for o in heard] == ["KRW->USD->JPY->KRW"]
    (record,) = stored(sink)
    assert record.opportunity_id == heard[0].opportunity_id
    assert record.cycle == "KRW->USD->JPY->KRW"
    assert record.net_rate > 1.009
    detail = json.loads(record.detail_json)
    assert [leg["pair"] for leg in detail["legs"]] == ["USD/KRW", "USD/JPY", "JPY/KRW"]
    metrics = d.metrics()
    assert (metrics["desk_opportunities"], metrics["desk_opportunities_open"]) == (1, 1)
    assert [o.cycle for o in d.open_opportunities] == ["KRW->USD->JPY->KRW"]
    # Nothing traded: no order, no signal, no audit of a trade.
    assert broker.orders == []
    assert metrics["desk_signals"] == metrics["desk_orders_sent"] == 0


def test_corrected_the_cycle_closes_and_a_new_edge_is_news_again() -> None:
    sink, broker = Sink(), Broker()
    d = desk(sink, broker)
    consistent(d, 0.0)
    d.on_rate(quote("USD/JPY", USD_JPY, 1.0, factor=1.01))
    d.on_rate(quote("USD/KRW", USD_KRW, 1.5))  # still mispriced: still open, not news
    assert d.metrics()["desk_opportunities"] == 1
    d.on_rate(quote("USD/JPY", USD_JPY, 2.0))
    assert d.metrics()["desk_opportunities_open"] == 0
    d.on_rate(quote("USD/KRW", USD_KRW, 2.5))
    assert d.metrics()["desk_opportunities"] == 1
    d.on_rate(quote("USD/JPY", USD_JPY, 3.0, factor=1.01))
    assert d.metrics()["desk_opportunities"] == 2
    assert len(stored(sink)) == 2


def test_opportunities_are_recorded_while_trading_is_halted() -> None:
    sink, broker = Sink(), Broker()
    d = desk(sink, broker)
    d.gate.engage("test", at=0.0, by="test")
    consistent(d, 0.0)
    d.on_rate(quote("USD/JPY", USD_JPY, 1.0, factor=0.99))  # the other direction
    assert [o.cycle for o in d.open_opportunities] == ["KRW->JPY->USD->KRW"]
    assert len(stored(sink)) == 1


def test_only_rate_detectors_get_rates_and_they_still_get_prices() -> None:
    sink, broker = Sink(), Broker()
    rates = triangular()
    d = desk(sink, broker, BuyAt({10_000}), rates)
    consistent(d, 0.0)
    d.on_rate(quote("USD/JPY", USD_JPY, 1.0, factor=1.01))
    assert d.metrics()["desk_opportunities"] == 1
    assert rates.on_price(PriceUpdate("005930", 10_000, 0, 0.0, 1, 0.0)) == []


def test_a_desk_without_rate_detectors_counts_the_quotes_and_finds_nothing() -> None:
    sink, broker = Sink(), Broker()
    d = desk(sink, broker, BuyAt({10_000}))
    consistent(d, 0.0)
    d.on_rate(quote("USD/JPY", USD_JPY, 1.0, factor=1.01))
    assert (d.metrics()["desk_rates"], d.metrics()["desk_opportunities"]) == (4, 0)


def test_the_metric_names_include_the_rate_path() -> None:
    assert {"desk_rates", "desk_opportunities", "desk_opportunities_open"} <= set(metric_names())
    assert set(metric_names()) == set(desk(Sink(), Broker()).metrics())


# -- which cycles are open ---------------------------------------------------------------


def test_a_cycle_closes_only_on_a_quote_of_one_of_its_legs() -> None:
    detector = triangular()
    book = OpenOpportunities()
    for q in (quote("USD/KRW", USD_KRW, 0), quote("JPY/KRW", JPY_KRW, 0)):
        assert book.update("triangular", q.pair, detector.on_rate(q)) == []
    edge = quote("USD/JPY", USD_JPY, 0, factor=1.01)
    (opened,) = book.update("triangular", edge.pair, detector.on_rate(edge))
    # Another detector's report, and a quote of a pair not in the cycle, close nothing.
    assert book.update("other", "USD/JPY", []) == []
    assert book.update("triangular", "EUR/KRW", []) == []
    assert list(book) == [opened]
    assert book.update("triangular", "JPY/KRW", []) == []
    assert len(book) == 0


def test_the_triangular_detector_is_built_from_the_trading_settings() -> None:
    settings = TradingSettings(
        detectors=("triangular", "breakout"), capital_per_trade=2_000_000, triangular_fee_bps=5
    )
    assert settings.watches_rates
    built = settings.build_detectors(lambda at: None)  # type: ignore[arg-type, return-value]
    first = built[0]
    assert isinstance(first, TriangularArbitrageDetector)
    params = first.params
    assert (params.base_currency, params.base_capital, params.fee_bps) == ("KRW", 2e6, 5)
    assert not TradingSettings().watches_rates
    assert TradingSettings.from_env(
        environ={"SQUALL_TRADING_DETECTORS": "triangular"}
    ).detectors == ("triangular",)


def test_an_opportunity_is_broadcastable_as_plain_json() -> None:
    detector = triangular()
    for q in (quote("USD/KRW", USD_KRW, 0), quote("JPY/KRW", JPY_KRW, 0)):
        detector.on_rate(q)
    (found,) = detector.on_rate(quote("USD/JPY", USD_JPY, 0, factor=1.01))
    data = to_jsonable(found)
    assert data["cycle"] == "KRW->USD->JPY->KRW"
    assert data["opportunity_id"] == found.opportunity_id
    assert [leg["side"] for leg in data["legs"]] == ["buy", "sell", "sell"]
    json.dumps(data, allow_nan=False)
