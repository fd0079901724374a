"""The simulated broker as one ASGI app: gateway routes, fault injector, control plane.

``BrokerConfig.api`` picks the protocol the routes speak: KIS Open API (``kis``) or Kiwoom
REST (``kiwoom``, ``mocks.broker.kiwoom``). The control plane is the same for both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mocks.broker import (
    account_control,
    codes,
    kiwoom,
    market_control,
    oauth,
    quotations,
    trading,
)
from mocks.broker.config import BrokerConfig
from mocks.broker.gateway import GatewayRefusal, Rejection
from mocks.broker.state import Broker
from mocks.clock import MockClock
from mocks.control import PREFIX, ControlPlane, json_body, mock_app, validation_summary
from mocks.http_faults import ErrorRenderer, FaultInjector
from mocks.vocabulary import KIS, KIWOOM


def create_app(
    config: BrokerConfig | None = None,
    *,
    control_token: str | None = None,
    wall_origin: datetime | None = None,
) -> FastAPI:
    """A fresh broker. ``wall_origin`` pins the wall clock (token expiry strings, order
    times) for reproducible bodies; by default it is the real time at start-up."""
    config = config or BrokerConfig()
    clock = MockClock(wall_origin)
    broker = Broker(config, clock)
    plane = ControlPlane(name="broker", seed=config.seed, control_token=control_token, clock=clock)
    plane.on_reset(broker.reset)
    app = mock_app(f"Squall mock {_NAMES[config.api]} broker", plane)
    app.state.broker = broker
    render_error: ErrorRenderer
    if config.api == "kiwoom":
        render_error = kiwoom.install(app, broker, plane)
    else:
        app.include_router(oauth.router(broker))
        app.include_router(quotations.router(broker))
        app.include_router(trading.router(broker))
        _install_error_handlers(app, broker)
        render_error = broker.render_fault
    app.include_router(_broker_control(broker, plane))
    app.include_router(market_control.router(broker, plane))
    app.include_router(account_control.router(broker, plane))
    vocabulary = KIWOOM if config.api == "kiwoom" else KIS
    app.add_middleware(FaultInjector, plane=plane, render_error=render_error, vocabulary=vocabulary)
    return app


_NAMES = {"kis": "KIS", "kiwoom": "Kiwoom"}


def _install_error_handlers(app: FastAPI, broker: Broker) -> None:
    @app.exception_handler(GatewayRefusal)
    async def gateway_refusal(_: Request, exc: GatewayRefusal) -> JSONResponse:
        # EGW messages are sent verbatim: clients match on them.
        detail = None if exc.code.startswith("EGW") else exc.detail
        return JSONResponse(
            codes.gateway_error(exc.code, detail), status_code=broker.config.gateway_error_status
        )

    @app.exception_handler(Rejection)
    async def rejection(_: Request, exc: Rejection) -> JSONResponse:
        return JSONResponse(codes.rejection(exc.code, exc.detail))

    @app.exception_handler(StarletteHTTPException)
    async def not_a_service(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(PREFIX):
            return await http_exception_handler(request, exc)
        # The real gateway answers unknown paths in its own terms, not with FastAPI's.
        detail = f"{request.method} {request.url.path}"
        return JSONResponse(codes.gateway_error("OPSQ0002", detail), status_code=exc.status_code)


# What the world was built from (protocol, market, accounts) can't change under a running
# mock.
_CHANGEABLE = set(BrokerConfig.model_fields) - {"api", "profile", "seed", "initial_cash"}


def _broker_control(broker: Broker, plane: ControlPlane) -> APIRouter:
    """Broker-specific control: world state a scenario manipulates directly."""
    api = APIRouter(prefix=f"{PREFIX}/broker", dependencies=[Depends(plane.authorize)])

    @api.get("/config")
    async def get_config() -> dict[str, Any]:
        return {**broker.config.model_dump(), "budget": broker.config.budget}

    @api.patch("/config")
    async def patch_config(request: Request) -> dict[str, Any]:
        changes = await json_body(request, "config change")
        if not isinstance(changes, dict):
            raise HTTPException(400, "send a JSON object of the settings to change")
        refused = set(changes) - _CHANGEABLE
        if refused:
            raise HTTPException(
                400,
                f"cannot change {', '.join(sorted(refused))} at run time; changeable: "
                + ", ".join(sorted(_CHANGEABLE)),
            )
        # Validate the whole result first, so a bad value changes nothing.
        try:
            updated = BrokerConfig.model_validate({**broker.config.model_dump(), **changes})
        except ValidationError as exc:
            raise HTTPException(422, validation_summary(exc, "config change")) from None
        for name in changes:
            setattr(broker.config, name, getattr(updated, name))
        return {**broker.config.model_dump(), "budget": broker.config.budget}

    @api.post("/tokens/expire")
    async def expire_tokens() -> dict[str, int]:
        """Expire every live token now: the next request with one gets EGW00123 (KIS)
        or 8005 (Kiwoom)."""
        return {"expired": broker.tokens.expire_all(broker.clock.now())}

    @api.get("/tokens")
    async def token_stats() -> dict[str, int]:
        return {"issued": broker.tokens.issued}

    return api
