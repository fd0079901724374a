"""Kiwoom's access token: ``POST /oauth2/token`` {grant_type, appkey, secretkey} →
{token, token_type, expires_dt, return_code, return_msg}.

Kiwoom gives the expiry as a KST wall time (``expires_dt``, YYYYMMDDHHMMSS), not as a
lifetime, so the issuer reads it against ``wall()``, the KST wall clock the system runs on
(injected: a scenario's broker keeps its own). An expiry that cannot be read, or one in the
past, falls back to Kiwoom's documented 24 hours; the client renews early anyway, and a
token the broker calls expired is dropped and issued again (``KiwoomWire``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from system.broker.clock import KST, Now, kst_now
from system.broker.http import BrokerHttp
from system.broker.kiwoom.settings import KiwoomSettings
from system.broker.kiwoom.wire import TOKEN_PATH, return_code
from system.broker.oauth import DEFAULT_TOKEN_LIFETIME_S, TokenIssuer, TokenReading
from system.broker.token import IssuedToken
from system.broker.wire import Counters


def kiwoom_token_issuer(
    settings: KiwoomSettings,
    http: BrokerHttp,
    counters: Counters,
    *,
    wall: Now = kst_now,
) -> TokenIssuer:
    """The ``issue()`` a ``TokenManager`` uses for one Kiwoom app."""

    def credentials() -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "appkey": settings.appkey,
            "secretkey": settings.secretkey.get_secret_value(),
        }

    def read(body: Mapping[str, Any], status_code: int) -> TokenReading:
        code = return_code(body)
        token = body.get("token")
        if code == "0" and status_code == 200 and isinstance(token, str) and token:
            return IssuedToken(token, lifetime(body.get("expires_dt"), wall()))
        if code is not None and code != "0":
            return code, str(body.get("return_msg", ""))
        return None

    return TokenIssuer(
        settings, http, counters, path=TOKEN_PATH, credentials=credentials, read=read
    )


def lifetime(expires_dt: object, now: datetime) -> float:
    """Seconds from ``now`` to ``expires_dt`` (KST YYYYMMDDHHMMSS); 24 h when unreadable
    or already past."""
    if isinstance(expires_dt, str):
        try:
            expires = datetime.strptime(expires_dt, "%Y%m%d%H%M%S").replace(tzinfo=KST)
        except ValueError:
            return DEFAULT_TOKEN_LIFETIME_S
        seconds = (expires - now).total_seconds()
        if seconds > 0:
            return seconds
    return DEFAULT_TOKEN_LIFETIME_S
