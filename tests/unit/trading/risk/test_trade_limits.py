"""TradeLimits: open trades at once, and won at risk per asset, kept exact as trades come
and go."""

from __future__ import annotations

import pytest

from system.trading.risk import (
    ALLOWED,
    DuplicateTrade,
    Reason,
    Refused,
    TradeLimits,
    UnknownTrade,
)

SAMSUNG = "005930"
HYNIX = "000660"


def test_the_last_slot_can_be_taken_and_then_no_more() -> None:
    limits = TradeLimits(max_concurrent_trades=2, max_exposure_per_asset=None)
    limits.open("t1", SAMSUNG, 100_000)
    assert limits.check(HYNIX, 100_000) is ALLOWED  # the second of two
    limits.open("t2", HYNIX, 100_000)
    refused = limits.check(HYNIX, 1)
    assert isinstance(refused, Refused)
    assert (refused.guard, refused.reason) == ("trade-limits", Reason.MAX_CONCURRENT_TRADES)


def test_closing_a_trade_frees_its_slot() -> None:
    limits = TradeLimits(max_concurrent_trades=1, max_exposure_per_asset=None)
    limits.open("t1", SAMSUNG, 100_000)
    assert isinstance(limits.check(SAMSUNG, 1), Refused)
    limits.close("t1")
    assert limits.check(SAMSUNG, 1) is ALLOWED
    assert limits.open_count == 0


def test_exposure_exactly_at_the_limit_is_allowed_and_one_won_over_is_refused() -> None:
    limits = TradeLimits(max_concurrent_trades=None, max_exposure_per_asset=1_000_000)
    limits.open("t1", SAMSUNG, 600_000)
    assert limits.check(SAMSUNG, 400_000) is ALLOWED
    refused = limits.check(SAMSUNG, 400_001)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.ASSET_EXPOSURE
    assert SAMSUNG in refused.detail


def test_exposure_is_per_asset() -> None:
    limits = TradeLimits(max_concurrent_trades=None, max_exposure_per_asset=1_000_000)
    limits.open("t1", SAMSUNG, 1_000_000)
    assert isinstance(limits.check(SAMSUNG, 1), Refused)
    assert limits.check(HYNIX, 1_000_000) is ALLOWED


def test_exposure_is_the_sum_of_the_open_trades_and_falls_as_they_close() -> None:
    limits = TradeLimits(max_concurrent_trades=None, max_exposure_per_asset=None)
    limits.open("t1", SAMSUNG, 300_000)
    limits.open("t2", SAMSUNG, 200_000)
    limits.open("t3", HYNIX, 50_000)
    assert limits.exposure(SAMSUNG) == 500_000
    limits.close("t1")
    assert limits.exposure(SAMSUNG) == 200_000
    limits.close("t2")
    assert limits.exposure(SAMSUNG) == 0
    assert limits.exposure(HYNIX) == 50_000


def test_a_full_book_refuses_for_concurrency_before_exposure() -> None:
    limits = TradeLimits(max_concurrent_trades=1, max_exposure_per_asset=100_000)
    limits.open("t1", SAMSUNG, 100_000)
    refused = limits.check(SAMSUNG, 1)  # over both limits
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.MAX_CONCURRENT_TRADES


def test_opening_an_open_trade_id_again_raises_and_counts_nothing() -> None:
    limits = TradeLimits(max_concurrent_trades=None, max_exposure_per_asset=None)
    limits.open("t1", SAMSUNG, 100_000)
    with pytest.raises(DuplicateTrade, match="t1"):
        limits.open("t1", SAMSUNG, 100_000)
    assert limits.open_count == 1
    assert limits.exposure(SAMSUNG) == 100_000


def test_closing_an_unknown_or_closed_trade_raises_and_changes_nothing() -> None:
    limits = TradeLimits(max_concurrent_trades=None, max_exposure_per_asset=None)
    limits.open("t1", SAMSUNG, 100_000)
    with pytest.raises(UnknownTrade, match="nope"):
        limits.close("nope")
    limits.close("t1")
    with pytest.raises(UnknownTrade):
        limits.close("t1")
    assert limits.open_count == 0
    assert limits.exposure(SAMSUNG) == 0


def test_no_limits_allow_anything() -> None:
    limits = TradeLimits(max_concurrent_trades=None, max_exposure_per_asset=None)
    for n in range(50):
        limits.open(f"t{n}", SAMSUNG, 10_000_000)
    assert limits.check(SAMSUNG, 10_000_000) is ALLOWED


@pytest.mark.parametrize(
    ("concurrent", "exposure", "named"),
    [(0, None, "max_concurrent_trades"), (None, -5, "max_exposure_per_asset")],
)
def test_a_zero_or_negative_limit_is_a_configuration_error(
    concurrent: int | None, exposure: int | None, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        TradeLimits(max_concurrent_trades=concurrent, max_exposure_per_asset=exposure)
