"""Market events in the simulator: their effect at the boundary steps, and determinism."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from mocks import krx
from mocks.clock import KST, MockClock
from mocks.feed.records import BOOK_COLUMNS, TRADE_COLUMNS, Tape
from mocks.market import EventInThePast, Market, UnknownInstrument
from mocks.market_events import (
    MARKET_EVENT,
    Gap,
    LimitDown,
    LimitUp,
    MarketEvent,
    VolatilityInterruption,
)

SEED = 5
CODE = "005930"
OTHER = "000660"
OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)


def event(**fields: Any) -> MarketEvent:
    return MARKET_EVENT.validate_python({"code": CODE, **fields})


def market_with(*events: dict[str, Any], seed: int = SEED) -> Market:
    market = Market(seed)
    for fields in events:
        market.inject(event(**fields), now=0)
    return market


# -- gap -------------------------------------------------------------------------------


def test_a_gap_shifts_the_path_from_its_step_on_snapped_and_clamped() -> None:
    calm, gapped = Market(SEED), market_with({"kind": "gap", "at": 40, "pct": -8})
    instrument = calm.instrument(CODE)
    assert gapped.tick(CODE, 39) == calm.tick(CODE, 39)
    for step in (40, 41, 100, 500):
        expected = krx.round_to_tick(calm.tick(CODE, step).price * 0.92)
        expected = min(max(expected, instrument.lower_limit), instrument.upper_limit)
        price = gapped.tick(CODE, step).price
        assert price == expected, step
        assert krx.is_on_tick(price)
    # The path continues from the gapped level: its step-to-step moves are the calm ones'.
    assert gapped.tick(CODE, 40).price < calm.tick(CODE, 39).price * 0.95
    assert gapped.tick(CODE, 40).low == gapped.tick(CODE, 40).price


@pytest.mark.parametrize(("pct", "limit"), [(-60, "lower_limit"), (90, "upper_limit")])
def test_a_gap_beyond_the_days_limits_stops_at_the_limit(pct: float, limit: str) -> None:
    market = market_with({"kind": "gap", "at": 10, "pct": pct})
    assert market.tick(CODE, 10).price == getattr(market.instrument(CODE), limit)


def test_gaps_of_one_code_compound() -> None:
    calm = Market(SEED)
    market = market_with(
        {"kind": "gap", "at": 10, "pct": -10}, {"kind": "gap", "at": 20, "pct": -10}
    )
    assert market.tick(CODE, 15).price == krx.round_to_tick(calm.tick(CODE, 15).price * 0.9)
    assert market.tick(CODE, 25).price == krx.round_to_tick(calm.tick(CODE, 25).price * 0.81)


# -- limit-up / limit-down -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "limit", "empty", "queued"),
    [("limit-up", "upper_limit", "asks", "bids"), ("limit-down", "lower_limit", "bids", "asks")],
)
def test_a_limit_pins_the_price_for_its_window_with_a_one_sided_book(
    kind: str, limit: str, empty: str, queued: str
) -> None:
    calm, market = Market(SEED), market_with({"kind": kind, "at": 30, "for": 20})
    pinned = getattr(market.instrument(CODE), limit)
    assert market.tick(CODE, 29) == calm.tick(CODE, 29)
    assert market.order_book(CODE, 29) == calm.order_book(CODE, 29)
    for step in (30, 49):
        assert market.tick(CODE, step).price == pinned
        book = market.order_book(CODE, step)
        assert getattr(book, empty) == ()
        best, *rest = getattr(book, queued)
        assert best.price == pinned
        assert best.quantity >= 200_000  # the locked queue
        assert len(rest) == 9
        assert all(krx.is_on_tick(level.price) for level in rest)
    assert market.tick(CODE, 50).price == calm.tick(CODE, 50).price
    assert market.order_book(CODE, 50).asks != ()
    assert market.order_book(CODE, 50).bids != ()
    # Trading goes on at the limit: volume grows as on the calm path.
    assert market.tick(CODE, 50).volume == calm.tick(CODE, 50).volume


def test_a_limit_without_for_holds_until_cleared() -> None:
    market = market_with({"kind": "limit-up", "at": 5})
    upper = market.instrument(CODE).upper_limit
    assert market.tick(CODE, 4).price != upper
    assert market.tick(CODE, 5_000).price == upper
    assert market.events.clear() == 1
    assert market.tick(CODE, 5_000) == Market(SEED).tick(CODE, 5_000)


@pytest.mark.parametrize("down_first", [True, False])
def test_of_two_limits_in_force_the_later_starting_one_holds(down_first: bool) -> None:
    down = {"kind": "limit-down", "at": 20, "for": 30}
    up = {"kind": "limit-up", "at": 10, "for": 30}
    market = market_with(*((down, up) if down_first else (up, down)))
    instrument = market.instrument(CODE)
    assert market.tick(CODE, 15).price == instrument.upper_limit
    assert market.tick(CODE, 20).price == instrument.lower_limit
    assert market.tick(CODE, 45).price == instrument.lower_limit


# -- VI --------------------------------------------------------------------------------


def test_a_vi_freezes_the_last_trade_and_the_volume_then_resumes_on_the_path() -> None:
    calm, market = Market(SEED), market_with({"kind": "vi", "at": 60, "for": 120})
    before = market.tick(CODE, 59)
    assert before == calm.tick(CODE, 59)
    for step in (60, 61, 179):
        halted = market.tick(CODE, step)
        assert (halted.price, halted.volume, halted.turnover) == (
            before.price,
            before.volume,
            before.turnover,
        ), step
        assert halted.step == step
        assert not market.effect(CODE, step).trading
    after = market.tick(CODE, 180)
    assert market.effect(CODE, 180).trading
    assert after.price == calm.tick(CODE, 180).price  # the auction re-prices at once
    traded = calm.tick(CODE, 180).volume - calm.tick(CODE, 179).volume
    assert after.volume == before.volume + traded
    # The book goes on two-sided around the frozen price.
    book = market.order_book(CODE, 100)
    assert book.asks[0].price > before.price > book.bids[0].price


def test_a_vi_beats_a_limit_and_keeps_a_gap_for_the_price_it_returns_to() -> None:
    calm = Market(SEED)
    market = market_with(
        {"kind": "gap", "at": 10, "pct": 5},
        {"kind": "limit-up", "at": 20, "for": 10},
        {"kind": "vi", "at": 25, "for": 10},
    )
    upper = market.instrument(CODE).upper_limit
    assert market.tick(CODE, 24).price == upper
    assert market.tick(CODE, 28).price == upper  # frozen at the last trade: the limit
    assert market.order_book(CODE, 28).bids[0].price < upper  # an auction, no locked queue
    assert market.tick(CODE, 35).price == krx.round_to_tick(calm.tick(CODE, 35).price * 1.05)


# -- determinism and isolation ---------------------------------------------------------


EVENTS: tuple[dict[str, Any], ...] = (
    {"kind": "gap", "at": 10, "pct": -8},
    {"kind": "limit-down", "at": 50, "for": 30},
    {"kind": "vi", "at": 120, "for": 120},
)


def test_same_seed_and_events_give_the_same_world_whatever_the_order_of_questions() -> None:
    a, b = market_with(*EVENTS), market_with(*EVENTS)
    assert b.tick(CODE, 300) == b.tick(CODE, 300)  # b asked out of order first
    assert [a.tick(CODE, s) for s in range(0, 400, 7)] == [
        b.tick(CODE, s) for s in range(0, 400, 7)
    ]
    assert [a.order_book(CODE, s) for s in (49, 50, 130)] == [
        b.order_book(CODE, s) for s in (49, 50, 130)
    ]


def test_events_of_one_code_leave_every_other_code_alone() -> None:
    calm = Market(SEED)
    market = market_with(*EVENTS)
    assert market.tick(CODE, 60).price != calm.tick(CODE, 60).price
    for code in (OTHER, "035720", "000890"):
        assert [market.tick(code, s) for s in range(0, 300, 11)] == [
            calm.tick(code, s) for s in range(0, 300, 11)
        ]
        assert market.order_book(code, 130) == calm.order_book(code, 130)


def test_events_added_after_steps_were_computed_still_apply() -> None:
    market = Market(SEED)
    assert market.tick(CODE, 200).price != market.instrument(CODE).upper_limit  # cached
    market.inject(event(kind="limit-up", at=100, **{"for": 200}), now=0)
    assert market.tick(CODE, 200).price == market.instrument(CODE).upper_limit
    market.inject(event(kind="limit-down", at=150, **{"for": 100}), now=0)
    assert market.tick(CODE, 200).price == market.instrument(CODE).lower_limit
    market.events.clear()
    assert market.tick(CODE, 200) == Market(SEED).tick(CODE, 200)


def test_every_disturbed_price_is_on_tick_within_limits_and_inside_high_low() -> None:
    market = market_with(*EVENTS, {"kind": "gap", "at": 300, "pct": 13.7})
    instrument = market.instrument(CODE)
    for tick in (market.tick(CODE, s) for s in range(0, 600)):
        assert krx.is_on_tick(tick.price), tick
        assert instrument.lower_limit <= tick.price <= instrument.upper_limit
        assert tick.low <= tick.price <= tick.high


# -- adding events ---------------------------------------------------------------------


def test_inject_pins_a_missing_start_to_the_next_second() -> None:
    market = Market(SEED)
    stored = market.inject(event(kind="vi"), now=41.5)
    assert stored == VolatilityInterruption(code=CODE, at=42, for_=120, kind="vi")
    assert list(market.events) == [stored]


def test_inject_refuses_unlisted_codes_and_starts_in_the_past() -> None:
    market = Market(SEED)
    with pytest.raises(UnknownInstrument):
        market.inject(event(kind="gap", code="123456", at=5, pct=3), now=0)
    with pytest.raises(EventInThePast, match=r"give at >= 12"):
        market.inject(event(kind="gap", at=11, pct=3), now=12.5)
    stored = market.inject(event(kind="gap", at=12, pct=3), now=12.5)  # the step in progress
    assert stored.at == 12
    assert len(market.events) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "gap", "at": 5, "pct": 0}, "a gap of 0 % moves nothing"),
        ({"kind": "gap", "at": 5}, "pct"),
        ({"kind": "gap", "at": 5, "pct": -100}, "greater than -100"),
        ({"kind": "vi", "at": 0}, "at >= 1"),
        ({"kind": "vi", "at": 5, "for": 0}, "greater than or equal to 1"),
        ({"kind": "limit-up", "at": 2.5}, "fractional part"),
        ({"kind": "limit-up", "at": -1}, "greater than or equal to 0"),
        ({"kind": "limit-down", "at": 5, "until": 9}, "Extra inputs are not permitted"),
        ({"kind": "halt", "at": 5}, "'gap', 'limit-up', 'limit-down', 'vi'"),
        ({"kind": "gap", "code": "5930", "at": 5, "pct": 1}, "pattern"),
    ],
)
def test_events_are_strict(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        event(**fields)


def test_the_wire_shape_round_trips_with_for() -> None:
    stored = LimitDown(code=CODE, at=3, for_=60, kind="limit-down")
    wire = stored.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire == {"code": CODE, "at": 3, "for": 60, "kind": "limit-down"}
    assert MARKET_EVENT.validate_python(wire) == stored
    assert isinstance(event(kind="limit-up", at=1), LimitUp)
    assert isinstance(event(kind="gap", at=1, pct=2), Gap)


# -- the feed's records ----------------------------------------------------------------


def tape_of(market: Market) -> Tape:
    return Tape(market, MockClock(OPEN))


def test_the_feed_sends_no_trade_record_during_a_halt_and_stays_continuous() -> None:
    market = market_with({"kind": "vi", "at": 20, "for": 10})
    tape = tape_of(market)
    sent = [s for s in range(15, 35) if tape.sends("H0STCNT0", CODE, s)]
    assert sent == [*range(15, 20), *range(30, 35)]
    assert all(tape.sends("H0STASP0", CODE, s) for s in range(15, 35))
    rows = [dict(zip(TRADE_COLUMNS, tape.record("H0STCNT0", CODE, s), strict=True)) for s in sent]
    for before, after in itertools.pairwise(rows):
        assert int(after["ACML_VOL"]) == int(before["ACML_VOL"]) + int(after["CNTG_VOL"])
    assert rows[4]["STCK_PRPR"] == str(market.tick(CODE, 19).price)
    assert rows[5]["STCK_CNTG_HOUR"] == "090030"
    # One print a step from step 1, none during the halt's ten.
    assert int(rows[5]["SELN_CNTG_CSNU"]) + int(rows[5]["SHNU_CNTG_CSNU"]) == 20
    books = {
        s: dict(zip(BOOK_COLUMNS, tape.record("H0STASP0", CODE, s), strict=True))
        for s in (19, 20, 29, 30)
    }
    assert [books[s]["HOUR_CLS_CODE"] for s in (19, 20, 29, 30)] == ["0", "C", "C", "0"]
    assert books[20]["ANTC_CNPR"] == str(market.tick(CODE, 19).price)


def test_the_feed_records_follow_events_added_after_they_were_computed() -> None:
    market = Market(SEED)
    tape = tape_of(market)
    calm_row = dict(zip(TRADE_COLUMNS, tape.record("H0STCNT0", CODE, 8), strict=True))
    market.inject(event(kind="limit-down", at=5, **{"for": 10}), now=0)
    row = dict(zip(TRADE_COLUMNS, tape.record("H0STCNT0", CODE, 8), strict=True))
    lower = market.instrument(CODE).lower_limit
    assert calm_row["STCK_PRPR"] != str(lower)
    assert (row["STCK_PRPR"], row["PRDY_VRSS_SIGN"]) == (str(lower), "4")
    book = dict(zip(BOOK_COLUMNS, tape.record("H0STASP0", CODE, 8), strict=True))
    assert (book["BIDP1"], book["ASKP1"]) == ("0", str(lower))


def test_the_book_top_is_the_order_books_best_levels_and_totals_through_every_event() -> None:
    # Gaps up and down push the price next to both limits, where the ladder is short; the
    # limit moves make one-sided books and the VI an auction book.
    market = market_with(
        *EVENTS,
        {"kind": "gap", "at": 300, "pct": 40},
        {"kind": "gap", "at": 450, "pct": -50},
    )
    for step in range(0, 700):
        book = market.order_book(CODE, step)
        assert market.book_top(CODE, step) == (
            book.asks[0] if book.asks else None,
            book.bids[0] if book.bids else None,
            sum(quantity for _, quantity in book.asks),
            sum(quantity for _, quantity in book.bids),
        ), step
    books = [market.order_book(CODE, s) for s in range(700)]
    assert any(len(b.asks) < 10 for b in books), "no step reached the short ask ladder"
    assert any(len(b.bids) < 10 for b in books), "no step reached the short bid ladder"


def test_events_added_one_by_one_as_the_day_goes_give_the_path_of_all_of_them_at_once() -> None:
    added = (
        {"kind": "gap", "at": 40, "pct": 6},
        {"kind": "vi", "at": 90, "for": 30},
        {"kind": "limit-up", "at": 150, "for": 40},
        {"kind": "gap", "at": 151, "pct": -12},
    )
    at_once = market_with(*added)
    live = Market(SEED)
    for fields in added:
        live.tick(CODE, fields["at"])  # the feed has read the path up to the event's step
        live.inject(event(**fields), now=fields["at"])
    assert [live.tick(CODE, s) for s in range(400)] == [at_once.tick(CODE, s) for s in range(400)]


def test_trade_records_with_events_added_live_are_those_of_all_events_at_once() -> None:
    added = (
        {"kind": "gap", "at": 40, "pct": 6},
        {"kind": "limit-down", "at": 120, "for": 30},
        {"kind": "vi", "at": 200, "for": 30},
    )
    at_once = tape_of(market_with(*added))
    live_market = Market(SEED)
    live = tape_of(live_market)
    for fields in added:
        for step in range(fields["at"] - 20, fields["at"] + 1):  # the feed sent up to now
            live.record("H0STCNT0", CODE, step)
        live_market.inject(event(**fields), now=fields["at"])
    for step in range(300):
        assert live.record("H0STCNT0", CODE, step) == at_once.record("H0STCNT0", CODE, step)
