from mocks import krx
from mocks.market import LISTINGS, Market


def test_same_seed_same_world() -> None:
    a, b = Market(seed=7), Market(seed=7)
    assert a.instruments == b.instruments
    # Ask b out of order: a step's value must not depend on the order of questions.
    assert b.tick("000660", 300) == b.tick("000660", 300)
    assert [a.tick("005930", s) for s in range(0, 400, 37)] == [
        b.tick("005930", s) for s in range(0, 400, 37)
    ]
    assert a.order_book("035720", 55) == b.order_book("035720", 55)


def test_different_seed_different_prices() -> None:
    a, b = Market(seed=1), Market(seed=2)
    assert [a.tick("005930", s).price for s in range(50)] != [
        b.tick("005930", s).price for s in range(50)
    ]


def test_prices_stay_on_tick_and_within_limits() -> None:
    market = Market(seed=3)
    for code, _, _ in LISTINGS:
        instrument = market.instrument(code)
        for step in range(0, 2_000, 13):
            tick = market.tick(code, step)
            assert krx.is_on_tick(tick.price), (code, step, tick.price)
            assert instrument.lower_limit <= tick.price <= instrument.upper_limit
            assert tick.low <= tick.price <= tick.high


def test_order_book_levels_are_ordered_on_tick_and_inside_limits() -> None:
    market = Market(seed=4)
    for code in ("005930", "000890", "207940"):
        instrument = market.instrument(code)
        price = market.tick(code, 10).price
        book = market.order_book(code, 10)
        asks = [level.price for level in book.asks]
        bids = [level.price for level in book.bids]
        assert asks == sorted(asks)
        assert bids == sorted(bids, reverse=True)
        assert all(p > price for p in asks)
        assert all(p < price for p in bids)
        assert all(krx.is_on_tick(p) for p in asks + bids)
        assert all(instrument.lower_limit <= p <= instrument.upper_limit for p in asks + bids)


def test_real_codes_and_names() -> None:
    market = Market()
    assert market.instrument("005930").name == "삼성전자"
    assert all(krx.is_stock_code(code) for code in market.instruments)


def test_every_step_trades_at_least_one_share() -> None:
    # Seed 2026 draws a volume under one share at these steps: a zero would repeat the
    # accumulated volume, and a client rightly drops such a trade as a duplicate.
    market = Market(seed=2026)
    for code, step in (("000660", 19987), ("005930", 20337)):
        assert market.tick(code, step).volume - market.tick(code, step - 1).volume >= 1
