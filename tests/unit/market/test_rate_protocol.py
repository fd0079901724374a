"""The rate feed's protocol (Kraken's WebSocket v2 ticker channel) without a socket: what
the client sends, what each server message means, and every malformed message refused
with a reason.

Messages are written out here as Kraken documents them, not built with the mock's code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from system.market import FeedProtocolError, InvalidValue, MalformedMessage, RateQuote
from system.market.rate_protocol import (
    Answer,
    Heartbeat,
    Pong,
    Status,
    Ticker,
    parse_message,
    subscribe_message,
)

AT = 12.5


def ticker(*data: dict[str, Any], kind: str = "update") -> str:
    return json.dumps({"channel": "ticker", "type": kind, "data": list(data)})


def quote(
    symbol: str = "EUR/JPY", bid: Any = 161.2, ask: Any = 161.233, **more: Any
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "bid": bid,
        "bid_qty": 2555027.93,
        "ask": ask,
        "ask_qty": 438786.33,
        "last": 161.216,
        "volume": 30858.54,
        "vwap": 161.1,
        "low": 160.9,
        "high": 161.3,
        "change": 0.1,
        "change_pct": 0.06,
        "timestamp": "2026-03-02T00:00:01.000000Z",
        **more,
    }


def test_the_subscribe_request_asks_for_every_pair_on_best_bid_and_offer_changes() -> None:
    message = json.loads(subscribe_message(["USD/KRW", "EUR/JPY"]))
    assert message == {
        "method": "subscribe",
        "params": {
            "channel": "ticker",
            "symbol": ["USD/KRW", "EUR/JPY"],
            "event_trigger": "bbo",
            "snapshot": True,
        },
    }
    off = json.loads(subscribe_message(["USD/KRW"], method="unsubscribe"))
    assert off == {"method": "unsubscribe", "params": {"channel": "ticker", "symbol": ["USD/KRW"]}}


def test_a_ticker_message_gives_quotes_stamped_with_the_arrival_time() -> None:
    parsed = parse_message(ticker(quote(), quote("USD/KRW", 1380, 1380.41), kind="snapshot"), at=AT)
    assert parsed == Ticker(
        "snapshot",
        (RateQuote("EUR/JPY", 161.2, 161.233, AT), RateQuote("USD/KRW", 1380.0, 1380.41, AT)),
    )


def test_answers_heartbeats_status_and_pongs() -> None:
    ok = {
        "method": "subscribe",
        "result": {"channel": "ticker", "symbol": "EUR/JPY", "snapshot": True},
        "success": True,
        "time_in": "2026-03-02T00:00:00.110047Z",
        "time_out": "2026-03-02T00:00:00.110047Z",
    }
    assert parse_message(json.dumps(ok), at=AT) == Answer("subscribe", "EUR/JPY", ok=True)
    refused = {
        "method": "subscribe",
        "error": "Currency pair not supported XXX/KRW",
        "success": False,
        "symbol": "XXX/KRW",
    }
    assert parse_message(json.dumps(refused), at=AT) == Answer(
        "subscribe", "XXX/KRW", ok=False, error="Currency pair not supported XXX/KRW"
    )
    assert parse_message('{"channel":"heartbeat"}', at=AT) == Heartbeat()
    status = {
        "channel": "status",
        "type": "update",
        "data": [{"system": "online", "api_version": "v2", "connection_id": 1}],
    }
    assert parse_message(json.dumps(status), at=AT) == Status("online")
    assert parse_message('{"method":"pong","req_id":3}', at=AT) == Pong()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"channel":"ticker","type":"update","data":[{"symbol":"EUR/JP', "not valid JSON"),
        ("", "not valid JSON"),
        ("0|H0STCNT0|001|005930^093354", "not valid JSON"),
        ("[1,2,3]", "not a JSON object"),
        ('{"hello":"world"}', "neither a channel message nor an answer"),
        ('{"method":"subscribe"}', "neither a channel message nor an answer"),
        ('{"channel":"book","type":"update","data":[]}', "channel 'book' is none"),
        (ticker(quote(), kind="delta"), "type must be snapshot or update"),
        ('{"channel":"ticker","type":"update","data":[]}', 'non-empty "data" list'),
        ('{"channel":"ticker","type":"update"}', 'non-empty "data" list'),
        ('{"channel":"ticker","type":"update","data":["EUR/JPY"]}', "not an object"),
        (ticker({"bid": 1.0, "ask": 1.1}), 'without a "symbol"'),
    ],
)
def test_malformed_messages_are_refused_saying_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(MalformedMessage) as raised:
        parse_message(text, at=AT)
    assert problem in raised.value.problem
    assert "Kraken's WebSocket v2 ticker protocol" in raised.value.message


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (quote(bid="161.2"), "bid '161.2' is not a number"),
        (quote(ask=None), "ask None is not a number"),
        (quote(bid=True), "bid True is not a number"),
        (quote(bid=0), "must be finite and positive"),
        (quote(bid=-1.0), "must be finite and positive"),
        (quote(ask=161.0), "ask 161.0 is below bid 161.2"),
        (quote(symbol="EURJPY"), "is not BASE/QUOTE"),
        (quote(symbol="EUR/EUR"), "is not BASE/QUOTE"),
    ],
)
def test_a_bad_quote_drops_the_whole_message(bad: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidValue, match=problem):
        parse_message(ticker(quote("USD/KRW", 1380, 1380.4), bad), at=AT)


def test_non_finite_numbers_are_invalid_values() -> None:
    text = '{"channel":"ticker","type":"update","data":[{"symbol":"USD/KRW","bid":NaN,"ask":1}]}'
    with pytest.raises(InvalidValue, match="finite"):
        parse_message(text, at=AT)


def test_every_protocol_error_is_a_feed_protocol_error_with_a_safe_excerpt() -> None:
    long = ticker(*(quote(f"C{i:02d}/KRW", bid="x") for i in range(20)))
    with pytest.raises(FeedProtocolError) as raised:
        parse_message(long, at=AT)
    assert f"({len(long)} characters)" in raised.value.text


def test_an_integer_beyond_floats_range_is_an_invalid_value_not_a_crash() -> None:
    # JSON integers have no size limit; float() raises OverflowError past 1.8e308. Found by
    # the fuzz tier: the exception escaped and ended the rate feed's task for good.
    with pytest.raises(InvalidValue, match="ask is a number beyond any price"):
        parse_message(ticker(quote("USD/KRW", 1380, 10**400)), at=AT)
