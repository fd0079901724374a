"""Issuing the access token: one request, and what its answer means.

``TokenIssuer`` is the ``issue()`` callable a ``TokenManager`` uses, for any broker: where to
ask and with which credentials, and a ``read`` that turns an answer's body into a token or a
refusal. ``kis_token_issuer`` asks KIS's ``POST /oauth2/tokenP``.

KIS answers issuance refusals OAuth-style (``error_code``/``error_description``, e.g. HTTP
403 ``EGW00133``), not with the ``rt_cd`` body of the ``/uapi`` endpoints. The token request
is not counted against the per-second budget; its own limit is the cooldown that
``TokenManager`` keeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from system.broker.errors import TokenIssuanceFailed, TokenUnavailable
from system.broker.http import BrokerHttp
from system.broker.settings import BrokerSettings, KisSettings
from system.broker.token import IssuedToken
from system.broker.wire import (
    JSON_CONTENT,
    Counters,
    describe,
    json_or_none,
    oauth_error,
    snippet,
)

DEFAULT_TOKEN_LIFETIME_S = 86400.0  # KIS and Kiwoom both issue tokens for 24 hours

# What an answer says: a token, a refusal (the broker's code and description), or nothing
# usable (None). The HTTP status is given for brokers that say success only with it.
TokenReading = IssuedToken | tuple[str, str] | None
ReadToken = Callable[[Mapping[str, Any], int], TokenReading]


class TokenIssuer:
    """One request to ``path`` with ``credentials()`` as its JSON body; ``read`` judges
    the answer. Raises ``TokenIssuanceFailed`` for a refusal and ``TokenUnavailable`` when
    the broker could not be reached or answered nothing usable."""

    def __init__(
        self,
        settings: BrokerSettings,
        http: BrokerHttp,
        counters: Counters,
        *,
        path: str,
        credentials: Callable[[], Mapping[str, str]],
        read: ReadToken,
    ) -> None:
        self.settings = settings
        self.http = http
        self.counters = counters
        self.path = path
        self.endpoint = f"POST {path}"
        self._credentials = credentials
        self._read = read

    async def __call__(self) -> IssuedToken:
        settings = self.settings
        request = self.http.build_request(
            "POST",
            self.path,
            content=json.dumps(self._credentials()).encode(),
            headers={"content-type": JSON_CONTENT},
        )
        self.counters.requests_sent += 1
        try:
            response = await self.http.send(request)
        except httpx.TransportError as exc:
            self.counters.unavailable_errors += 1
            raise TokenUnavailable(
                f"{self.endpoint}: no token was issued: {describe(exc, settings)}; "
                f"the next attempt is possible in {settings.token_cooldown_s:.1f} s",
                endpoint=self.endpoint,
            ) from exc
        body = json_or_none(response)
        reading = self._read(body, response.status_code) if isinstance(body, Mapping) else None
        if isinstance(reading, IssuedToken):
            return reading
        if reading is not None:
            raise TokenIssuanceFailed(
                error_code=reading[0],
                description=reading[1],
                status_code=response.status_code,
                cooldown_s=settings.token_cooldown_s,
                endpoint=self.endpoint,
            )
        self.counters.unavailable_errors += 1
        raise TokenUnavailable(
            f"{self.endpoint}: HTTP {response.status_code} with neither a token nor an error "
            f"code ({snippet(response)}); the next attempt is possible in "
            f"{settings.token_cooldown_s:.1f} s",
            endpoint=self.endpoint,
        )


def kis_token_issuer(settings: KisSettings, http: BrokerHttp, counters: Counters) -> TokenIssuer:
    """``POST /oauth2/tokenP`` {grant_type, appkey, appsecret} → {access_token, expires_in}."""

    def credentials() -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "appkey": settings.appkey,
            "appsecret": settings.appsecret.get_secret_value(),
        }

    return TokenIssuer(
        settings, http, counters, path="/oauth2/tokenP", credentials=credentials, read=_read_kis
    )


def _read_kis(body: Mapping[str, Any], status_code: int) -> TokenReading:
    token = body.get("access_token")
    if status_code == 200 and isinstance(token, str) and token:
        return IssuedToken(token, _lifetime(body.get("expires_in")))
    return oauth_error(body)


def _lifetime(value: object) -> float:
    try:
        seconds = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        seconds = None
    # KIS documents 86400 s; an absent or nonsensical lifetime falls back to it.
    return seconds if seconds is not None and seconds > 0 else DEFAULT_TOKEN_LIFETIME_S
