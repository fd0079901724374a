"""How a simulated KIS broker behaves. Every rule the real broker enforces is on by default;
the numbers are configurable because the public sources disagree on some of them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Profile = Literal["real", "paper"]

# Official notice of 2026-04-20: 18 requests/s on real accounts, 1/s on paper.
DEFAULT_BUDGET: dict[str, int] = {"real": 18, "paper": 1}
# Balance rows per page as KIS pages them.
DEFAULT_BALANCE_PAGE: dict[str, int] = {"real": 50, "paper": 20}


class BrokerConfig(BaseModel):
    """Mutable at run time through the control plane (``PATCH /_squall/broker/config``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    profile: Profile = "real"
    seed: int = 0
    requests_per_second: int | None = Field(default=None, ge=1)
    token_interval_s: float = Field(default=60.0, ge=0)
    token_ttl_s: int = Field(default=86_400, ge=1)
    token_reuse_s: float = Field(default=6 * 3600, ge=0)
    gateway_error_status: int = Field(default=500, ge=200, le=599)
    balance_page_size: int | None = Field(default=None, ge=1)
    order_page_size: int = Field(default=100, ge=1)
    initial_cash: int = Field(default=100_000_000, ge=0)

    @property
    def budget(self) -> int:
        return self.requests_per_second or DEFAULT_BUDGET[self.profile]

    @property
    def balance_rows_per_page(self) -> int:
        return self.balance_page_size or DEFAULT_BALANCE_PAGE[self.profile]
