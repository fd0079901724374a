"""The checks Kiwoom's gateway makes before a TR runs, and the shape of every TR answer.

Every TR is a POST with a JSON body; the ``api-id`` header names it, and one path serves
several TRs (ka10001 and ka10099 both at /api/dostk/stkinfo). The checks, in order (the
order is the mock's choice; Kiwoom documents none):

1. ``api-id``: missing 1501, unknown to the mock 1505, served at another path 1504.
2. ``authorization``: missing 1513, not "<scheme> <token>" 1514, a scheme other than
   Bearer 1515, "Bearer" alone 1516, a token not live (unknown, revoked, expired) 8005.
3. The per-second budget (1700), counted per app key of the token, orders (kt10000,
   kt10001) and queries apart: the policy quoted is 5 queries/s and 5 orders/s. A refused
   request costs nothing, as at KIS (``mocks.broker.budget``).
4. The body: not a JSON object 1517; then the TR's own fields (1511 missing, 1517 bad).

Answers echo ``api-id`` and carry ``cont-yn`` (Y: more follows) and ``next-key``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mocks.broker.kiwoom.codes import RATE_LIMITED, TOKEN_INVALID, KiwoomError
from mocks.broker.kiwoom.state import Kiwoom
from mocks.broker.tokens import Token, TokenCheck

STKINFO = "/api/dostk/stkinfo"
CHART = "/api/dostk/chart"
ORDR = "/api/dostk/ordr"
ACNT = "/api/dostk/acnt"
ORDER_IDS = frozenset({"kt10000", "kt10001"})


@dataclass(frozen=True)
class Continuation:
    """The paging headers of an answer: ``cont_yn`` "Y" while more rows follow."""

    cont_yn: str = "N"
    next_key: str = ""


LAST = Continuation()


@dataclass(frozen=True)
class Call:
    """An admitted TR request."""

    api_id: str
    appkey: str
    fields: dict[str, Any]
    cont_yn: str  # "Y" when the client asks for the next page
    next_key: str


@dataclass(frozen=True)
class Answer:
    body: dict[str, Any]
    more: Continuation = LAST


Handler = Callable[[Call], Answer]


class Gateway:
    """Routes TRs by path and ``api-id``; knows every TR served, to tell 1504 from 1505."""

    def __init__(self, kiwoom: Kiwoom) -> None:
        self.kiwoom = kiwoom
        self.paths: dict[str, str] = {}

    def serve(self, api: APIRouter, path: str, handlers: Mapping[str, Handler]) -> None:
        """Answer the TRs ``handlers`` names at ``path``."""
        self.paths.update(dict.fromkeys(handlers, path))

        @api.post(path)
        async def tr(request: Request) -> JSONResponse:
            call = await self.admit(request, path)
            answer = handlers[call.api_id](call)
            return JSONResponse(answer.body, headers=answer_headers(call.api_id, answer.more))

    async def admit(self, request: Request, path: str) -> Call:
        headers = request.headers
        api_id = headers.get("api-id", "").strip().lower()
        if not api_id:
            raise KiwoomError(1501)
        home = self.paths.get(api_id)
        if home is None:
            raise KiwoomError(1505, api_id)
        if home != path:
            raise KiwoomError(1504, api_id, path)
        token = self._token(headers.get("authorization", ""))
        broker = self.kiwoom.broker
        kind = "order" if api_id in ORDER_IDS else "query"
        if not broker.budget.admit(
            f"{token.appkey}:{kind}", broker.clock.now(), broker.config.budget
        ):
            raise KiwoomError(RATE_LIMITED, api_id)
        return Call(
            api_id=api_id,
            appkey=token.appkey,
            fields=await json_object(request),
            cont_yn=headers.get("cont-yn", "").strip().upper(),
            next_key=headers.get("next-key", "").strip(),
        )

    def _token(self, authorization: str) -> Token:
        if not authorization.strip():
            raise KiwoomError(1513)
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise KiwoomError(1515 if value.strip() else 1514)
        if not value.strip():
            raise KiwoomError(1516)
        broker = self.kiwoom.broker
        try:
            return broker.tokens.validate(value.strip(), None, broker.clock.now())
        except TokenCheck:
            # Kiwoom has one code for unknown, revoked and expired tokens alike.
            raise KiwoomError(TOKEN_INVALID) from None


def answer_headers(api_id: str, more: Continuation = LAST) -> dict[str, str]:
    return {"api-id": api_id, "cont-yn": more.cont_yn, "next-key": more.next_key}


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is an empty object (ka00001 takes
    none)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise KiwoomError(1517, "body", "JSON 객체가 아닙니다") from None
    if not isinstance(payload, dict):
        raise KiwoomError(1517, "body", "JSON 객체가 아닙니다")
    return payload


def text(fields: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """A string field (numbers are taken as their digits); 1511 when required and absent."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise KiwoomError(1511, name)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise KiwoomError(1517, name, "문자열이어야 합니다")
    return str(value).strip()


def choice(fields: Mapping[str, Any], name: str, allowed: Collection[str]) -> str:
    value = text(fields, name)
    if value not in allowed:
        raise KiwoomError(1517, name, f"{', '.join(sorted(allowed))} 중 하나여야 합니다")
    return value


def day(fields: Mapping[str, Any], name: str, *, required: bool = True) -> date | None:
    value = text(fields, name, required=required)
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise KiwoomError(1517, name, "YYYYMMDD 형식이어야 합니다") from None


def count(fields: Mapping[str, Any], name: str) -> int:
    """A positive whole number."""
    value = text(fields, name)
    if not re.fullmatch(r"\d{1,12}", value) or int(value) <= 0:
        raise KiwoomError(1517, name, "1 이상의 정수여야 합니다")
    return int(value)
