"""How a simulated broker behaves. Every rule the real broker enforces is on by default;
the numbers are configurable because the public sources disagree on some of them.

``api`` picks the wire protocol: KIS Open API (``kis``, the default) or Kiwoom REST
(``kiwoom``, ``mocks.broker.kiwoom``). The world behind it (market, accounts, tokens,
control plane) is the same for both. The ``kiwoom_*`` settings matter to Kiwoom only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Api = Literal["kis", "kiwoom"]
Profile = Literal["real", "paper"]
# How a Kiwoom error is numbered: ``specific`` puts the error's own code in return_code
# (1700, 8005, ...), as Kiwoom's guide and its official SDK (kiwoom/core/errors.py) read
# it; ``wrapped`` answers as live servers were captured doing: a category code with the
# specific code inside return_msg ("허용된 요청 개수를 초과하였습니다[1700:...]", return_code 5).
KiwoomErrorStyle = Literal["specific", "wrapped"]

# Requests per second by API and profile (``paper``: KIS VTS, Kiwoom mockapi).
# KIS: official notice of 2026-04-20, 18/s on real accounts, 1/s on paper.
# Kiwoom: 5 queries/s and 5 orders/s, 1/s on mockapi (a third-party quote of the policy).
DEFAULT_BUDGET: dict[Api, dict[Profile, int]] = {
    "kis": {"real": 18, "paper": 1},
    "kiwoom": {"real": 5, "paper": 1},
}
# Balance rows per page as KIS pages them.
DEFAULT_BALANCE_PAGE: dict[str, int] = {"real": 50, "paper": 20}


class BrokerConfig(BaseModel):
    """Mutable at run time through the control plane (``PATCH /_squall/broker/config``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api: Api = "kis"
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
    # Kiwoom's 1700 (over the per-second budget) has been captured under HTTP 429 and 200;
    # 429 is what the captures that name a status show.
    kiwoom_rate_limit_status: int = Field(default=429, ge=200, le=599)
    kiwoom_error_style: KiwoomErrorStyle = "specific"
    # Rows per page of every Kiwoom list (stock list, charts, balance, orders): small, so
    # the mock's thirty-odd listings and its months of history page with cont-yn/next-key.
    kiwoom_page_size: int = Field(default=10, ge=1)
    # Trading days of daily history before today that the Kiwoom charts hold.
    kiwoom_history_days: int = Field(default=60, ge=0, le=2_000)
    # Issuing a Kiwoom token revokes the app key's previous one (one live token per app
    # key, as clients report after another process re-issued theirs).
    kiwoom_single_token: bool = True

    @property
    def budget(self) -> int:
        return self.requests_per_second or DEFAULT_BUDGET[self.api][self.profile]

    @property
    def balance_rows_per_page(self) -> int:
        return self.balance_page_size or DEFAULT_BALANCE_PAGE[self.profile]
