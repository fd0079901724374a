"""Records to trades and books: the documented columns, the sign code, absurd values."""

from __future__ import annotations

import pytest

from system.market import BookLevel, InvalidValue, OrderBook, Trade
from system.market.records import order_book, trade
from tests.unit.market.conftest import (
    ASKP1,
    ASKP_RSQN1,
    BIDP1,
    BIDP_RSQN1,
    CNTG_VOL,
    book_record,
    trade_record,
)


def fields(record: str) -> list[str]:
    return record.split("^")


def test_a_trade_record() -> None:
    assert trade(fields(trade_record())) == Trade(
        code="005930",
        time="093354",
        price=71900,
        change=400,
        change_rate=0.56,
        volume=10,
        accumulated_volume=1000,
    )


@pytest.mark.parametrize(
    ("sign", "change", "expected"),
    [
        ("2", "400", 400),  # up
        ("1", "21000", 21000),  # upper limit
        ("3", "0", 0),  # unchanged
        ("5", "400", -400),  # down, sent unsigned
        ("5", "-400", -400),  # down, sent signed
        ("4", "21000", -21000),  # lower limit
    ],
)
def test_the_sign_code_decides_the_direction(sign: str, change: str, expected: int) -> None:
    assert trade(fields(trade_record(sign=sign, change=change))).change == expected


def test_numbers_with_decimals_and_padding_are_read() -> None:
    parsed = trade(fields(trade_record(price=" 71900.00 ", rate="-1.25")))
    assert (parsed.price, parsed.change_rate) == (71900, -1.25)


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ({"price": "abc"}, "H0STCNT0 STCK_PRPR 'abc' is not a number"),
        ({"price": ""}, "H0STCNT0 STCK_PRPR '' is not a number"),
        ({"price": "0"}, "H0STCNT0 STCK_PRPR '0' is below 1"),
        ({"price": "-71900"}, "H0STCNT0 STCK_PRPR '-71900' is below 1"),
        ({"price": "71900.5"}, "H0STCNT0 STCK_PRPR '71900.5' is not a whole number"),
        ({"price": "NaN"}, "H0STCNT0 STCK_PRPR 'NaN' is not a finite number"),
        ({"rate": "Infinity"}, "H0STCNT0 PRDY_CTRT 'Infinity' is not a finite number"),
        ({"rate": "1e400"}, "H0STCNT0 PRDY_CTRT '1e400' is not a finite rate"),
        ({"time": "253000"}, "H0STCNT0 STCK_CNTG_HOUR '253000' is not a time of day as HHMMSS"),
        ({"time": "0930"}, "H0STCNT0 STCK_CNTG_HOUR '0930' is not a time of day as HHMMSS"),
        ({"change": "x"}, "H0STCNT0 PRDY_VRSS 'x' is not a number"),
    ],
)
def test_absurd_trade_values(override: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        trade(fields(trade_record(**override)))
    assert raised.value.problem == says


def test_absurd_volumes_and_codes() -> None:
    with pytest.raises(InvalidValue, match="CNTG_VOL '-1' is below 0"):
        trade(fields(trade_record(volume=-1)))
    with pytest.raises(InvalidValue, match="ACML_VOL '-5' is below 0"):
        trade(fields(trade_record(accumulated=-5)))
    with pytest.raises(InvalidValue, match="MKSC_SHRN_ISCD '5930' is not a 6-character"):
        trade(fields(trade_record("5930")))
    # Found by tests/fuzz: a trailing newline and full-width digits passed as codes and times.
    for code in ("005930\n", "００５９３０"):
        with pytest.raises(InvalidValue, match=r"MKSC_SHRN_ISCD .* is not a 6-character"):
            trade(fields(trade_record(code)))
    with pytest.raises(InvalidValue, match="is not a time of day"):
        trade(fields(trade_record(time="090000\n")))


def test_a_book_record_best_first() -> None:
    book = order_book(fields(book_record()), at=12.5)
    assert book == OrderBook(
        code="005930",
        asks=tuple(BookLevel(71900 + 100 * i, 1000 + i) for i in range(10)),
        bids=tuple(BookLevel(71800 - 100 * i, 2000 + i) for i in range(10)),
        at=12.5,
    )


def test_empty_book_levels_are_left_out() -> None:
    record = book_record(**{f"f{ASKP1 + 9}": "0", f"f{BIDP1 + 8}": "0", f"f{BIDP1 + 9}": "0"})
    book = order_book(fields(record), at=0.0)
    assert (len(book.asks), len(book.bids)) == (9, 8)
    assert book.asks[-1] == BookLevel(72700, 1008)


@pytest.mark.parametrize(
    ("index", "value", "says"),
    [
        (ASKP1, "-71900", "H0STASP0 ASKP1 '-71900' is below 0"),
        (BIDP1, "x", "H0STASP0 BIDP1 'x' is not a number"),
        (ASKP_RSQN1, "-3", "H0STASP0 ASKP_RSQN1 '-3' is below 0"),
        (BIDP_RSQN1 + 9, "1.5", "H0STASP0 BIDP_RSQN10 '1.5' is not a whole number"),
        (1, "999999", "H0STASP0 BSOP_HOUR '999999' is not a time of day as HHMMSS"),
        (0, "", "H0STASP0 MKSC_SHRN_ISCD '' is not a 6-character stock code"),
    ],
)
def test_absurd_book_values(index: int, value: str, says: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        order_book(fields(book_record(**{f"f{index}": value})), at=0.0)
    assert raised.value.problem == says


@pytest.mark.parametrize("value", ["1e999999999", "-1E+999999999999999999", "1" + "0" * 19])
def test_numbers_beyond_any_market_are_refused_at_once(value: str) -> None:
    # int(Decimal("1e999999999")) builds a billion-digit number: hours, not an error.
    # Found by the fuzz tier.
    record = fields(trade_record())
    record[CNTG_VOL] = value
    with pytest.raises(InvalidValue, match=r"CNTG_VOL .* is beyond 1e\+18"):
        trade(record)
