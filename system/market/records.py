"""From realtime records (tuples of column values) to trades and order books.

KIS sends every value as text. A value that is not a number where one is due, or a number
no market has, is an ``InvalidValue``: the client then drops the whole frame, so a frame
is used entirely or not at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from system.broker.parse import signed_change
from system.market.columns import BOOK_INDEX, BOOK_LEVELS, BOOKS, TRADE_INDEX, TRADES
from system.market.errors import InvalidValue
from system.market.model import BookLevel, OrderBook

# KRX short codes: six characters, digits for stocks, some newer listings use letters.
# [0-9] and \Z, not \d and $: \d takes any Unicode digit, and $ matches before a final
# newline, so "005930\n" passed as a code (found by tests/fuzz).
STOCK_CODE = re.compile(r"[0-9A-Z]{6}\Z")
TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]\Z")
# (price, quantity) columns of each book level, best first; named once, not per record.
_ASK_LEVELS = tuple((f"ASKP{i}", f"ASKP_RSQN{i}") for i in range(1, BOOK_LEVELS + 1))
_BID_LEVELS = tuple((f"BIDP{i}", f"BIDP_RSQN{i}") for i in range(1, BOOK_LEVELS + 1))
# Far beyond any price, change or volume (a day's volume on KRX is below 10^11). Checked
# before a decimal is made an integer: int(Decimal("1e999999999")) builds a billion-digit
# number, which would hold the feed's task for hours over a 12-character field.
_LARGEST = 10**18


@dataclass(frozen=True)
class Trade:
    """One H0STCNT0 record: a trade (체결) of ``code`` at ``time`` (HHMMSS, KST).

    ``volume`` is this trade's quantity (CNTG_VOL); ``accumulated_volume`` the day's total
    including it (ACML_VOL), which is what gaps and duplicates are judged by.
    """

    code: str
    time: str
    price: int
    change: int
    change_rate: float
    volume: int
    accumulated_volume: int


class _Record:
    """Typed reads of one record, failing with the tr_id and the column at fault."""

    def __init__(self, values: Sequence[str], index: dict[str, int], tr_id: str) -> None:
        self.values = values
        self.index = index
        self.tr_id = tr_id

    def text(self, column: str) -> str:
        return self.values[self.index[column]]

    def fail(self, column: str, problem: str) -> InvalidValue:
        value = self.text(column)
        return InvalidValue(
            f"{self.tr_id} {column} {value!r} {problem}", text="^".join(self.values)
        )

    def code(self) -> str:
        value = self.text("MKSC_SHRN_ISCD")
        if not STOCK_CODE.match(value):
            raise self.fail("MKSC_SHRN_ISCD", "is not a 6-character stock code")
        return value

    def time(self, column: str) -> str:
        value = self.text(column)
        if not TIME_OF_DAY.match(value):
            raise self.fail(column, "is not a time of day as HHMMSS")
        return value

    def number(self, column: str) -> Decimal:
        try:
            value = Decimal(self.text(column).strip())
        except InvalidOperation:
            raise self.fail(column, "is not a number") from None
        if not value.is_finite():
            raise self.fail(column, "is not a finite number")
        return value

    def integer(self, column: str, *, minimum: int = 0) -> int:
        # Nearly every value is plain digits, which int() reads several times faster than
        # Decimal (an order book has 40 of them); anything else takes the checked path.
        try:
            value = int(self.text(column))
        except ValueError:
            number = self.number(column)
            if number != number.to_integral_value():
                raise self.fail(column, "is not a whole number") from None
            if number.copy_abs() > _LARGEST:  # not abs(): it rounds, and overflows there
                raise self.fail(column, f"is beyond {_LARGEST:.0e}") from None
            value = int(number)
        if value < minimum:
            raise self.fail(column, f"is below {minimum}")
        if value > _LARGEST:
            raise self.fail(column, f"is beyond {_LARGEST:.0e}")
        return value


def trade(values: Sequence[str]) -> Trade:
    """The trade in an H0STCNT0 record; ``InvalidValue`` if a field makes no sense."""
    record = _Record(values, TRADE_INDEX, TRADES)
    rate = float(record.number("PRDY_CTRT"))
    if not math.isfinite(rate):
        raise record.fail("PRDY_CTRT", "is not a finite rate")
    return Trade(
        code=record.code(),
        time=record.time("STCK_CNTG_HOUR"),
        price=record.integer("STCK_PRPR", minimum=1),
        change=signed_change(
            record.integer("PRDY_VRSS", minimum=-(10**12)), record.text("PRDY_VRSS_SIGN")
        ),
        change_rate=rate,
        volume=record.integer("CNTG_VOL"),
        accumulated_volume=record.integer("ACML_VOL"),
    )


def order_book(values: Sequence[str], *, at: float) -> OrderBook:
    """The ten-level book in an H0STASP0 record, best first, empty levels (price 0) left out;
    ``at`` is the loop time it arrived."""
    record = _Record(values, BOOK_INDEX, BOOKS)
    code = record.code()
    record.time("BSOP_HOUR")

    def side(columns: tuple[tuple[str, str], ...]) -> tuple[BookLevel, ...]:
        levels = (BookLevel(record.integer(price), record.integer(size)) for price, size in columns)
        return tuple(level for level in levels if level.price > 0)

    return OrderBook(code=code, asks=side(_ASK_LEVELS), bids=side(_BID_LEVELS), at=at)
