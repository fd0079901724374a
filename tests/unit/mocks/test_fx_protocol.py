"""The FX venue's ticker protocol, server side (Kraken's WebSocket v2), without a socket.

Expected messages are written out by hand from Kraken's documentation, so a mistake in the
mock's idea of the protocol cannot hide in shared code.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from mocks.clock import KST
from mocks.feed import fx_protocol
from mocks.feed.fx_protocol import Invalid, Ping, TickerRequest, parse_client_message
from mocks.fx import FxMarket

AT = datetime(2026, 3, 2, 9, 0, 1, 250_000, tzinfo=KST)


def subscribe(*symbols: str, **params: object) -> str:
    return json.dumps(
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": list(symbols), **params},
            "req_id": 7,
        }
    )


def test_a_subscribe_is_read_with_its_symbols_in_order_once_each() -> None:
    parsed = parse_client_message(subscribe("EUR/JPY", "USD/KRW", "EUR/JPY"))
    assert parsed == TickerRequest("subscribe", ("EUR/JPY", "USD/KRW"), snapshot=True, req_id=7)


def test_an_unsubscribe_and_a_snapshot_turned_off() -> None:
    text = json.dumps(
        {"method": "unsubscribe", "params": {"channel": "ticker", "symbol": ["USD/KRW"]}}
    )
    assert parse_client_message(text) == TickerRequest("unsubscribe", ("USD/KRW",))
    off = parse_client_message(subscribe("USD/KRW", snapshot=False, event_trigger="bbo"))
    assert isinstance(off, TickerRequest)
    assert off.snapshot is False


def test_a_ping_is_read_with_its_request_id() -> None:
    assert parse_client_message('{"method": "ping", "req_id": 3}') == Ping(3)
    assert parse_client_message('{"method": "ping"}') == Ping(None)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", fx_protocol.MOCK_NOT_JSON),
        ("[1, 2]", fx_protocol.MOCK_NOT_JSON),
        ('{"method": "add_order"}', fx_protocol.MOCK_UNKNOWN_METHOD),
        (
            '{"method": "subscribe", "params": {"channel": "book"}}',
            fx_protocol.MOCK_UNKNOWN_CHANNEL,
        ),
        ('{"method": "subscribe", "params": {"channel": "ticker"}}', fx_protocol.MOCK_NO_SYMBOLS),
        (subscribe(), fx_protocol.MOCK_NO_SYMBOLS),
        (subscribe("USD/KRW", event_trigger="often"), "event_trigger must be bbo or trades"),
        ("{" + " " * 5000 + "}", fx_protocol.MOCK_TOO_LARGE),
    ],
)
def test_what_cannot_be_acted_on_is_an_error_never_an_exception(text: str, error: str) -> None:
    parsed = parse_client_message(text)
    assert isinstance(parsed, Invalid)
    assert parsed.error.startswith(error)


def test_answers_per_symbol_as_kraken_documents_them() -> None:
    request = TickerRequest("subscribe", ("EUR/JPY",), req_id=7)
    ok = json.loads(fx_protocol.answer(request, "EUR/JPY", at=AT))
    assert ok == {
        "method": "subscribe",
        "result": {
            "channel": "ticker",
            "symbol": "EUR/JPY",
            "snapshot": True,
            "event_trigger": "bbo",
        },
        "success": True,
        "time_in": "2026-03-02T00:00:01.250000Z",
        "time_out": "2026-03-02T00:00:01.250000Z",
        "req_id": 7,
    }
    refused = json.loads(
        fx_protocol.answer(request, "GBP/KRW", at=AT, error=fx_protocol.PAIR_NOT_SUPPORTED)
    )
    assert refused["success"] is False
    assert refused["error"] == "Currency pair not supported GBP/KRW"
    assert refused["symbol"] == "GBP/KRW"


def test_ticker_status_pong_and_invalid_messages() -> None:
    quote = FxMarket(3).quote("USD/KRW", 10)
    ticker = json.loads(fx_protocol.ticker("update", [quote], AT))
    assert (ticker["channel"], ticker["type"]) == ("ticker", "update")
    (data,) = ticker["data"]
    assert set(data) == {
        "symbol",
        "bid",
        "bid_qty",
        "ask",
        "ask_qty",
        "last",
        "volume",
        "vwap",
        "low",
        "high",
        "change",
        "change_pct",
        "timestamp",
    }
    assert (data["symbol"], data["bid"], data["ask"]) == ("USD/KRW", quote.bid, quote.ask)
    status = json.loads(fx_protocol.status(4))
    assert status["channel"] == "status"
    assert status["data"][0]["system"] == "online"
    assert status["data"][0]["connection_id"] == 4
    assert json.loads(fx_protocol.pong(Ping(9), at=AT))["req_id"] == 9
    invalid = json.loads(fx_protocol.invalid(Invalid("Method not supported", "nope", 2), at=AT))
    assert (invalid["success"], invalid["method"], invalid["req_id"]) == (False, "nope", 2)
    assert json.loads(fx_protocol.HEARTBEAT) == {"channel": "heartbeat"}


def test_a_lone_surrogate_is_named_escaped_so_the_answers_can_be_sent() -> None:
    # JSON's "\ud800" escape decodes to a str UTF-8 can't encode; echoed as is, the answer
    # failed to send and the connection was closed. Found by the fuzz tier.
    request = parse_client_message(subscribe("USD/\ud800", "USD/KRW"))
    assert isinstance(request, TickerRequest)
    assert request.symbols == ("USD/\\ud800", "USD/KRW")
    for symbol in request.symbols:
        fx_protocol.answer(request, symbol, at=AT, error="Currency pair not supported").encode()
    invalid = parse_client_message(json.dumps({"method": "sub\udfff"}))
    assert isinstance(invalid, Invalid)
    assert invalid.method == "sub\\udfff"
    fx_protocol.invalid(invalid, at=AT).encode()
