"""The trade tape: in sequence, duplicates, out of order, gaps, resuming after a reconnect."""

from __future__ import annotations

from system.market.tape import Tape


def test_the_first_trade_of_a_code_starts_its_sequence() -> None:
    tape = Tape()
    assert tape.check("005930", volume=10, accumulated=1000) == "first"
    assert tape.last("005930") == 1000
    assert tape.last("000660") is None


def test_consecutive_trades_add_up() -> None:
    tape = Tape()
    tape.check("005930", volume=10, accumulated=1000)
    assert tape.check("005930", volume=5, accumulated=1005) == "next"
    assert tape.check("005930", volume=1, accumulated=1006) == "next"
    assert tape.last("005930") == 1006


def test_a_repeat_and_an_older_trade_are_duplicates_and_move_nothing() -> None:
    tape = Tape()
    tape.check("005930", volume=10, accumulated=1000)
    tape.check("005930", volume=5, accumulated=1005)
    assert tape.check("005930", volume=5, accumulated=1005) == "duplicate"
    assert tape.check("005930", volume=10, accumulated=1000) == "duplicate"
    assert tape.last("005930") == 1005
    assert tape.check("005930", volume=2, accumulated=1007) == "next"


def test_a_jump_is_a_gap_and_the_tape_moves_to_it() -> None:
    tape = Tape()
    tape.check("005930", volume=10, accumulated=1000)
    assert tape.check("005930", volume=5, accumulated=1050) == "gap"
    assert tape.last("005930") == 1050
    assert tape.check("005930", volume=5, accumulated=1055) == "next"


def test_numbers_that_do_not_add_up_are_a_gap_too() -> None:
    tape = Tape()
    tape.check("005930", volume=10, accumulated=1000)
    # Newer than 1000, but smaller than this trade's own quantity: the tape is broken.
    assert tape.check("005930", volume=50, accumulated=1020) == "gap"


def test_codes_are_independent() -> None:
    tape = Tape()
    tape.check("005930", volume=10, accumulated=1000)
    assert tape.check("000660", volume=3, accumulated=50) == "first"
    assert tape.check("005930", volume=10, accumulated=1010) == "next"


def test_after_resume_the_next_newer_trade_re_anchors_without_a_gap() -> None:
    tape = Tape()
    tape.check("005930", volume=10, accumulated=1000)
    tape.resume()
    assert tape.check("005930", volume=10, accumulated=1000) == "duplicate"
    assert tape.check("005930", volume=7, accumulated=4000) == "first"
    assert tape.check("005930", volume=1, accumulated=4002) == "gap"


def test_forget_drops_the_sequence() -> None:
    tape = Tape()
    tape.check("005930", volume=10, accumulated=1000)
    tape.forget("005930")
    assert tape.check("005930", volume=10, accumulated=900) == "first"
