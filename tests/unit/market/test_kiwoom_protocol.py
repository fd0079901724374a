"""Kiwoom's realtime protocol as the feed client reads it (``system.market.kiwoom_protocol``),
without a socket. Messages are written out here as Kiwoom sends them, not built with the
module's own helpers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from system.market import KIWOOM, FeedProtocolError
from system.market.dialect import Answer, Data, Heartbeat
from system.market.errors import InvalidValue, MalformedMessage, UnknownTrId
from system.market.records import Trade

TOKEN = "kiwoom-access-token-do-not-print"
VALUES = {
    "20": "093354",
    "10": "-71900",
    "11": "-400",
    "12": "-0.55",
    "27": "-72000",
    "28": "-71900",
    "15": "-10",
    "13": "1000",
}


def real(*entries: dict[str, Any]) -> str:
    return json.dumps({"trnm": "REAL", "data": list(entries)}, ensure_ascii=False)


def entry(item: str = "005930", **values: str) -> dict[str, Any]:
    return {"type": "0B", "name": "주식체결", "item": item, "values": {**VALUES, **values}}


def answer(trnm: str, code: int | str = 0, msg: str = "") -> str:
    return json.dumps({"trnm": trnm, "return_code": code, "return_msg": msg}, ensure_ascii=False)


def test_the_session_logs_in_first_and_registers_one_item_per_message() -> None:
    session = KIWOOM.session(TOKEN, custtype="P")
    assert [json.loads(text) for text in session.opening()] == [{"trnm": "LOGIN", "token": TOKEN}]
    assert json.loads(session.registration(("0B", "005930"), subscribe=True)) == {
        "trnm": "REG",
        "grp_no": "1",
        "refresh": "1",  # keep the group's earlier registrations
        "data": [{"item": ["005930"], "type": ["0B"]}],
    }
    assert json.loads(session.registration(("0B", "005930"), subscribe=False))["trnm"] == "REMOVE"
    assert (KIWOOM.trades, KIWOOM.books) == ("0B", None)


def test_answers_are_paired_with_what_was_asked_in_order() -> None:
    session = KIWOOM.session(TOKEN, custtype="P")
    session.registration(("0B", "005930"), subscribe=True)
    session.registration(("0B", "000660"), subscribe=True)
    session.registration(("0B", "005930"), subscribe=False)
    assert session.parse(answer("LOGIN"), now=0.0) == Answer("accepted")
    assert session.parse(answer("REG"), now=0.0) == Answer("accepted", ("0B", "005930"))
    assert session.parse(answer("REMOVE"), now=0.0) == Answer("removed", ("0B", "005930"))
    refused = session.parse(answer("REG", 1902, "종목 정보가 없습니다"), now=0.0)
    assert refused == Answer("refused", ("0B", "000660"), "1902 종목 정보가 없습니다")
    # An answer nothing was asked for is still read: it answers no registration.
    assert session.parse(answer("REG", "0"), now=0.0) == Answer("accepted", None)


def test_a_refused_login_is_fatal_and_a_token_code_refuses_the_credential() -> None:
    session = KIWOOM.session(TOKEN, custtype="P")
    login = session.parse(answer("LOGIN", 8005, "Token이 유효하지 않습니다"), now=0.0)
    assert login == Answer(
        "credential-refused", why="LOGIN refused: 8005 Token이 유효하지 않습니다", fatal=True
    )
    session.registration(("0B", "005930"), subscribe=True)
    reg = session.parse(answer("REG", 8005, "Token이 유효하지 않습니다"), now=0.0)
    assert (reg.outcome, reg.fatal) == ("credential-refused", False)


def test_ping_is_echoed_byte_for_byte() -> None:
    text = '{"trnm": "PING", "extra": 1}'
    assert KIWOOM.session(TOKEN, custtype="P").parse(text, now=0.0) == Heartbeat(text)


def test_a_real_message_is_read_whole_prices_unsigned_changes_signed() -> None:
    session = KIWOOM.session(TOKEN, custtype="P")
    data = session.parse(real(entry(), entry("000660", **{"10": "+201000", "15": "+3"})), now=0)
    assert data == Data(
        count=2,
        trades=(
            Trade("005930", "093354", 71900, -400, -0.55, 10, 1000),
            Trade("000660", "093354", 201000, -400, -0.55, 3, 1000),
        ),
    )


@pytest.mark.parametrize(
    ("text", "error", "problem"),
    [
        ("{not json", MalformedMessage, "not valid JSON"),
        ('["REAL"]', MalformedMessage, '"trnm"'),
        ('{"trnm": "SYSTEM"}', UnknownTrId, "'SYSTEM'"),
        ('{"trnm": "REAL", "data": []}', MalformedMessage, '"data" list'),
        (real({**entry(), "type": "0D"}), UnknownTrId, "'0D'"),
        (real(entry("5930")), InvalidValue, "6-character stock code"),
        (real(entry(**{"10": "abc"})), InvalidValue, "FID 10 'abc'"),
        (real(entry(**{"10": "0"})), InvalidValue, "price of 0"),
        (real(entry(**{"20": "256100"})), InvalidValue, "FID 20"),
        (real(entry(**{"12": "nan"})), InvalidValue, "FID 12"),
        (real({"type": "0B", "item": "005930"}), MalformedMessage, '"values"'),
        (answer("REG", "x"), MalformedMessage, '"return_code"'),
    ],
)
def test_a_message_that_breaks_the_protocol_is_a_clear_protocol_error(
    text: str, error: type[FeedProtocolError], problem: str
) -> None:
    session = KIWOOM.session(TOKEN, custtype="P")
    with pytest.raises(error) as raised:
        session.parse(text, now=0.0)
    assert problem in raised.value.message
    assert "Kiwoom's realtime protocol" in raised.value.message


def test_an_echoed_login_never_shows_the_token_in_an_error() -> None:
    session = KIWOOM.session(TOKEN, custtype="P")
    with pytest.raises(FeedProtocolError) as raised:
        session.parse(json.dumps({"trnm": "ECHO", "token": TOKEN}), now=0.0)
    assert TOKEN not in raised.value.message
    assert '"token": "***"' in raised.value.message


@pytest.mark.parametrize(
    "text",
    [
        '{"trnm":' + "[" * 5000,  # json.loads raises RecursionError on this, not ValueError
        answer("REG", "²"),  # str.isdigit() says yes, int() says no
        answer("REG", "--5"),
        answer("REG", "12345678901234567890"),
    ],
)
def test_json_int_cannot_read_is_malformed_not_a_crash(text: str) -> None:
    # Found by the fuzz tier (tests/fuzz/test_feed_parsers.py).
    session = KIWOOM.session(TOKEN, custtype="P")
    session.registration(("0B", "005930"), subscribe=True)
    with pytest.raises(MalformedMessage):
        session.parse(text, now=0.0)


def test_a_return_code_sent_as_text_is_read() -> None:
    session = KIWOOM.session(TOKEN, custtype="P")
    session.registration(("0B", "005930"), subscribe=True)
    assert session.parse(answer("REG", "0"), now=0.0) == Answer("accepted", ("0B", "005930"))
