"""How to reach one broker account: endpoint, credentials, and the knobs of the client's
policy.

The system is pointed at a real broker or a simulated one only through these settings.
``BrokerSettings`` holds what every broker's client shares (where, the per-second budget,
timeouts, retries, the token cooldown); ``KisSettings`` adds KIS's credentials and account.
The defaults follow the KIS rules in ``BROKER_FACTS.md`` (18 requests/s real, 1/s paper, one
token per minute, 24 h tokens).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

_ACCOUNT = re.compile(r"^(\d{8})-(\d{2})$")

M = TypeVar("M", bound=BaseModel)


class SettingsError(ValueError):
    """The settings are missing or invalid; the message names the variable to fix."""


class BrokerSettings(BaseModel):
    """What every broker client's settings share (frozen): where it connects, as which app,
    its per-second budget (``DEFAULT_BUDGET`` per profile unless set) and its policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    DEFAULT_BUDGET: ClassVar[dict[str, float]] = {"real": 18.0, "paper": 1.0}

    base_url: str
    appkey: str
    profile: Literal["real", "paper"] = "real"
    requests_per_second: float | None = Field(default=None, gt=0)
    # The limiter already counts each request from sending to answer, so arrival jitter is
    # covered; the margin only allows for the broker's clock ticking in coarser steps.
    rate_window_margin_s: float = Field(default=0.02, ge=0)
    # A request still unanswered this long after sending is taken to have reached the broker
    # by then; without a bound, a hanging broker's requests would hold the budget hostage.
    rate_transit_s: float = Field(default=1.0, ge=0)
    token_cooldown_s: float = Field(default=60.0, ge=0)
    token_renew_before_s: float = Field(default=300.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)
    read_retries: int = Field(default=2, ge=0)
    backoff_base_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=2.0, ge=0)
    rate_limit_retries: int = Field(default=3, ge=0)
    rate_limit_wait_s: float = Field(default=1.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "base_url must start with http:// or https://, e.g. "
                "https://openapi.koreainvestment.com:9443 or https://api.kiwoom.com"
            )
        return value.rstrip("/")

    @field_validator("appkey")
    @classmethod
    def _check_appkey(cls, value: str) -> str:
        if not value:
            raise ValueError("appkey must not be empty")
        return value

    @property
    def budget_per_second(self) -> float:
        """Requests per second the client allows itself: the setting, else the profile's."""
        if self.requests_per_second is not None:
            return self.requests_per_second
        return self.DEFAULT_BUDGET[self.profile]


class KisSettings(BrokerSettings):
    """One KIS account's connection settings (frozen; ``appsecret`` never printed)."""

    appsecret: SecretStr
    account: str = Field(description='KIS account as "CANO-ACNT_PRDT_CD", e.g. "50012345-01"')
    custtype: str = "P"

    @field_validator("account")
    @classmethod
    def _check_account(cls, value: str) -> str:
        if not _ACCOUNT.match(value):
            raise ValueError(
                'account must be "CANO-ACNT_PRDT_CD": 8 digits, a dash, 2 digits '
                '(e.g. "50012345-01")'
            )
        return value

    @property
    def cano(self) -> str:
        """The 8-digit account number (``CANO``)."""
        return self.account[:8]

    @property
    def acnt_prdt_cd(self) -> str:
        """The 2-digit account product code (``ACNT_PRDT_CD``)."""
        return self.account[9:]

    @classmethod
    def from_env(
        cls, prefix: str = "SQUALL_KIS_", environ: Mapping[str, str] | None = None
    ) -> KisSettings:
        """Read ``{prefix}{FIELD}`` variables (upper case), e.g. ``SQUALL_KIS_BASE_URL``.

        Empty variables count as unset. Errors name the variable, never its value, so a
        mistyped secret cannot leak into logs.
        """
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the KIS client",
            example=(
                f"{prefix}BASE_URL=https://openapi.koreainvestment.com:9443, "
                f'{prefix}ACCOUNT="50012345-01"'
            ),
        )


def settings_from_env(
    model: type[M],
    prefix: str,
    environ: Mapping[str, str] | None,
    *,
    purpose: str,
    example: str = "",
) -> M:
    """Build ``model`` from ``{prefix}{FIELD}`` variables (upper case) of ``environ``.

    ``environ`` defaults to the process environment; empty variables count as unset, so
    the field keeps its default. Every ``SettingsError`` names the variables at fault and
    never their values (a mistyped secret must not end up in a log). ``purpose`` says what
    the settings configure ("the KIS client"); ``example`` shows well-formed assignments.
    """
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name in model.model_fields:
        raw = env.get(f"{prefix}{name.upper()}", "")
        if raw.strip():
            values[name] = raw.strip()
    missing = [
        f"{prefix}{name.upper()}"
        for name, field in model.model_fields.items()
        if field.is_required() and name not in values
    ]
    if missing:
        hint = f" (e.g. {example})" if example else ""
        raise SettingsError(
            f"missing environment variable(s) {', '.join(missing)}: set them to configure "
            f"{purpose}{hint}"
        )
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            # A check across fields (a model validator) has no single variable to name.
            f"{prefix}{str(error['loc'][0]).upper() if error['loc'] else '*'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise SettingsError(
            f"invalid settings for {purpose} in the environment: {problems}"
        ) from None
