"""Positions and P&L: average cost, realised on sells, per KST day and in all."""

from __future__ import annotations

from datetime import date

import pytest

from system.trading.positions import Book, Fill, OversoldError

MONDAY = date(2026, 11, 23)
TUESDAY = date(2026, 11, 24)


def fill(side: str, quantity: int, price: int, day: date = MONDAY, code: str = "005930") -> Fill:
    return Fill(f"c-{side}-{quantity}-{price}", code, side, quantity, price, 0.0, day)  # type: ignore[arg-type]


def test_buys_average_the_cost_and_realise_nothing() -> None:
    book = Book()
    assert book.apply(fill("buy", 10, 70_000)) == 0
    assert book.apply(fill("buy", 30, 71_000)) == 0
    held = book.position("005930")
    assert held is not None
    assert (held.quantity, held.cost) == (40, 10 * 70_000 + 30 * 71_000)
    assert held.average_price == pytest.approx(70_750.0)
    assert book.exposure("005930") == 2_830_000
    assert book.realised_total == 0


def test_a_sell_realises_against_the_average_and_keeps_it_for_the_rest() -> None:
    book = Book()
    book.apply(fill("buy", 10, 70_000))
    book.apply(fill("buy", 10, 72_000))  # average 71,000
    assert book.apply(fill("sell", 5, 69_000)) == 5 * (69_000 - 71_000)
    held = book.position("005930")
    assert held is not None
    assert held.quantity == 15
    assert held.average_price == pytest.approx(71_000.0)
    assert book.realised_on(MONDAY) == -10_000


def test_selling_everything_closes_the_position_with_no_cost_left_behind() -> None:
    book = Book()
    for _ in range(3):
        book.apply(fill("buy", 1, 70_001))  # cost 210,003: not divisible into thirds evenly
    book.apply(fill("sell", 1, 70_000))
    book.apply(fill("sell", 2, 70_000))
    assert book.position("005930") is None
    assert book.exposure("005930") == 0
    assert book.realised_total == 3 * 70_000 - 210_003  # to the won, whatever the rounding


def test_realised_p_and_l_is_kept_per_day_and_in_all() -> None:
    book = Book()
    book.apply(fill("buy", 10, 10_000))
    book.apply(fill("sell", 5, 9_000))
    book.apply(fill("sell", 5, 12_000, day=TUESDAY))
    assert (book.realised_on(MONDAY), book.realised_on(TUESDAY)) == (-5_000, 10_000)
    assert book.realised_total == 5_000


def test_a_sell_beyond_the_position_is_refused_and_books_nothing() -> None:
    book = Book()
    book.apply(fill("buy", 2, 10_000))
    with pytest.raises(OversoldError, match="sold 3 of 005930 holding 2"):
        book.apply(fill("sell", 3, 10_000))
    held = book.position("005930")
    assert held is not None
    assert held.quantity == 2
    assert len(book.fills) == 1


def test_unrealised_counts_only_codes_with_a_price() -> None:
    book = Book()
    book.apply(fill("buy", 10, 10_000))
    book.apply(fill("buy", 1, 50_000, code="000660"))
    assert book.unrealised({"005930": 10_500}) == 5_000
    assert [p.code for p in book.positions()] == ["000660", "005930"]


@pytest.mark.parametrize(("quantity", "price"), [(0, 10_000), (1, 0), (-1, 10_000)])
def test_a_fill_needs_a_positive_quantity_and_price(quantity: int, price: int) -> None:
    with pytest.raises(ValueError, match="positive quantity and price"):
        fill("buy", quantity, price)
