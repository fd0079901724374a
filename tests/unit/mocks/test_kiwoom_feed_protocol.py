"""Kiwoom's realtime protocol, server side (``mocks.feed.kiwoom_protocol``), without a socket.

Expected messages are written out by hand from Kiwoom's SDK and examples, and expected
values are read from ``Market.tick`` directly, so a mistake in the shared record code
cannot hide in the comparison.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from mocks.clock import KST, MockClock
from mocks.feed import kiwoom_protocol as kw
from mocks.feed.kiwoom_protocol import (
    Invalid,
    Login,
    Ping,
    Registration,
    Registrations,
    parse_client_message,
)
from mocks.feed.protocol import TRADES
from mocks.feed.records import Tape
from mocks.market import Market

OPEN = datetime(2026, 3, 2, 9, 0, tzinfo=KST)


def reg(*items: str, types: tuple[str, ...] = ("0B",), grp_no: str = "1", refresh: str = "1",
        trnm: str = "REG") -> str:  # fmt: skip
    return json.dumps(
        {
            "trnm": trnm,
            "grp_no": grp_no,
            "refresh": refresh,
            "data": [{"item": list(items), "type": list(types)}],
        }
    )


def registration(*items: str, grp_no: str = "1", refresh: str = "1") -> Registration:
    parsed = parse_client_message(reg(*items, grp_no=grp_no, refresh=refresh))
    assert isinstance(parsed, Registration)
    return parsed


def test_login_and_ping_are_read() -> None:
    assert parse_client_message('{"trnm": "LOGIN", "token": "abc"}') == Login("abc")
    assert parse_client_message('{"trnm": "LOGIN"}') == Login("")
    text = '{"trnm": "PING", "extra": 1}'
    assert parse_client_message(text) == Ping(text)  # echoed as sent, extra fields and all


def test_a_reg_is_read_as_its_type_item_pairs_in_order_once_each() -> None:
    parsed = parse_client_message(reg("005930", "000660", "005930", types=("0B", "0D")))
    assert parsed == Registration(
        "REG",
        "1",
        "1",
        (("0B", "005930"), ("0B", "000660"), ("0D", "005930"), ("0D", "000660")),
    )
    removal = parse_client_message(reg("005930", trnm="REMOVE"))
    assert removal == Registration("REMOVE", "1", "1", (("0B", "005930"),))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1]",
        '{"trnm": "CNSRLST"}',
        '{"trnm": "REG", "data": [{"item": ["005930"], "type": ["0B"]}]}',  # no grp_no
        reg("005930", refresh="2"),
        '{"trnm": "REG", "grp_no": "1", "data": []}',
        '{"trnm": "REG", "grp_no": "1", "data": [{"item": "005930", "type": ["0B"]}]}',
        '{"trnm": "REG", "grp_no": "1", "data": [{"item": ["005930"], "type": []}]}',
        "x" * 5000,
    ],
)
def test_malformed_messages_get_1517_and_never_raise(text: str) -> None:
    parsed = parse_client_message(text)
    assert isinstance(parsed, Invalid)
    assert parsed.code == kw.BAD_INPUT
    assert parsed.detail.startswith("입력 값 형식이 올바르지 않습니다")


def test_a_broken_login_is_not_quoted_back() -> None:
    parsed = parse_client_message('{"trnm": "LOGIN", "token": "secret-token"')
    assert isinstance(parsed, Invalid)
    assert "secret-token" not in parsed.detail


def test_unknown_types_and_items_are_refused_by_check() -> None:
    listed = {"005930"}
    assert kw.check(registration("005930"), listed) is None
    code, text = kw.check(registration("999999"), listed) or (0, "")
    assert code == kw.UNKNOWN_ITEM == 1902
    assert "종목코드=999999" in text
    book = parse_client_message(reg("005930", types=("0D",)))
    assert isinstance(book, Registration)
    assert (kw.check(book, listed) or (0, ""))[0] == kw.BAD_INPUT
    gone = parse_client_message(reg("999999", trnm="REMOVE"))
    assert isinstance(gone, Registration)
    assert kw.check(gone, listed) is None  # a REMOVE is never refused for its items


def test_refresh_1_keeps_the_groups_registrations_and_0_replaces_them() -> None:
    book = Registrations(limit=10)
    assert book.apply(registration("005930")) == kw.OK
    assert book.apply(registration("000660", refresh="1")) == kw.OK
    assert book.active() == [("0B", "005930"), ("0B", "000660")]
    assert book.apply(registration("035720", refresh="0")) == kw.OK
    assert book.active() == [("0B", "035720")]


def test_groups_are_separate_and_remove_stops_only_its_groups_items() -> None:
    book = Registrations(limit=10)
    book.apply(registration("005930", grp_no="1"))
    book.apply(registration("000660", grp_no="2"))
    book.apply(registration("005930", grp_no="2"))
    assert book.active() == [("0B", "005930"), ("0B", "000660")]  # each pair once
    removal = parse_client_message(reg("005930", "000660", grp_no="2", trnm="REMOVE"))
    assert isinstance(removal, Registration)
    assert book.apply(removal) == kw.OK
    assert book.active() == [("0B", "005930")]  # group 1 still holds it
    assert book.apply(removal) == kw.OK  # removing what isn't there: no error


def test_a_reg_over_the_limit_is_refused_whole() -> None:
    book = Registrations(limit=2)
    book.apply(registration("005930", grp_no="1"))
    assert book.apply(registration("000660", "035720", grp_no="2")) == kw.MOCK_TOO_MANY
    assert book.active() == [("0B", "005930")]
    # Replacing a group counts what the group will hold, not what it held.
    assert book.apply(registration("000660", "035720", grp_no="1", refresh="0")) == kw.OK
    assert len(book) == 2


def test_answers_and_ping_in_kiwoom_shape() -> None:
    assert json.loads(kw.answer("REG", 0)) == {"trnm": "REG", "return_code": 0, "return_msg": ""}
    assert json.loads(kw.answer("LOGIN", 8005, kw.message(8005))) == {
        "trnm": "LOGIN",
        "return_code": 8005,
        "return_msg": "Token이 유효하지 않습니다",
    }
    assert kw.ping() == '{"trnm":"PING"}'
    assert kw.message(kw.MOCK_TOO_MANY, 41).endswith("최대=41")


def signed_against(value: int, base: int) -> str:
    return f"+{value}" if value > base else f"-{value}" if value < base else str(value)


@pytest.mark.parametrize("step", [0, 1, 37, 600])
def test_0b_values_are_the_markets_tick_at_the_step(step: int) -> None:
    market = Market(5)
    tape = Tape(market, MockClock(OPEN))
    code = "005930"
    base = market.instrument(code).base_price
    values = kw.trade_values(tape.record(TRADES, code, step), base)
    tick = market.tick(code, step)
    before = market.tick(code, step - 1).volume if step else 0
    assert values["20"] == f"{9 + step // 3600:02d}{step // 60 % 60:02d}{step % 60:02d}"
    assert values["10"] == signed_against(tick.price, base)
    change = tick.price - base
    assert values["11"] == (f"+{change}" if change > 0 else str(change))
    assert float(values["12"]) == pytest.approx(change / base * 100, abs=0.005)
    assert values["13"] == str(tick.volume)
    assert values["15"].lstrip("+-") == str(tick.volume - before)
    for fid, price in (("16", tick.open), ("17", tick.high), ("18", tick.low)):
        assert values[fid] == signed_against(price, base)
    book = market.order_book(code, step)
    assert values["27"] == signed_against(book.asks[0].price, base)
    assert values["28"] == signed_against(book.bids[0].price, base)


def test_0b_volume_is_signed_by_the_side_of_the_print() -> None:
    market = Market(5)
    tape = Tape(market, MockClock(OPEN))
    base = market.instrument("005930").base_price
    signs = set()
    for step in range(1, 60):
        price, previous = (market.tick("005930", s).price for s in (step, step - 1))
        volume = kw.trade_values(tape.record(TRADES, "005930", step), base)["15"]
        if price != previous:  # a move up is buy-initiated, down sell-initiated
            assert volume[0] == ("+" if price > previous else "-")
        signs.add(volume[0])
    assert signs == {"+", "-"}


def test_a_real_message_in_kiwoom_shape() -> None:
    message = json.loads(kw.real("0B", "005930", {"10": "+100"}))
    assert message == {
        "trnm": "REAL",
        "data": [{"type": "0B", "name": "주식체결", "item": "005930", "values": {"10": "+100"}}],
    }


def test_a_lone_surrogate_is_named_escaped_so_the_answer_can_be_sent() -> None:
    # JSON's "\ud800" escape decodes to a str UTF-8 can't encode; echoed as is, the answer
    # failed to send and the connection was reset. Found by the fuzz tier.
    parsed = parse_client_message(json.dumps({"trnm": "RE\ud800"}))
    assert isinstance(parsed, Invalid)
    assert parsed.trnm == "RE\\ud800"
    kw.answer(parsed.trnm, parsed.code, parsed.detail).encode()
    code, text = kw.check(registration("00593\udfff"), {"005930"}) or (0, "")
    assert code == kw.UNKNOWN_ITEM
    assert "00593\\udfff" in text
    kw.answer("REG", code, text).encode()
