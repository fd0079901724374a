"""Issuing the access token: ``POST /oauth2/tokenP``, and what its answers mean.

KIS answers issuance refusals OAuth-style (``error_code``/``error_description``, e.g. HTTP
403 ``EGW00133``), not with the ``rt_cd`` body of the ``/uapi`` endpoints. The token request
is not counted against the per-second budget; its own limit is the cooldown that
``TokenManager`` keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from system.broker.errors import TOKEN_ENDPOINT, TokenIssuanceFailed, TokenUnavailable
from system.broker.settings import KisSettings
from system.broker.token import IssuedToken
from system.broker.wire import (
    JSON_CONTENT,
    Counters,
    describe,
    json_or_none,
    oauth_error,
    snippet,
)

_DEFAULT_TOKEN_LIFETIME_S = 86400.0


class TokenIssuer:
    """The ``issue()`` callable a ``TokenManager`` uses: one request, one token or error."""

    def __init__(self, settings: KisSettings, http: httpx.AsyncClient, counters: Counters) -> None:
        self.settings = settings
        self.http = http
        self.counters = counters

    async def __call__(self) -> IssuedToken:
        settings = self.settings
        credentials = {
            "grant_type": "client_credentials",
            "appkey": settings.appkey,
            "appsecret": settings.appsecret.get_secret_value(),
        }
        request = self.http.build_request(
            "POST",
            "/oauth2/tokenP",
            content=json.dumps(credentials).encode(),
            headers={"content-type": JSON_CONTENT},
        )
        self.counters.requests_sent += 1
        try:
            response = await self.http.send(request)
        except httpx.TransportError as exc:
            self.counters.unavailable_errors += 1
            raise TokenUnavailable(
                f"{TOKEN_ENDPOINT}: no token was issued: {describe(exc, settings)}; "
                f"the next attempt is possible in {settings.token_cooldown_s:.1f} s",
                endpoint=TOKEN_ENDPOINT,
            ) from exc
        body = json_or_none(response)
        if isinstance(body, Mapping):
            token = body.get("access_token")
            if response.status_code == 200 and isinstance(token, str) and token:
                return IssuedToken(token, _lifetime(body.get("expires_in")))
            refusal = oauth_error(body)
            if refusal is not None:
                raise TokenIssuanceFailed(
                    error_code=refusal[0],
                    description=refusal[1],
                    status_code=response.status_code,
                    cooldown_s=settings.token_cooldown_s,
                )
        self.counters.unavailable_errors += 1
        raise TokenUnavailable(
            f"{TOKEN_ENDPOINT}: HTTP {response.status_code} with neither a token nor an error "
            f"code ({snippet(response)}); the next attempt is possible in "
            f"{settings.token_cooldown_s:.1f} s",
            endpoint=TOKEN_ENDPOINT,
        )


def _lifetime(value: object) -> float:
    try:
        seconds = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        seconds = None
    # KIS documents 86400 s; an absent or nonsensical lifetime falls back to it.
    return seconds if seconds is not None and seconds > 0 else _DEFAULT_TOKEN_LIFETIME_S
