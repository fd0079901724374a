"""CapitalCap: the cap is a ceiling for sizing and a refusal for an oversized trade."""

from __future__ import annotations

import pytest

from system.trading.risk import ALLOWED, CapitalCap, Reason, Refused


def test_allot_clamps_a_request_over_the_cap_to_the_cap() -> None:
    cap = CapitalCap(max_per_trade=1_000_000)
    assert cap.allot(1_000_001) == 1_000_000
    assert cap.allot(5_000_000) == 1_000_000


def test_allot_gives_a_request_within_the_cap_in_full() -> None:
    cap = CapitalCap(max_per_trade=1_000_000)
    assert cap.allot(1_000_000) == 1_000_000
    assert cap.allot(250_000) == 250_000


def test_a_trade_worth_exactly_the_cap_is_allowed_and_one_won_more_is_refused() -> None:
    cap = CapitalCap(max_per_trade=1_000_000)
    assert cap.check(1_000_000) is ALLOWED
    refused = cap.check(1_000_001)
    assert isinstance(refused, Refused)
    assert (refused.guard, refused.reason) == ("capital-cap", Reason.CAPITAL_CAP)
    assert "1,000,001" in refused.detail
    assert "1,000,000" in refused.detail


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, None])
def test_a_cap_that_is_not_a_positive_whole_number_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ValueError, match="max_per_trade"):
        CapitalCap(max_per_trade=bad)  # type: ignore[arg-type]


def test_a_negative_request_is_an_error_not_a_negative_allotment() -> None:
    with pytest.raises(ValueError, match="requested capital"):
        CapitalCap(max_per_trade=100).allot(-1)
