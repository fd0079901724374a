"""How to reach one Kiwoom account: the REST host, the app's key and secret, the policy.

Kiwoom's budget is per app key: 5 requests a second on the real host, 1 on the mock
(``mockapi.kiwoom.com``), as quoted in ``BROKER_FACTS.md``; the client keeps under it and
treats code 1700 as the budget exceeded anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, SecretStr

from system.broker.settings import BrokerSettings, settings_from_env


class KiwoomSettings(BrokerSettings):
    """One Kiwoom app's connection settings (frozen; ``secretkey`` never printed).

    ``profile`` "paper" is Kiwoom's mock-trading host. Kiwoom binds the account to the app
    key, so no account number is needed."""

    DEFAULT_BUDGET: ClassVar[dict[str, float]] = {"real": 5.0, "paper": 1.0}

    secretkey: SecretStr
    # KIS allows one token a minute; Kiwoom documents no such limit. A token the broker drops
    # early (8005) would otherwise leave every call waiting out a minute for nothing. A short
    # pause remains, so a token refused again and again cannot become a loop of issuances.
    token_cooldown_s: float = Field(default=10.0, ge=0)

    @classmethod
    def from_env(
        cls, prefix: str = "SQUALL_KIWOOM_", environ: Mapping[str, str] | None = None
    ) -> KiwoomSettings:
        """Read ``{prefix}{FIELD}`` variables (upper case), e.g. ``SQUALL_KIWOOM_BASE_URL``;
        errors name the variable, never its value."""
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the Kiwoom client",
            example=f"{prefix}BASE_URL=https://api.kiwoom.com, {prefix}APPKEY=…",
        )
