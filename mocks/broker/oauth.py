"""Token, revoke and realtime-approval endpoints (``/oauth2/...``).

These answer in OAuth style (``error_code``/``error_description``), not rt_cd/msg_cd, and
are not counted against the per-second service budget: issuance has its own, stricter rule.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mocks.broker import codes
from mocks.broker.state import Broker
from mocks.broker.tokens import TokenRefused


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TokenRefused("EGW00002")
    return body


def _refused(refused: TokenRefused) -> JSONResponse:
    status = codes.TOKEN_RATE_STATUS if refused.code != "EGW00002" else 400
    return JSONResponse(codes.oauth_error(refused.code), status_code=status)


def router(broker: Broker) -> APIRouter:
    api = APIRouter(prefix="/oauth2")

    @api.post("/tokenP")
    async def issue_token(request: Request) -> JSONResponse:
        try:
            body = await _json_body(request)
            if body.get("grant_type") != "client_credentials":
                raise TokenRefused("EGW00002")
            appkey, _ = broker.tokens.check_credentials(body.get("appkey"), body.get("appsecret"))
            config = broker.config
            now = broker.clock.now()
            token, _new = broker.tokens.issue(
                appkey,
                now,
                interval=config.token_interval_s,
                ttl=config.token_ttl_s,
                reuse=config.token_reuse_s,
            )
        except TokenRefused as refused:
            return _refused(refused)
        expires = broker.clock.wall(token.expires_at)
        return JSONResponse(
            {
                "access_token": token.value,
                "access_token_token_expired": expires.strftime("%Y-%m-%d %H:%M:%S"),
                "token_type": "Bearer",
                "expires_in": int(token.expires_at - now),
            }
        )

    @api.post("/revokeP")
    async def revoke_token(request: Request) -> JSONResponse:
        try:
            body = await _json_body(request)
            appkey, _ = broker.tokens.check_credentials(body.get("appkey"), body.get("appsecret"))
        except TokenRefused as refused:
            return _refused(refused)
        if not broker.tokens.revoke(str(body.get("token", "")), appkey):
            return JSONResponse(codes.oauth_error("EGW00121"), status_code=403)
        return JSONResponse({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})

    @api.post("/Approval")
    async def approval_key(request: Request) -> JSONResponse:
        try:
            body = await _json_body(request)
            if body.get("grant_type") != "client_credentials":
                raise TokenRefused("EGW00002")
            appkey, _ = broker.tokens.check_credentials(body.get("appkey"), body.get("secretkey"))
        except TokenRefused as refused:
            return _refused(refused)
        return JSONResponse({"approval_key": broker.tokens.approval_key(appkey)})

    return api
