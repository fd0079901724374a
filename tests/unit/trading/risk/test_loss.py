"""LossLimits: daily (KST day) and cumulative limits on the net realised loss, reservations
of open trades' worst cases, and the halt on a breach."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from system.broker import KST
from system.trading.risk import (
    ALLOWED,
    DuplicateTrade,
    LossLimits,
    Reason,
    Refused,
    UnknownTrade,
)

DAY = date(2025, 3, 14)
NEXT_DAY = date(2025, 3, 17)


def test_a_day_lost_exactly_to_its_limit_does_not_halt_and_one_won_more_does() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    assert limits.record(-300_000, DAY, at=1.0) is None
    assert limits.record(-200_000, DAY, at=2.0) is None  # exactly the limit
    assert not limits.halted
    halt = limits.record(-1, DAY, at=3.0)
    assert halt is not None
    assert (halt.reason, halt.at, halt.automatic) == (Reason.DAILY_LOSS_LIMIT, 3.0, True)
    assert "500,001" in halt.detail
    assert limits.halt == halt


def test_a_profit_earlier_in_the_day_leaves_room_for_a_later_loss() -> None:
    # The limit bounds the day's net result, not its losing trades alone.
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.record(100_000, DAY, at=1.0)
    assert limits.record(-600_000, DAY, at=2.0) is None
    assert limits.daily_pnl(DAY) == -500_000
    assert limits.record(-1, DAY, at=3.0) is not None


def test_the_daily_loss_starts_from_zero_on_a_new_trading_day() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.record(-500_000, DAY, at=1.0)
    assert limits.headroom(DAY) == 0
    assert limits.headroom(NEXT_DAY) == 500_000  # asking changes nothing...
    assert limits.daily_pnl(DAY) == -500_000
    assert limits.record(-400_000, NEXT_DAY, at=2.0) is None  # ...recording rolls the day
    assert limits.daily_pnl(NEXT_DAY) == -400_000
    assert limits.trading_day == NEXT_DAY


def test_the_day_turns_at_midnight_in_korea_not_at_midnight_utc() -> None:
    # 14:59:59 UTC is 23:59:59 KST; 15:00:00 UTC is 00:00:00 KST, the next trading day.
    def kst_day(hour: int, minute: int, second: int) -> date:
        return datetime(2025, 3, 14, hour, minute, second, tzinfo=UTC).astimezone(KST).date()

    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.record(-500_000, kst_day(14, 59, 59), at=1.0)
    assert limits.record(-500_000, kst_day(15, 0, 0), at=2.0) is None
    assert limits.record(-1, kst_day(15, 0, 1), at=3.0) is not None


def test_the_cumulative_loss_is_not_reset_by_a_new_day() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=800_000)
    assert limits.record(-400_000, DAY, at=1.0) is None
    assert limits.record(-400_000, NEXT_DAY, at=2.0) is None  # exactly the cumulative limit
    halt = limits.record(-1, NEXT_DAY, at=3.0)
    assert halt is not None
    assert halt.reason == Reason.CUMULATIVE_LOSS_LIMIT
    assert limits.cumulative_pnl == -800_001


def test_a_loss_past_both_limits_halts_for_the_cumulative_one() -> None:
    # The daily limit would clear itself tomorrow; the cumulative one would not.
    limits = LossLimits(daily_limit=500_000, cumulative_limit=500_000)
    halt = limits.record(-600_000, DAY, at=1.0)
    assert halt is not None
    assert halt.reason == Reason.CUMULATIVE_LOSS_LIMIT


def test_a_late_report_for_a_past_day_counts_toward_the_current_day() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.record(-400_000, NEXT_DAY, at=1.0)
    assert limits.record(-100_001, DAY, at=2.0) is not None
    assert limits.trading_day == NEXT_DAY


def test_a_halted_guard_refuses_every_trade_until_released_even_on_a_new_day() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.record(-500_001, DAY, at=1.0)
    refused = limits.check(0, NEXT_DAY)
    assert isinstance(refused, Refused)
    assert (refused.guard, refused.reason) == ("loss-limits", Reason.DAILY_LOSS_LIMIT)
    assert "halted" in refused.detail
    assert limits.release() is True
    assert limits.check(500_000, NEXT_DAY) is ALLOWED
    assert limits.release() is False  # nothing left to release


def test_only_the_first_breach_is_a_halt() -> None:
    limits = LossLimits(daily_limit=100, cumulative_limit=None)
    first = limits.record(-101, DAY, at=1.0)
    assert limits.record(-50, DAY, at=2.0) is None
    assert limits.halt == first


def test_a_profit_after_a_release_does_not_halt_again_though_the_day_is_still_over() -> None:
    limits = LossLimits(daily_limit=100, cumulative_limit=None)
    limits.record(-200, DAY, at=1.0)
    limits.release()  # a person accepts the day's loss of 200
    assert limits.record(50, DAY, at=2.0) is None
    assert not limits.halted
    assert limits.record(-50, DAY, at=3.0) is None  # back to what was accepted
    assert limits.record(-1, DAY, at=4.0) is not None  # past it: a new breach


# -- marked to market ----------------------------------------------------------------------


def test_an_unrealised_loss_past_the_limit_halts_before_anything_is_sold() -> None:
    limits = LossLimits(daily_limit=100_000, cumulative_limit=None)
    limits.record(-30_000, DAY, at=1.0)
    assert limits.mark(-70_000, DAY, at=2.0) is None  # 100,000 marked: exactly the limit
    halt = limits.mark(-70_001, DAY, at=3.0)
    assert halt is not None
    assert (halt.reason, halt.at, halt.automatic) == (Reason.DAILY_LOSS_LIMIT, 3.0, True)
    assert "100,001" in halt.detail
    assert "70,001 unrealised" in halt.detail
    assert limits.daily_pnl(DAY) == -30_000  # marking realises nothing
    assert limits.unrealised == -70_001


def test_an_unrealised_profit_never_halts_and_a_realised_breach_is_left_to_record() -> None:
    limits = LossLimits(daily_limit=100, cumulative_limit=None)
    assert limits.mark(5_000, DAY, at=1.0) is None
    limits.record(-100, DAY, at=2.0)
    assert limits.mark(0, DAY, at=3.0) is None
    assert not limits.halted


def test_the_cumulative_limit_is_marked_too_and_named_when_both_are_past() -> None:
    limits = LossLimits(daily_limit=100_000, cumulative_limit=50_000)
    halt = limits.mark(-60_000, DAY, at=1.0)
    assert halt is not None
    assert halt.reason == Reason.CUMULATIVE_LOSS_LIMIT


def test_a_release_accepts_the_marked_loss_until_it_grows() -> None:
    limits = LossLimits(daily_limit=100, cumulative_limit=None)
    assert limits.mark(-150, DAY, at=1.0) is not None
    limits.release()
    assert limits.mark(-150, DAY, at=2.0) is None  # the same loss: not a new breach
    assert limits.record(-150, DAY, at=3.0) is None  # sold at that price: still accepted
    assert limits.mark(0, DAY, at=4.0) is None
    assert limits.mark(-1, DAY, at=5.0) is not None  # a loss past what was accepted


def test_a_new_day_forgets_the_accepted_daily_loss_but_not_the_cumulative_one() -> None:
    limits = LossLimits(daily_limit=100, cumulative_limit=1_000)
    limits.record(-150, DAY, at=1.0)
    limits.release()
    assert limits.mark(-101, NEXT_DAY, at=2.0) is not None  # a fresh day: past its limit
    assert limits.halt is not None
    assert limits.halt.reason == Reason.DAILY_LOSS_LIMIT


def test_a_trade_whose_worst_case_fits_exactly_is_allowed_and_one_won_more_is_refused() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.record(-300_000, DAY, at=1.0)
    assert limits.headroom(DAY) == 200_000
    assert not limits.would_breach(200_000, DAY)
    assert limits.check(200_000, DAY) is ALLOWED
    assert limits.would_breach(200_001, DAY)
    refused = limits.check(200_001, DAY)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.DAILY_LOSS_LIMIT
    assert not limits.halted  # a refusal is not a halt


def test_open_trades_reservations_count_against_the_headroom_until_they_settle() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=1_000_000)
    limits.reserve("t1", 300_000)
    assert limits.headroom(DAY) == 200_000
    assert limits.would_breach(200_001, DAY)
    # The trade lost less than its worst case: the rest of the reservation comes back.
    assert limits.settle("t1", -100_000, DAY, at=5.0) is None
    assert limits.reserved == 0
    assert limits.headroom(DAY) == 400_000


def test_the_headroom_is_the_tighter_of_the_two_limits() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=700_000)
    limits.record(-400_000, DAY, at=1.0)
    assert limits.headroom(NEXT_DAY) == 300_000  # the cumulative room, not the day's 500,000
    refused = limits.check(300_001, NEXT_DAY)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.CUMULATIVE_LOSS_LIMIT


def test_a_settled_loss_beyond_its_reservation_still_halts() -> None:
    # The reservation refuses trades up front; the halt catches a worst case that lied.
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.reserve("t1", 100_000)
    halt = limits.settle("t1", -500_001, DAY, at=9.0)
    assert halt is not None
    assert halt.at == 9.0


def test_unreserving_gives_the_room_back_with_no_pnl() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.reserve("t1", 500_000)
    assert limits.headroom(DAY) == 0
    assert limits.unreserve("t1") == 500_000
    assert limits.headroom(DAY) == 500_000
    assert limits.cumulative_pnl == 0


def test_reservations_are_kept_exact_under_misuse() -> None:
    limits = LossLimits(daily_limit=500_000, cumulative_limit=None)
    limits.reserve("t1", 100_000)
    with pytest.raises(DuplicateTrade):
        limits.reserve("t1", 100_000)
    with pytest.raises(UnknownTrade):
        limits.settle("t2", -1, DAY, at=1.0)
    with pytest.raises(UnknownTrade):
        limits.unreserve("t2")
    with pytest.raises(TypeError):
        limits.settle("t1", -1.5, DAY, at=1.0)  # type: ignore[arg-type]
    assert limits.reserved == 100_000
    assert limits.cumulative_pnl == 0


def test_without_limits_nothing_is_refused_or_halted() -> None:
    limits = LossLimits(daily_limit=None, cumulative_limit=None)
    assert limits.record(-(10**12), DAY, at=1.0) is None
    assert limits.headroom(DAY) is None
    assert limits.check(10**12, DAY) is ALLOWED
