"""Kiwoom's token endpoints: ``POST /oauth2/token`` (au10001) and ``/oauth2/revoke`` (au10002).

Issue: ``{grant_type: "client_credentials", appkey, secretkey}`` →
``{expires_dt: "YYYYMMDDHHMMSS" (KST, the mock's wall clock), token_type: "bearer", token,
return_code: 0, return_msg}``. Revoke: ``{appkey, secretkey, token}`` → return_code 0.

Refusals, all HTTP 200 as captured: no grant_type 8011, another grant_type 8012, no appkey
or secretkey 8020, a secret other than the one the app key was first seen with 8001 (the
mock has no app registry, as at KIS), revoke without a token 8016, of a token that is not
this app key's 8015. No message ever repeats a key or a token.

Decisions where Kiwoom documents nothing:
- A token lives ``token_ttl_s`` (24 h), like KIS's; an expired one answers 8005.
- There is no issuance interval (KIS's one-a-minute EGW00133 is KIS's rule): every call
  mints a new token, and, with ``kiwoom_single_token`` (the default), revokes the app key's
  previous one: clients report their old token failing with 8005 as soon as another
  process re-issued one ("1계정 1토큰").
- Token calls don't count against the per-second TR budget (as at KIS).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mocks.broker.kiwoom import codes
from mocks.broker.kiwoom.codes import KiwoomError
from mocks.broker.kiwoom.gateway import json_object
from mocks.broker.state import Broker
from mocks.broker.tokens import TokenRefused

TOKEN_TYPE = "bearer"


def _app_key(broker: Broker, body: dict[str, Any]) -> str:
    appkey, secretkey = body.get("appkey"), body.get("secretkey")
    if not (isinstance(appkey, str) and appkey.strip()):
        raise KiwoomError(8020)
    if not (isinstance(secretkey, str) and secretkey.strip()):
        raise KiwoomError(8020)
    if not broker.tokens.bind_secret(appkey, secretkey):
        raise KiwoomError(8001)
    return appkey


def router(broker: Broker) -> APIRouter:
    api = APIRouter(prefix="/oauth2")

    @api.post("/token")
    async def issue_token(request: Request) -> JSONResponse:
        body = await json_object(request)
        grant_type = body.get("grant_type")
        if grant_type is None or grant_type == "":
            raise KiwoomError(8011)
        if grant_type != "client_credentials":
            raise KiwoomError(8012)
        appkey = _app_key(broker, body)
        config = broker.config
        previous = broker.tokens.current(appkey)
        try:
            token, _ = broker.tokens.issue(
                appkey, broker.clock.now(), interval=0.0, ttl=config.token_ttl_s, reuse=0.0
            )
        except TokenRefused:
            # Only a clock running backwards (a test's virtual time) gets here: with no
            # interval there is nothing to wait for, and KIS's EGW00133 is not Kiwoom's.
            raise KiwoomError(8009, "잠시 후 다시 시도하세요") from None
        if config.kiwoom_single_token and previous is not None and previous is not token:
            broker.tokens.revoke(previous.value, appkey)
        expires = broker.clock.wall(token.expires_at)
        return JSONResponse(
            codes.success(
                expires_dt=expires.strftime("%Y%m%d%H%M%S"),
                token_type=TOKEN_TYPE,
                token=token.value,
            )
        )

    @api.post("/revoke")
    async def revoke_token(request: Request) -> JSONResponse:
        body = await json_object(request)
        appkey = _app_key(broker, body)
        value = body.get("token")
        if not (isinstance(value, str) and value.strip()):
            raise KiwoomError(8016)
        if not broker.tokens.revoke(value.strip(), appkey):
            raise KiwoomError(8015, "이 앱키로 발급된 토큰이 아닙니다")
        return JSONResponse(codes.success())

    return api
