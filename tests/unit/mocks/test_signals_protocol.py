"""The signals channel's protocol (the seed's simple JSON at ``/ws``), without a socket.

Expected messages are written out by hand, so a mistake in the mock's idea of the protocol
cannot hide in shared code.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest

from mocks.clock import KST, MockClock
from mocks.feed import signals_protocol as sp
from mocks.feed.protocol import TRADES
from mocks.feed.records import Tape
from mocks.feed.signals_protocol import (
    Invalid,
    Ping,
    Quote,
    TickerRequest,
    check,
    parse_client_message,
)
from mocks.market import Market

LISTED = ("005930", "000660")
EXAMPLE = '{"type": "subscribe", "ticker": "005930"}'
QUOTE = Quote("005930", 71_200, 1_200, 1.71, 8_123_456, "091502")


def test_subscribe_unsubscribe_and_ping_are_read() -> None:
    text = '{"type": "subscribe", "ticker": "005930"}'
    assert parse_client_message(text) == TickerRequest("subscribe", "005930")
    text = '{"type": "unsubscribe", "ticker": "000660", "extra": [1, 2]}'  # extras ignored
    assert parse_client_message(text) == TickerRequest("unsubscribe", "000660")
    assert parse_client_message('{"type": "ping"}') == Ping()
    assert parse_client_message('{"type": "ping", "ticker": 5}') == Ping()  # needs no ticker


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ("not json", sp.NOT_JSON, "not JSON"),
        ("", sp.NOT_JSON, "not JSON"),
        ("[1, 2]", sp.NOT_JSON, "is an array"),
        ('"subscribe"', sp.NOT_JSON, "is a string"),
        ("[" * 100_000, sp.TOO_LARGE, "at most 4096 characters"),
        ('{"ticker": "005930"}', sp.UNKNOWN_TYPE, "has no type; valid types: subscribe"),
        ('{"type": "SUBSCRIBE"}', sp.UNKNOWN_TYPE, "'SUBSCRIBE' is not served"),
        ('{"type": {"nested": [1]}}', sp.UNKNOWN_TYPE, "type is an object, not a string"),
        ('{"type": 7}', sp.UNKNOWN_TYPE, "type is a number, not a string; valid types: sub"),
        ('{"type": "subscribe"}', sp.BAD_TICKER, "subscribe needs a ticker"),
        ('{"type": "subscribe", "ticker": 5930}', sp.BAD_TICKER, "got a number"),
        ('{"type": "subscribe", "ticker": "5930"}', sp.BAD_TICKER, "got '5930'"),
        ('{"type": "unsubscribe", "ticker": "0059300"}', sp.BAD_TICKER, "6-digit stock code"),
        ('{"type": "subscribe", "ticker": "٠٠٥٩٣٠"}', sp.BAD_TICKER, "6-digit"),  # Arabic digits
        ('{"type": "subscribe", "ticker": true}', sp.BAD_TICKER, "got a boolean"),
    ],
)
def test_a_bad_message_says_what_was_wrong_and_what_is_valid(
    text: str, code: str, says: str
) -> None:
    parsed = parse_client_message(text)
    assert isinstance(parsed, Invalid)
    assert parsed.code == code
    assert says in parsed.message


def test_the_valid_types_are_named_in_an_unknown_type_error() -> None:
    parsed = parse_client_message('{"type": "subscribe_all"}')
    assert parsed == Invalid(
        sp.UNKNOWN_TYPE,
        "type 'subscribe_all' is not served; valid types: subscribe, unsubscribe, ping",
    )


def test_an_error_repeats_only_a_short_excerpt_of_the_clients_value() -> None:
    parsed = parse_client_message(json.dumps({"type": "x" * 3000}))
    assert isinstance(parsed, Invalid)
    assert len(parsed.message) < 120
    assert "x" * 21 not in parsed.message


def test_the_size_limit_is_the_callers() -> None:
    text = json.dumps({"type": "subscribe", "ticker": "005930", "pad": "p" * 300})
    assert isinstance(parse_client_message(text), TickerRequest)
    parsed = parse_client_message(text, max_chars=256)
    assert parsed == Invalid(
        sp.TOO_LARGE, f"a message is at most 256 characters; this one has {len(text)}"
    )


def test_parsing_never_raises() -> None:
    for text in ("{", "}", "null", "1e999999", "9" * 5000, '{"type": null}', "\x00", "[[[]]]"):
        assert isinstance(parse_client_message(text), (Invalid, Ping, TickerRequest))
    deep = "[" * 100_000  # json.loads gives up with RecursionError
    assert parse_client_message(deep, max_chars=len(deep)) == Invalid(
        sp.NOT_JSON, "the message is not JSON; send a JSON object such as " + EXAMPLE
    )


def test_an_unlisted_ticker_is_refused_with_the_listing() -> None:
    assert check("005930", LISTED) is None
    assert check("999999", LISTED) == Invalid(
        sp.UNKNOWN_TICKER,
        "ticker '999999' is not listed in the simulated market; listed: 005930, 000660",
    )


def test_answers_and_errors_are_the_documented_json() -> None:
    assert json.loads(sp.answer(TickerRequest("subscribe", "005930"))) == {
        "type": "subscribed",
        "ticker": "005930",
    }
    assert json.loads(sp.answer(TickerRequest("unsubscribe", "005930"))) == {
        "type": "unsubscribed",
        "ticker": "005930",
    }
    assert json.loads(sp.pong()) == {"type": "pong"}
    assert json.loads(sp.error(Invalid(sp.BAD_TICKER, "why"))) == {
        "type": "error",
        "code": "bad_ticker",
        "message": "why",
    }


def test_price_and_signal_messages() -> None:
    assert json.loads(sp.price(QUOTE)) == {
        "type": "price",
        "ticker": "005930",
        "price": 71200,
        "change": 1200,
        "change_rate": 1.71,
        "volume": 8123456,
        "time": "091502",
    }
    reason = sp.drawn_reason("closing_bet", 0.1)
    assert reason == "simulated closing bet (종가베팅): drawn with probability 0.1"
    assert json.loads(sp.signal("closing_bet", QUOTE, reason)) == {
        "type": "signal",
        "signal": "closing_bet",
        "ticker": "005930",
        "price": 71200,
        "time": "091502",
        "reason": reason,
    }
    assert "종가베팅" in sp.signal("closing_bet", QUOTE, reason)  # not \\u-escaped
    assert sp.cued_reason("vcp") == (
        "simulated VCP (volatility contraction pattern): cued by the control plane"
    )


def test_a_quote_is_read_off_the_kis_trade_record_of_the_step() -> None:
    market = Market(5)
    tape = Tape(market, MockClock(datetime(2025, 1, 6, 9, 0, tzinfo=KST)))
    for step in (0, 1, 95):
        quote = sp.quote(tape.record(TRADES, "000660", step))
        tick = market.tick("000660", step)
        base = market.instrument("000660").base_price
        assert quote.ticker == "000660"
        assert quote.price == tick.price
        assert quote.change == tick.price - base
        assert quote.change_rate == round((tick.price - base) / base * 100, 2)
        assert quote.volume == tick.volume  # the day's cumulative volume
        assert quote.time == f"09{step // 60:02d}{step % 60:02d}"


def test_probability_one_fires_every_time_and_zero_never() -> None:
    always = {"vcp": 1.0, "closing_bet": 1.0}
    never = {"vcp": 0.0, "closing_bet": 0.0}
    for interval in range(200):
        assert sp.fired(3, "005930", interval, always) == ["vcp", "closing_bet"]
        assert sp.fired(3, "005930", interval, never) == []
    assert sp.fired(3, "005930", 1, {}) == []  # an absent kind never fires


def test_draws_are_a_function_of_seed_ticker_and_interval() -> None:
    half = {"vcp": 0.5, "closing_bet": 0.5}

    def run(seed: int, ticker: str = "005930") -> list[list[sp.SignalKind]]:
        return [sp.fired(seed, ticker, n, half) for n in range(64)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert run(7) != run(7, "000660")


def test_one_kinds_probability_never_moves_the_others_draw() -> None:
    for n in range(100):
        with_vcp = sp.fired(1, "005930", n, {"vcp": 0.9, "closing_bet": 0.3})
        without = sp.fired(1, "005930", n, {"vcp": 0.0, "closing_bet": 0.3})
        assert ("closing_bet" in with_vcp) == ("closing_bet" in without)


def test_signals_fire_at_about_their_probability() -> None:
    counts: Counter[str] = Counter()
    rounds = 4000
    for n in range(rounds):
        counts.update(sp.fired(0, "005930", n, {"vcp": 0.1, "closing_bet": 0.25}))
    assert 0.08 < counts["vcp"] / rounds < 0.12
    assert 0.22 < counts["closing_bet"] / rounds < 0.28
