"""PreTradeValidator: the broker's minimum order, then the cash to pay for it."""

from __future__ import annotations

from system.trading.risk import ALLOWED, PreTradeValidator, Reason, Refused


def test_an_order_of_exactly_the_minimum_passes_and_one_won_less_is_refused() -> None:
    validator = PreTradeValidator(min_order_value=10_000)
    assert validator.check(10_000, available_cash=1_000_000) is ALLOWED
    refused = validator.check(9_999, available_cash=1_000_000)
    assert isinstance(refused, Refused)
    assert (refused.guard, refused.reason) == ("pre-trade", Reason.BELOW_MINIMUM_ORDER)


def test_an_order_of_exactly_the_available_cash_passes_and_one_won_more_is_refused() -> None:
    validator = PreTradeValidator(min_order_value=10_000)
    assert validator.check(500_000, available_cash=500_000) is ALLOWED
    refused = validator.check(500_001, available_cash=500_000)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.INSUFFICIENT_BALANCE
    assert "500,000" in refused.detail


def test_an_order_both_too_small_and_unaffordable_is_refused_for_its_size() -> None:
    # The minimum needs no outside data, so it speaks first.
    refused = PreTradeValidator(min_order_value=10_000).check(5_000, available_cash=1_000)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.BELOW_MINIMUM_ORDER


def test_no_balance_given_means_no_balance_check() -> None:
    # A sell spends holdings, not cash: the gate passes None for it.
    validator = PreTradeValidator(min_order_value=10_000)
    assert validator.check(5_000_000, available_cash=None) is ALLOWED
    assert isinstance(validator.check(9_999, available_cash=None), Refused)
