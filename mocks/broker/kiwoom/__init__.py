"""The Kiwoom REST profile of the simulated broker (``BrokerConfig.api == "kiwoom"``).

It speaks Kiwoom's wire protocol over the same world as the KIS profile: the seeded market,
the account book, the token book, the per-second budget, the control plane, the fault
injector and the journal (the ``api-id`` header is an entry's tr_id, and what a fault
rule's ``where.tr_id`` matches). Modules:

- ``oauth``: /oauth2/token, /oauth2/revoke
- ``gateway``: header, token and budget checks; the answer's api-id/cont-yn/next-key
- ``stocks``: ka10001, ka10099 · ``charts``: ka10081, ka10060
- ``trading``: kt10000, kt10001 · ``account``: ka00001, kt00018, kt00007
- ``codes``: return codes and messages · ``paging``: cont-yn/next-key
- ``state``, ``listings``, ``history``, ``formats``: what those share

docs/kiwoom.md has every endpoint with a curl example, and the decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mocks.broker.kiwoom import account, charts, codes, oauth, stocks, trading
from mocks.broker.kiwoom.codes import KiwoomError
from mocks.broker.kiwoom.gateway import Gateway, answer_headers
from mocks.broker.kiwoom.state import Kiwoom
from mocks.broker.state import Broker
from mocks.control import PREFIX, ControlPlane
from mocks.faults import Error
from mocks.faults import Request as FaultRequest
from mocks.http_faults import ErrorRenderer

__all__ = ["install"]


def install(app: FastAPI, broker: Broker, plane: ControlPlane) -> ErrorRenderer:
    """Mount the Kiwoom endpoints and error handlers on ``app``; returns how a fault rule's
    error is rendered in Kiwoom's terms, for the fault injector."""
    kiwoom = Kiwoom(broker)
    plane.on_reset(kiwoom.reset)
    gateway = Gateway(kiwoom)
    app.state.kiwoom = kiwoom
    app.include_router(oauth.router(broker))
    for module in (stocks, charts, trading, account):
        app.include_router(module.router(gateway))
    _install_error_handlers(app, broker)
    return _fault_renderer(broker)


def _headers(request: Request) -> dict[str, str]:
    api_id = request.headers.get("api-id", "").strip()
    return {"api-id": api_id, "cont-yn": "N", "next-key": ""} if api_id else {}


def _install_error_handlers(app: FastAPI, broker: Broker) -> None:
    @app.exception_handler(KiwoomError)
    async def refused(request: Request, exc: KiwoomError) -> JSONResponse:
        config = broker.config
        return JSONResponse(
            codes.error_body(exc, config.kiwoom_error_style),
            status_code=codes.status_of(exc.code, config),
            headers=_headers(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def not_a_service(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(PREFIX):
            return await http_exception_handler(request, exc)
        # Kiwoom serves TRs at four POST paths; anything else is a request for an API this
        # URI doesn't have (1504), with the HTTP status that says why (404, 405).
        api_id = request.headers.get("api-id", "").strip()
        body = codes.coded_body(
            1504,
            codes.message(1504, api_id, request.url.path),
            broker.config.kiwoom_error_style,
        )
        return JSONResponse(body, status_code=exc.status_code, headers=_headers(request))


def _fault_renderer(broker: Broker) -> ErrorRenderer:
    """A fault rule's error in Kiwoom's terms when its code is a Kiwoom number ("1700",
    "8005"): the body, status and headers the mock itself answers with for that code, for
    the request's api-id (1700's message names it, and every answer echoes it). Other rules
    (a body, a bare status, a KIS code) render as at KIS, with the api-id echoed."""

    def render(
        action: Error, request: FaultRequest
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        api_id = request.tr_id or ""
        headers = answer_headers(api_id) if api_id else {}
        if action.body is not None or action.code is None or not action.code.isdigit():
            status, body = broker.render_error(action)
            return status, body, headers
        code = int(action.code)
        text = action.message or codes.message(code, api_id)
        body = codes.coded_body(code, text, broker.config.kiwoom_error_style)
        return action.status or codes.status_of(code, broker.config), body, headers

    return render
