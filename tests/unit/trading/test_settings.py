"""TradingSettings from SQUALL_TRADING_*: flat variables, errors that name them."""

from __future__ import annotations

import pytest

from system.broker import SettingsError
from system.trading.settings import TradingSettings


def test_the_environment_sets_the_desk_the_detectors_and_the_limits() -> None:
    settings = TradingSettings.from_env(
        environ={
            "SQUALL_TRADING_MODE": "live",
            "SQUALL_TRADING_DETECTORS": "closing-bet, vcp",
            "SQUALL_TRADING_DAILY_LOSS_LIMIT": "500000",
            "SQUALL_TRADING_CAPITAL_PER_TRADE": "2000000",
        }
    )
    assert (settings.mode, settings.detectors) == ("live", ("closing-bet", "vcp"))
    gate = settings.gate()
    assert gate.loss_limits.daily_limit == 500_000
    # Without max_trade_capital, the cap is what the desk puts into one trade.
    assert gate.capital_cap.max_per_trade == 2_000_000


def test_defaults_are_paper_with_runaway_guards_on() -> None:
    settings = TradingSettings.from_env(environ={})
    assert settings.mode == "paper"
    assert (settings.max_concurrent_trades, settings.max_consecutive_failures) == (5, 5)
    assert settings.daily_loss_limit is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("DETECTORS", "vcp,macd"), ("MODE", "yolo"), ("DAILY_LOSS_LIMIT", "-1")],
)
def test_a_bad_variable_is_named_without_its_value(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        TradingSettings.from_env(environ={f"SQUALL_TRADING_{name}": value})
    assert f"SQUALL_TRADING_{name}" in str(caught.value)
    assert value not in str(caught.value)
