"""How to reach the KIS realtime server, and the knobs of the feed client's policy.

``FeedSettings.from_env()`` reads ``SQUALL_FEED_*`` (``SQUALL_FEED_URL``,
``SQUALL_FEED_STALL_AFTER_S``, …), like ``KisSettings`` reads ``SQUALL_KIS_*``.
"""

from __future__ import annotations

from collections.abc import Mapping

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
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(
                "url must start with ws:// or wss://, e.g. "
                "ws://ops.koreainvestment.com:21000/tryitout"
            )
        return value

    @model_validator(mode="after")
    def _check_backoff(self) -> FeedSettings:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must not be below backoff_base_s "
                f"({self.backoff_base_s})"
            )
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
