"""The gateway app: ``/ws`` for live prices and signals, ``/health``, ``/metrics``, the page,
``/api/orders`` (the stored orders) when the system has a database, and, when it has a
trading desk, ``/api/kill-switch`` (read the trading halt; engage or release it with the
operator token; statuses and bodies in ``system.gateway.kill_switch``) and ``/api/trading``
(read-only: the mode, the halt, the recent orders, the positions and the P&L; the body is
in ``system.gateway.trading``). Without a desk both answer 404.

``create_gateway(service, feed, settings)`` wires the parts around a ``TradingService``
(or anything with its ``quote``/``health``/``metrics``) and a ``PriceFeed``. The caller
owns both: the gateway neither starts nor closes them. Its own background work —
heartbeats, feed subscriptions, the REST fallback — runs in the app's lifespan, so serve it
with a server that runs lifespans (``system.gateway.server.serve`` does). ``kill_switch``
is the trading desk (``system.trading.desk.Desk``): its switch, its book and its marks.
The orders ``/api/trading`` lists are the service's ``recent_orders`` (a service without
them, as a bench's stand-in, lists none).

``Gateway.of(app)`` reaches the parts of a created app; the trading core publishes signals
with ``Gateway.of(app).signals.publish(signal)``.

A read that cannot get a database connection in time (the pool is exhausted, PostgreSQL is
unreachable, a query ran too long) is answered **503** with ``Retry-After``: the pool's
``acquire_timeout_s`` bounds how long a request waits, so a crowd of requests against a
small pool gets quick refusals instead of piling up.

A request whose body is over ``GatewaySettings.max_body_bytes`` is answered **413** before
the body is held whole (``system.gateway.limits``), whatever the route.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from fastapi import FastAPI, WebSocket
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from system.broker.clock import kst_today, loop_time
from system.broker.errors import BrokerError
from system.broker.models import OrderAck, OrderRequest
from system.dashboard import assets
from system.gateway import api
from system.gateway.connections import GOING_AWAY, ConnectionManager
from system.gateway.dispatch import MessageDispatcher
from system.gateway.fanout import RedisFanout
from system.gateway.health import BrokerService, GatewayHealth, feed_health, gateway_health
from system.gateway.heartbeat import HeartbeatManager
from system.gateway.kill_switch import (
    OPERATOR,
    Refusal,
    check_media_type,
    check_operator,
    parse_command,
    switch_state,
    trading_health,
)
from system.gateway.limits import BodyLimit
from system.gateway.metrics import build_registry, render
from system.gateway.prices import PriceUpdateBroadcaster
from system.gateway.protocol import error
from system.gateway.server import ABORT_KEY
from system.gateway.settings import GatewaySettings
from system.gateway.signals import SignalBroadcaster
from system.gateway.trading import RECENT_ORDERS, OrderHistory, TradingDesk, trading_state
from system.health import Health
from system.market.model import PriceFeed
from system.storage.errors import StorageError

log = logging.getLogger(__name__)

# The page loads only its own files and talks only to its own origin.
_CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


# The most a client may ask of /api/orders in one request.
MAX_ORDERS_PAGE = 500


class StoredOrders(Protocol):
    """What the gateway needs of ``system.storage.Storage``."""

    async def recent_orders(self, limit: int = 50) -> list[dict[str, object]]: ...

    def health(self) -> Health: ...

    def metrics(self) -> dict[str, float]: ...


@runtime_checkable
class OrderPlacer(Protocol):
    """What ``POST /api/orders`` needs of ``TradingService``."""

    async def place_order(self, order: OrderRequest) -> OrderAck: ...


class AlertMetrics(Protocol):
    """What the gateway needs of ``system.trading.alerts.AlertNotifier``: its numbers."""

    def metrics(self) -> dict[str, float]: ...


class Gateway:
    """The parts of one gateway app, and their life (``start``/``stop``)."""

    def __init__(
        self,
        service: BrokerService,
        feed: PriceFeed,
        settings: GatewaySettings | None = None,
        *,
        storage: StoredOrders | None = None,
        kill_switch: TradingDesk | None = None,
        alerts: AlertMetrics | None = None,
    ) -> None:
        self.service = service
        self.feed = feed
        self.storage = storage
        self.kill_switch = kill_switch
        self.alerts = alerts
        self.order_history = service if isinstance(service, OrderHistory) else None
        self.settings = settings = settings or GatewaySettings()
        self.manager = ConnectionManager(
            queue_size=settings.client_queue_size,
            saturation_close_s=settings.saturation_close_s,
            close_timeout_s=settings.close_timeout_s,
        )
        self.heartbeat = HeartbeatManager(
            self.manager,
            interval_s=settings.heartbeat_interval_s,
            timeout_s=settings.pong_timeout_s,
        )
        self.prices = PriceUpdateBroadcaster(
            self.manager,
            feed,
            service,
            fallback_interval_s=settings.rest_fallback_interval_s,
            quote_timeout_s=settings.rest_quote_timeout_s,
        )
        self.signals = SignalBroadcaster(self.manager, history=settings.signal_history)
        self.fanout: RedisFanout | None = None
        if settings.redis_url is not None:
            self.fanout = RedisFanout(
                settings.redis_url.get_secret_value(),
                self.signals.deliver,
                channel=settings.fanout_channel,
                reconnect_max_s=settings.fanout_reconnect_max_s,
            )
            self.signals.share = self.fanout.share
        self.dispatcher = MessageDispatcher(
            self.manager,
            self.heartbeat,
            self.prices,
            self.signals,
            max_message_bytes=settings.max_message_bytes,
        )
        self.registry = build_registry(self)
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.running = False
        self.app = self._build_app()

    @staticmethod
    def of(app: FastAPI) -> Gateway:
        """The ``Gateway`` behind an app made by ``create_gateway``."""
        gateway = getattr(app.state, "gateway", None)
        if not isinstance(gateway, Gateway):
            raise LookupError("this app was not made by create_gateway(); it has no Gateway")
        return gateway

    async def start(self) -> None:
        if self.running:
            return
        self.prices.start()
        if self.fanout is not None:
            self.fanout.start()
        self._heartbeat_task = asyncio.get_running_loop().create_task(
            self.heartbeat.run(), name="gateway heartbeat"
        )
        self.running = True

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        await self.manager.close_all(GOING_AWAY, "gateway shutting down")
        await self.prices.stop()
        if self.fanout is not None:
            await self.fanout.aclose()

    def health(self) -> GatewayHealth:
        """The verdict of ``GET /health``; the rules are in ``system.gateway.health``."""
        fanout_task = None if self.fanout is None else self.fanout.task
        tasks = [*self.prices.tasks, self._heartbeat_task, fanout_task]
        stopped = tuple(t.get_name() for t in tasks if t is not None and t.done())
        status = self.feed.status()
        return GatewayHealth(
            broker=self.service.health(),
            feed=feed_health(
                status,
                loop_time(),
                refused=self.prices.refused,
                fallback_interval_s=self.settings.rest_fallback_interval_s,
            ),
            gateway=gateway_health(running=self.running, stopped_tasks=stopped),
            feed_status=status,
            connections=len(self.manager),
            storage=None if self.storage is None else self.storage.health(),
            trading=None if self.kill_switch is None else trading_health(self.kill_switch.halt),
            fanout=None if self.fanout is None else self.fanout.health(),
            fanout_state=None if self.fanout is None else self.fanout.state,
        )

    # -- HTTP and WebSocket ---------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = FastAPI(
            title="Squall gateway",
            lifespan=lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
        app.state.gateway = self
        app.add_middleware(BodyLimit, max_body_bytes=self.settings.max_body_bytes)
        app.add_api_route("/health", self._health, methods=["GET"], include_in_schema=False)
        app.add_api_route("/metrics", self._metrics, methods=["GET"], include_in_schema=False)
        app.add_api_route("/api/orders", self._orders, methods=["GET"], include_in_schema=False)
        app.add_api_route(
            "/api/kill-switch", self._kill_switch, methods=["GET"], include_in_schema=False
        )
        app.add_api_route(
            "/api/kill-switch", self._set_kill_switch, methods=["POST"], include_in_schema=False
        )
        app.add_api_route("/api/trading", self._trading, methods=["GET"], include_in_schema=False)
        app.add_api_route(
            "/api/quotes/{code}", self._quote, methods=["GET"], include_in_schema=False
        )
        app.add_api_route(
            "/api/orders", self._place_order, methods=["POST"], include_in_schema=False
        )
        app.add_api_websocket_route("/ws", self._websocket)
        for path, asset in assets().items():
            app.add_route(path, _asset_route(asset.body, asset.media_type), include_in_schema=False)
        return app

    async def _health(self) -> JSONResponse:
        verdict = self.health()
        return JSONResponse(verdict.to_json(), status_code=verdict.http_status)

    async def _orders(self, request: Request) -> JSONResponse:
        if self.storage is None:
            return _problem(
                404,
                "this system runs without a database, so it stores no orders; set "
                "SQUALL_DATABASE_URL to give it one",
            )
        raw = request.query_params.get("limit", "50")
        # Plain digits only (str.isdigit alone passes "²", which int() refuses), and few of
        # them (int() refuses thousands).
        digits = raw.isascii() and raw.isdigit() and len(raw) <= 9
        limit = int(raw) if digits else 0
        if not 1 <= limit <= MAX_ORDERS_PAGE:
            return _problem(
                400, f"limit must be a whole number from 1 to {MAX_ORDERS_PAGE}, got {raw!r}"
            )
        try:
            orders = await self.storage.recent_orders(limit)
        except StorageError as exc:
            retry_after = max(1, math.ceil(exc.retry_after_s or 1))
            return _problem(503, exc.message, headers={"Retry-After": str(retry_after)})
        return JSONResponse({"orders": orders})

    async def _kill_switch(self) -> JSONResponse:
        if self.kill_switch is None:
            return _refuse(_NO_KILL_SWITCH)
        return JSONResponse(switch_state(self.kill_switch.halt))

    async def _set_kill_switch(self, request: Request) -> JSONResponse:
        if self.kill_switch is None:
            return _refuse(_NO_KILL_SWITCH)
        client = _client_of(request)
        denied = self._not_the_operator(request, "setting the kill switch")
        if denied is not None:
            return denied
        command = check_media_type(request.headers.get("content-type")) or parse_command(
            await request.body()
        )
        if isinstance(command, Refusal):
            return _refuse(command)
        if command.engaged:
            changed = self.kill_switch.engage(command.detail, by=OPERATOR)
        else:
            changed = self.kill_switch.release(by=OPERATOR)
        log.warning(
            "gateway: the operator at %s %s the kill switch%s",
            client,
            "engaged" if command.engaged else "released",
            "" if changed else " (no change: it already was)",
        )
        return JSONResponse({**switch_state(self.kill_switch.halt), "changed": changed})

    async def _quote(self, code: str) -> JSONResponse:
        refused = api.check_code(code)
        if refused is not None:
            return _refuse(refused)
        try:
            quote = await self.service.quote(code)
        except BrokerError as exc:
            status, body, headers = api.quote_failed(exc)
            return JSONResponse(body, status_code=status, headers=headers)
        return JSONResponse(api.quote_body(quote))

    async def _place_order(self, request: Request) -> JSONResponse:
        placer = self.service if isinstance(self.service, OrderPlacer) else None
        if placer is None:
            return _problem(404, "this gateway's service places no orders")
        client = _client_of(request)
        denied = self._not_the_operator(request, "placing an order")
        if denied is not None:
            return denied
        order = check_media_type(request.headers.get("content-type")) or api.parse_order(
            await request.body()
        )
        if isinstance(order, Refusal):
            return _refuse(order)
        halt = None if self.kill_switch is None else self.kill_switch.halt
        if halt is not None:
            return JSONResponse(
                {
                    "status": "halted",
                    "error": f"trading is halted ({halt.reason}: {halt.detail}); the order was "
                    'not sent: release the halt first (POST /api/kill-switch {"engaged": false})',
                },
                status_code=409,
            )
        try:
            ack = await placer.place_order(order)
        except (BrokerError, ValueError) as exc:
            status, body = api.order_failed(order, exc)
            headers = {"Retry-After": str(api.retry_after_s(exc))} if status == 503 else None
            return JSONResponse(body, status_code=status, headers=headers)
        status, body = api.order_placed(ack)
        log.info("gateway: the operator at %s placed %s", client, order.client_order_id)
        return JSONResponse(body, status_code=status)

    def _not_the_operator(self, request: Request, doing: str) -> JSONResponse | None:
        """The refusal of a mutating request without the operator token (logged), or None.
        Callers read the body only after this, once the sender has proved to be the
        operator."""
        denied = check_operator(
            request.headers.get("authorization"), self.settings.operator_token, doing=doing
        )
        if denied is None:
            return None
        log.warning(
            "gateway: refused %s %s from %s (%d): %s",
            request.method,
            request.url.path,
            _client_of(request),
            denied.status,
            denied.message,
        )
        return _refuse(denied)

    async def _trading(self) -> JSONResponse:
        if self.kill_switch is None:
            return _refuse(_NO_TRADING)
        history = self.order_history
        orders = [] if history is None else history.recent_orders(RECENT_ORDERS)
        return JSONResponse(trading_state(self.kill_switch, orders, kst_today()))

    async def _metrics(self) -> Response:
        return Response(render(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def _websocket(self, websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        host = websocket.headers.get("host", "")
        if not origin_allowed(origin, host, self.settings.allowed_origins):
            await _deny(
                websocket,
                f"origin {origin} may not open /ws on this gateway: serve the page from the "
                "gateway itself, or add the origin to SQUALL_GATEWAY_ALLOWED_ORIGINS "
                "(comma-separated)",
            )
            return
        await websocket.accept()
        client_id = self.manager.connect(
            _AsgiSocket(websocket),
            {"heartbeat_interval_s": self.settings.heartbeat_interval_s},
        )
        self.manager.send(client_id, self.prices.status_message(), key="feed_status")
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    self.manager.send(
                        client_id,
                        error(
                            "malformed_json",
                            "binary message ignored: send JSON as a text message, e.g. "
                            '{"type":"subscribe","ticker":"005930"}',
                        ),
                    )
                    continue
                self.dispatcher.handle(client_id, text)
        finally:
            self.manager.disconnect(client_id)


def create_gateway(
    service: BrokerService,
    feed: PriceFeed,
    settings: GatewaySettings | None = None,
    *,
    storage: StoredOrders | None = None,
    kill_switch: TradingDesk | None = None,
    alerts: AlertMetrics | None = None,
) -> FastAPI:
    """The gateway's ASGI app around ``service`` and ``feed`` (see the module docstring);
    ``alerts`` (the alert notifier) adds its ``alerts_*`` numbers to ``/metrics``."""
    return Gateway(
        service, feed, settings, storage=storage, kill_switch=kill_switch, alerts=alerts
    ).app


def _client_of(request: Request) -> str:
    return request.client.host if request.client else "an unknown client"


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _no_desk(has_no: str) -> Refusal:
    """The 404 of a route that needs the trading desk."""
    return Refusal(
        404,
        f"this system runs no trading desk, so it has no {has_no}; set SQUALL_TRADING_MODE "
        "(paper or live) to run one",
    )


_NO_KILL_SWITCH = _no_desk("kill switch to read or set")
_NO_TRADING = _no_desk("orders, positions or P&L to show")


# What a refusal's status obliges its answer to say besides the message.
_REFUSAL_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": "Bearer"},
    415: {"Accept-Post": "application/json"},
}


def _refuse(refusal: Refusal) -> JSONResponse:
    return _problem(refusal.status, refusal.message, _REFUSAL_HEADERS.get(refusal.status))


def origin_allowed(origin: str | None, host: str, allowed: Iterable[str]) -> bool:
    """Whether a WebSocket handshake from ``origin`` may proceed.

    Browsers always send Origin, and any page may try to open a socket to a gateway on the
    user's machine (cross-site WebSocket hijacking); other clients send none. Allowed: no
    Origin, the gateway's own origin (its host), or one of ``allowed`` (``"*"``: any).
    """
    if origin is None:
        return True
    allowed = set(allowed)
    if "*" in allowed or origin.rstrip("/") in allowed:
        return True
    return urlsplit(origin).netloc.lower() == host.lower() != ""


async def _deny(websocket: WebSocket, reason: str) -> None:
    log.warning("gateway: refused a WebSocket: %s", reason)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse(reason, status_code=403))
    else:
        await websocket.close(code=1008, reason=reason[:123])


class _AsgiSocket:
    """A starlette ``WebSocket`` as the ``ClientSocket`` the manager drives."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def send_text(self, data: str) -> None:
        await self.websocket.send_text(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self.websocket.close(code, reason)

    def abort(self) -> None:
        # Only servers run by system.gateway.server offer it; elsewhere the server's own
        # timeouts end the connection.
        extension: Any = self.websocket.scope.get("extensions", {}).get(ABORT_KEY)
        if extension is not None:
            extension["abort"]()


def _asset_route(body: bytes, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def asset(_: Request) -> Response:
        return Response(
            body,
            media_type=media_type,
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP},
        )

    return asset
