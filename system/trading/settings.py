"""The trading core's settings: ``TradingSettings.from_env()`` reads ``SQUALL_TRADING_*``.

The desk's own (``mode``, ``capital_per_trade``, exits) and the risk limits, flat, so each is
one variable: ``SQUALL_TRADING_MODE=live``, ``SQUALL_TRADING_DAILY_LOSS_LIMIT=500000``. A
limit left unset is no limit, except the ones that guard against runaway loops
(``max_concurrent_trades``, ``max_consecutive_failures``), which have defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, field_validator

from system.broker.settings import settings_from_env
from system.trading.desk import DeskSettings
from system.trading.detectors import (
    BreakoutDetector,
    BreakoutParams,
    ClosingBetDetector,
    Detector,
    TriangularArbitrageDetector,
    TriangularParams,
    VcpBreakoutDetector,
    VcpParams,
    WallClock,
)
from system.trading.risk import (
    CapitalCap,
    LossLimits,
    PreTradeValidator,
    RiskGate,
    StopConditions,
    TradeLimits,
)

DetectorName = Literal["vcp", "closing-bet", "breakout", "triangular"]


class TradingSettings(DeskSettings):
    """The desk's settings, which detectors run, and the risk limits."""

    detectors: tuple[DetectorName, ...] = ("vcp", "closing-bet")
    # The VCP detector's bar: one minute suits a session; shorter bars find bases sooner.
    vcp_bar_s: float = Field(default=60.0, gt=0)
    # The breakout detector's channel, in seconds.
    breakout_window_s: float = Field(default=120.0, gt=0)
    # The triangular-arbitrage detector (on the rate feed's currency pairs): its cycles
    # start and end in won with capital_per_trade; a leg's fee, the least net gain worth
    # reporting (a fraction), and the oldest a leg's quote may be.
    triangular_fee_bps: float = Field(default=10.0, ge=0, lt=10_000)
    triangular_min_edge: float = Field(default=0.0001, ge=0)
    triangular_max_age_s: float = Field(default=2.0, ge=0)
    # The stocks the desk watches (subscribed on the feed); KRX's largest by default.
    codes: tuple[Annotated[str, Field(pattern=r"^[0-9]{6}$")], ...] = (
        "005930",
        "000660",
        "005380",
        "035420",
        "035720",
    )
    max_trade_capital: int | None = Field(default=None, gt=0, description="Won, per trade.")
    daily_loss_limit: int | None = Field(default=None, gt=0, description="Won, per KST day.")
    cumulative_loss_limit: int | None = Field(default=None, gt=0, description="Won, in all.")
    max_concurrent_trades: int | None = Field(default=5, gt=0)
    max_exposure_per_asset: int | None = Field(default=None, gt=0, description="Won.")
    min_order_value: int = Field(default=1, gt=0, description="Won; smaller orders refused.")
    max_source_latency_s: float | None = Field(default=None, gt=0)
    max_consecutive_failures: int | None = Field(default=5, gt=0)

    @field_validator("detectors", "codes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # The environment can only say "vcp,closing-bet".
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @classmethod
    def from_env(
        cls, prefix: str = "SQUALL_TRADING_", environ: Mapping[str, str] | None = None
    ) -> TradingSettings:
        """Read ``{prefix}{FIELD}`` variables (upper case); errors name the variable."""
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the trading desk",
            example=f"{prefix}MODE=paper, {prefix}DAILY_LOSS_LIMIT=500000",
        )

    def build_detectors(self, wall: WallClock) -> list[Detector]:
        """The detectors named, in that order; ``wall`` maps loop time to KST.

        ``triangular`` prices currency pairs (``RateDetector``), not stocks: the desk feeds
        it the rate feed's quotes, and the system connects the rate feed for it."""
        made: dict[DetectorName, Detector] = {}
        for name in self.detectors:
            if name == "vcp":
                made[name] = VcpBreakoutDetector(VcpParams(bar_s=self.vcp_bar_s))
            elif name == "breakout":
                made[name] = BreakoutDetector(BreakoutParams(window_s=self.breakout_window_s))
            elif name == "triangular":
                made[name] = TriangularArbitrageDetector(
                    TriangularParams(
                        base_currency="KRW",
                        base_capital=float(self.capital_per_trade),
                        fee_bps=self.triangular_fee_bps,
                        min_edge=self.triangular_min_edge,
                        max_age_s=self.triangular_max_age_s,
                    )
                )
            else:
                made[name] = ClosingBetDetector(wall)
        return list(made.values())

    @property
    def watches_rates(self) -> bool:
        """Whether a detector named needs the rate feed's currency-pair quotes."""
        return "triangular" in self.detectors

    def gate(self) -> RiskGate:
        """A fresh risk gate with these limits."""
        return RiskGate(
            capital_cap=CapitalCap(self.max_trade_capital or self.capital_per_trade),
            loss_limits=LossLimits(
                daily_limit=self.daily_loss_limit, cumulative_limit=self.cumulative_loss_limit
            ),
            trade_limits=TradeLimits(
                max_concurrent_trades=self.max_concurrent_trades,
                max_exposure_per_asset=self.max_exposure_per_asset,
            ),
            pre_trade=PreTradeValidator(min_order_value=self.min_order_value),
            stop_conditions=StopConditions(
                max_source_latency_s=self.max_source_latency_s,
                max_consecutive_failures=self.max_consecutive_failures,
            ),
        )
