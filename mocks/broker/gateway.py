"""The checks the KIS gateway makes before any /uapi service runs.

Order matters and mirrors what clients observe: credentials first, then the per-second
budget (so an expired token still costs a request), then the token, then the service id.
Failures raise ``GatewayRefusal``; the app renders it with the switchable gateway status.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from mocks.broker.state import Broker
from mocks.broker.tokens import APPKEY_LENGTH, APPSECRET_LENGTH, TokenCheck, TokenRefused


class GatewayRefusal(Exception):
    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


class Rejection(Exception):
    """A business-level refusal (rt_cd "1", HTTP 200): bad input, not a gateway problem."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def admit(request: Request, broker: Broker, *, services: set[str], token: bool = True) -> str:
    """Run the gateway checks; returns the request's tr_id (or "" where none is needed)."""
    headers = request.headers  # case-insensitive: real clients send appKey/appSecret
    appkey = headers.get("appkey", "")
    appsecret = headers.get("appsecret", "")
    if len(appkey) != APPKEY_LENGTH:
        raise GatewayRefusal("EGW00103")
    if len(appsecret) != APPSECRET_LENGTH:
        raise GatewayRefusal("EGW00105")
    try:
        broker.tokens.check_credentials(appkey, appsecret)
    except TokenRefused as refused:
        raise GatewayRefusal(refused.code) from None
    now = broker.clock.now()
    if not broker.budget.admit(appkey, now, broker.config.budget):
        raise GatewayRefusal("EGW00201")
    if token:
        match = _BEARER.match(headers.get("authorization", ""))
        if match is None:
            raise GatewayRefusal("EGW00121")
        try:
            broker.tokens.validate(match.group(1), appkey, now)
        except TokenCheck as failed:
            raise GatewayRefusal(failed.code) from None
    if not services:
        return ""
    tr_id = headers.get("tr_id", "").strip().upper()
    if tr_id not in services:
        raise GatewayRefusal("OPSQ0002", tr_id or "tr_id 헤더 없음")
    return tr_id


def upper_query(request: Request) -> dict[str, str]:
    """Query parameters with upper-cased names: some clients send them lower-case."""
    return {key.upper(): value for key, value in request.query_params.items()}


def require(fields: dict[str, Any], name: str, pattern: str | None = None) -> str:
    """The text field ``name``; OPSQ2001 naming it when missing, not text (a JSON body may
    hold anything) or not matching ``pattern``."""
    value = fields.get(name)
    if not isinstance(value, str) or (pattern is not None and not re.fullmatch(pattern, value)):
        raise Rejection("OPSQ2001", name)
    return value
