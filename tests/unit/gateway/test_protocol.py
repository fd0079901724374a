"""The /ws message protocol: parsing client messages, building the gateway's."""

from __future__ import annotations

import json

import pytest

from system.gateway.protocol import (
    InvalidTicker,
    Ping,
    Pong,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    check_ticker,
    encode,
    feed_status,
    parse_client_message,
    price_update,
)
from system.market.model import FeedStatus, PriceUpdate

LIMIT = 4096


def parse(message: object) -> object:
    text = message if isinstance(message, str) else json.dumps(message)
    return parse_client_message(text, LIMIT)


def error_of(message: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse(message)
    return caught.value


def test_the_client_messages_are_parsed() -> None:
    assert parse({"type": "subscribe", "ticker": "005930"}) == Subscribe("005930", by_ticker=True)
    assert parse({"type": "subscribe", "topic": "signals"}) == Subscribe("signals", by_ticker=False)
    assert parse({"type": "unsubscribe", "ticker": "000660"}) == Unsubscribe("000660", True)
    assert parse({"type": "pong", "ts": 12.5}) == Pong(12.5)
    assert parse({"type": "pong"}) == Pong(None)
    assert parse({"type": "pong", "ts": "soon"}) == Pong(None)
    assert parse({"type": "ping"}) == Ping()


def test_malformed_json_says_where_and_what_to_send() -> None:
    error = error_of('{"type": "subscribe", ')
    assert error.code == "malformed_json"
    assert error.message == (
        "message is not valid JSON (Expecting property name enclosed in double quotes at "
        'character 22); send an object such as {"type":"subscribe","ticker":"005930"}'
    )


def test_json_that_is_not_an_object_is_malformed() -> None:
    error = error_of("[1, 2]")
    assert (error.code, error.message.split(";")[0]) == (
        "malformed_json",
        "message is JSON but not an object (got list)",
    )


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    assert error_of("[" * 3000).code == "malformed_json"


def test_a_number_too_long_for_python_is_an_error_not_a_crash() -> None:
    # Valid JSON that json.loads refuses with a plain ValueError (over 4300 digits), within
    # reach once max_message_bytes is raised.
    text = '{"type":"ping","n":' + "1" * 5000 + "}"
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(text, 1 << 20)
    assert caught.value.code == "malformed_json"
    assert "number too long" in caught.value.message


def test_a_missing_type_and_an_unknown_type_name_the_known_ones() -> None:
    missing = error_of({"ticker": "005930"})
    assert (missing.code, missing.message) == (
        "missing_field",
        'message has no "type": it must be one of subscribe, unsubscribe, pong, ping',
    )
    unknown = error_of({"type": "subscribe_all"})
    assert (unknown.code, unknown.message) == (
        "unknown_type",
        'unknown message type "subscribe_all": the gateway understands subscribe, '
        "unsubscribe, pong, ping",
    )


def test_subscribe_without_a_target_shows_both_forms() -> None:
    error = error_of({"type": "subscribe"})
    assert (error.code, error.message) == (
        "missing_field",
        'subscribe needs "ticker" or "topic", e.g. {"type":"subscribe","ticker":"005930"} '
        'or {"type":"subscribe","topic":"signals"}',
    )


@pytest.mark.parametrize(
    ("ticker", "shown"),
    [
        ("5930", '"5930"'),
        ("0059300", '"0059300"'),
        ("00593A", '"00593A"'),
        ("005930\n", '"005930\\n"'),  # a ^\d{6}$ match would let this through
        ("٠٠٥٩٣٠", '"٠٠٥٩٣٠"'),  # Arabic-Indic digits are digits to \d, not to KRX
        ("", '""'),
        (None, "null"),
    ],
)
def test_invalid_tickers_are_named_with_the_expected_form(ticker: object, shown: str) -> None:
    error = error_of({"type": "subscribe", "ticker": ticker})
    assert isinstance(error, InvalidTicker)
    assert error.code == "invalid_ticker"
    assert error.message == (
        f'{shown} is not a ticker code: expected a string of 6 digits such as "005930"'
    )


def test_a_numeric_ticker_is_told_why_it_must_be_a_string() -> None:
    error = error_of({"type": "subscribe", "ticker": 5930})
    assert error.message == (
        '5930 is not a ticker code: expected a string of 6 digits such as "005930" '
        "(send it as a string: a number loses the leading zeros)"
    )


def test_elw_codes_are_six_digit_tickers_too() -> None:
    assert check_ticker("580012") == "580012"


def test_an_unknown_topic_lists_the_topics() -> None:
    error = error_of({"type": "subscribe", "topic": "news"})
    assert (error.code, error.message) == (
        "unknown_topic",
        'unknown topic "news": the topics are "signals"; for prices send '
        '{"type":"subscribe","ticker":"005930"}',
    )
    # A ticker in the topic field is still a ticker, checked as one.
    assert parse({"type": "subscribe", "topic": "005930"}) == Subscribe("005930", False)
    assert error_of({"type": "subscribe", "topic": "5930"}).code == "invalid_ticker"


def test_an_oversized_message_is_refused_before_parsing() -> None:
    pad = "가" * 1400
    text = json.dumps({"type": "subscribe", "ticker": "005930", "pad": pad}, ensure_ascii=False)
    assert len(text) == 1452
    size = len(text.encode())
    assert size == 4252  # Hangul is 3 bytes in UTF-8: the limit counts bytes, not characters
    error = error_of(text)
    assert (error.code, error.message) == (
        "message_too_large",
        "message of 4252 bytes exceeds the limit of 4096 bytes and was ignored; "
        "send one subscription per message",
    )


def test_price_updates_have_the_documented_shape() -> None:
    update = PriceUpdate("005930", 80100, 100, 0.12, 1234, at=7.5, source="rest")
    assert price_update(update, stale=True) == {
        "type": "price_update",
        "ticker": "005930",
        "data": {
            "price": 80100,
            "change": 100,
            "change_rate": 0.12,
            "volume": 1234,
            "source": "rest",
            "stale": True,
            "at": 7.5,
        },
    }
    nan = PriceUpdate("005930", 80100, 100, float("nan"), 1234, at=7.5)
    assert price_update(nan, stale=False)["data"]["change_rate"] is None


def test_feed_status_is_stale_unless_live() -> None:
    status = FeedStatus("reconnecting", since=3.0, reconnects=2, detail="reset")
    assert feed_status(status) == {
        "type": "feed_status",
        "state": "reconnecting",
        "stale": True,
        "since": 3.0,
        "reconnects": 2,
        "detail": "reset",
    }
    assert feed_status(FeedStatus("live", since=0.0))["stale"] is False


def test_encoding_is_compact_keeps_hangul_and_refuses_nan() -> None:
    assert encode({"type": "x", "name": "삼성전자"}) == '{"type":"x","name":"삼성전자"}'
    with pytest.raises(ValueError, match="Out of range float"):
        encode({"value": float("nan")})


def test_a_lone_surrogate_is_shown_escaped_so_the_error_can_be_sent() -> None:
    # JSON's "\ud800" escape decodes to a str UTF-8 can't encode: an error echoing it as
    # is could not be sent, and the client silently stopped receiving anything. Found by
    # the fuzz tier.
    error = error_of('{"type": "subscribe", "ticker": "\\ud800"}')
    assert error.message.startswith('"\\ud800" is not a ticker code')
    error.message.encode()
    assert error_of({"type": "\udfff삼성"}).message.startswith(
        'unknown message type "\\udfff\\uc0bc'
    )
    # What UTF-8 can carry is shown as sent.
    assert error_of({"type": "삼성"}).message.startswith('unknown message type "삼성"')
