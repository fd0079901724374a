"""How to reach the KIS realtime server and the FX venue's rate stream, and the knobs of
the clients' policies.

``FeedSettings.from_env()`` reads ``SQUALL_FEED_*`` (``SQUALL_FEED_URL``,
``SQUALL_FEED_STALL_AFTER_S``, …), like ``KisSettings`` reads ``SQUALL_KIS_*``;
``RateFeedSettings.from_env()`` reads ``SQUALL_RATES_*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from system.broker.settings import settings_from_env


class FeedSettings(BaseModel):
    """The realtime feed client's settings (frozen). Times are seconds of loop time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(
        description="The realtime server, e.g. ws://ops.koreainvestment.com:21000/tryitout "
        "(paper: port 31000)"
    )
    custtype: str = Field(default="P", description="P for individuals, B for corporations")
    stall_after_s: float = Field(
        default=120.0,
        gt=0,
        description="With neither data nor a PINGPONG heartbeat for this long, the connection "
        "is taken as stalled and replaced. KIS sends heartbeats about every 100 s, so a value "
        "below that calls a quiet market a stall.",
    )
    backoff_base_s: float = Field(
        default=0.5,
        gt=0,  # 0 would reconnect in a hot loop, which KIS may answer by blocking the appkey
        description="The first reconnect waits 50-100 % of this; each failed attempt doubles it",
    )
    backoff_max_s: float = Field(default=30.0, gt=0, description="The longest reconnect wait")
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Opening (and closing) one connection may take this long"
    )
    resync_on_reconnect: bool = Field(
        default=True,
        description="After a reconnect, fetch every subscribed code's REST quote: trades made "
        "while disconnected never arrive on the feed",
    )
    max_subscriptions: int = Field(
        default=41,
        ge=1,
        description="Realtime registrations allowed per appkey (one per code, one more per code "
        "with its order book); KIS answers OPSP0008 beyond 41",
    )
    books: bool = Field(
        default=False,
        description="Subscribe each code's ten-level order book (H0STASP0) with its trades",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return websocket_url(value, example="ws://ops.koreainvestment.com:21000/tryitout")

    @model_validator(mode="after")
    def _check_backoff(self) -> FeedSettings:
        check_backoff(self.backoff_base_s, self.backoff_max_s)
        return self

    @classmethod
    def from_env(
        cls, prefix: str = "SQUALL_FEED_", environ: Mapping[str, str] | None = None
    ) -> FeedSettings:
        """Read ``{prefix}{FIELD}`` variables (upper case); only ``{prefix}URL`` is required.

        Empty variables count as unset; errors name the variable, never its value.
        """
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the realtime feed client",
            example=f"{prefix}URL=ws://ops.koreainvestment.com:21000/tryitout",
        )


# The FX venue's pairs Squall simulates (``mocks.fx``): four currencies, each pair once.
VENUE_PAIRS = ("USD/KRW", "JPY/KRW", "EUR/KRW", "EUR/USD", "USD/JPY", "EUR/JPY")
_PAIR = r"^[A-Z0-9]{2,10}/[A-Z0-9]{2,10}$"


class RateFeedSettings(BaseModel):
    """The rate feed client's settings (frozen): the FX venue's ticker stream (Kraken's
    WebSocket v2 protocol) and which pairs to follow. Times are seconds of loop time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The venue's WebSocket, e.g. wss://ws.kraken.com/v2")
    pairs: tuple[Annotated[str, Field(pattern=_PAIR)], ...] = Field(
        default=VENUE_PAIRS,
        min_length=1,
        description="The currency pairs to follow, written BASE/QUOTE",
    )
    stall_after_s: float = Field(
        default=10.0,
        gt=0,
        description="With neither a quote nor a heartbeat for this long, the connection is "
        "taken as stalled and replaced. The venue sends a heartbeat every second it has "
        "nothing else to send.",
    )
    backoff_base_s: float = Field(
        default=0.5,
        gt=0,
        description="The first reconnect waits 50-100 % of this; each failed attempt doubles it",
    )
    backoff_max_s: float = Field(default=30.0, gt=0, description="The longest reconnect wait")
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Opening (and closing) one connection may take this long"
    )

    @field_validator("pairs", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # The environment can only say "USD/KRW,JPY/KRW".
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return websocket_url(value, example="wss://ws.kraken.com/v2")

    @model_validator(mode="after")
    def _check_backoff(self) -> RateFeedSettings:
        check_backoff(self.backoff_base_s, self.backoff_max_s)
        return self

    @classmethod
    def from_env(
        cls, prefix: str = "SQUALL_RATES_", environ: Mapping[str, str] | None = None
    ) -> RateFeedSettings:
        """Read ``{prefix}{FIELD}`` variables (upper case); only ``{prefix}URL`` is required."""
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the rate feed client",
            example=f"{prefix}URL=wss://ws.kraken.com/v2, {prefix}PAIRS=USD/KRW,JPY/KRW,USD/JPY",
        )


def websocket_url(value: str, *, example: str) -> str:
    if not value.startswith(("ws://", "wss://")):
        raise ValueError(f"url must start with ws:// or wss://, e.g. {example}")
    return value


def check_backoff(base_s: float, max_s: float) -> None:
    if max_s < base_s:
        raise ValueError(f"backoff_max_s ({max_s}) must not be below backoff_base_s ({base_s})")
