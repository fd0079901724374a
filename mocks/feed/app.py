"""The simulated KIS realtime feed as one ASGI app: the WebSocket, its control plane.

Why ASGI and uvicorn rather than the websockets library's own server: the feed then shares
everything with the broker mock through ``mocks.server.serve()``: the port binding and its
``PortInUse`` advice, uvicorn running as a task in the caller's loop (so the feed runs on
virtual time beside the broker), the wire access faults need (TCP transport, listener), and
an HTTP control plane on the same port as the WebSocket. uvicorn's WebSocket protocol is
built on the websockets library's sans-I/O core, so the wire is the same.

The same app serves the FX venue's ticker channel at ``/v2`` (``mocks.feed.fx_session``:
Kraken's WebSocket v2 ticker protocol over the simulator's cross rates), on the same clock
and market events, and Kiwoom's realtime protocol at ``/api/dostk/websocket``
(``mocks.feed.kiwoom_session``) on the same market, fault rules and journal as KIS's.

The seed's extras sit beside them: public ``GET /health`` and ``GET /stats``
(``mocks.feed.status``), and the seed's signals channel at ``/ws`` (``mocks.feed.signals``:
prices and simulated VCP / closing-bet signals, drawn by probability or cued with
``POST /_squall/feed/signals``).

Serve it with uvicorn's WebSocket-level pings off (``serve(..., ws_ping_interval=None)``, or
``serve_feed``): KIS keeps connections alive with its own PINGPONG, and a stall must be
able to silence the connection completely.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, WebSocket
from pydantic import ValidationError

from mocks.clock import KST, MockClock
from mocks.control import PREFIX, json_body, mock_app, validation_summary
from mocks.feed.config import FeedConfig
from mocks.feed.control import FeedControlPlane
from mocks.feed.fx_session import PATH as FX_PATH
from mocks.feed.fx_session import FxVenue
from mocks.feed.kiwoom_session import PATH as KIWOOM_PATH
from mocks.feed.kiwoom_session import KiwoomVenue, TokenRegistry
from mocks.feed.session import Session
from mocks.feed.signals import PATH as SIGNALS_PATH
from mocks.feed.signals import SignalCue, SignalVenue
from mocks.feed.signals_protocol import SIGNALS, check
from mocks.feed.state import ApprovalRegistry, Feed
from mocks.feed.status import Traffic, status_router
from mocks.journal import fingerprint
from mocks.market import Market
from mocks.market_events import MarketEvents
from mocks.server import MockServer, serve

WEBSOCKET_PATHS = ("/tryitout", "/")  # KIS documents /tryitout; some clients use the root


def opening_bell(day: datetime | None = None) -> datetime:
    """09:00 KST of ``day`` (default today): the feed's wall clock starts at the open."""
    return (
        (day or datetime.now(KST))
        .astimezone(KST)
        .replace(hour=9, minute=0, second=0, microsecond=0)
    )


def create_feed_app(
    config: FeedConfig | None = None,
    *,
    approvals: ApprovalRegistry | None = None,
    wall_origin: datetime | None = None,
    control_token: str | None = None,
    market_events: MarketEvents | None = None,
    market: Market | None = None,
    tokens: TokenRegistry | None = None,
) -> FastAPI:
    """A fresh feed.

    ``approvals`` is the mock broker's registry of issued approval keys
    (``broker_app.state.broker.tokens.approvals``) when both run in one process; then only
    keys it issued open a session. Without it the feed accepts any UUID-shaped key (see
    ``FeedConfig.approval_keys``). ``wall_origin`` is the wall time at offset zero, for
    STCK_CNTG_HOUR, BSOP_DATE and PINGPONG's datetime (default: 09:00 KST today).
    ``market_events`` is the mock broker's collection (``broker_app.state.broker.market
    .events``) when both run in one world, so the frames show the events its control plane
    injects (a VI halt sends no trade frames); by default the feed's market has its own.
    ``market`` is the broker's market itself (same seed): one market then computes each
    price path once for both (with its events).
    ``tokens`` is the mock broker's token book (``broker_app.state.broker.tokens``): Kiwoom's
    realtime channel at ``/api/dostk/websocket`` then logs in only live tokens it issued;
    without it, any non-empty token (``mocks.feed.kiwoom_session``).
    """
    config = config or FeedConfig()
    clock = MockClock(wall_origin or opening_bell())
    plane = FeedControlPlane(seed=config.seed, control_token=control_token, clock=clock)
    feed = Feed(config, clock, plane, approvals, market_events, market)
    plane.on_reset(feed.reset)
    app = mock_app("Squall mock KIS realtime feed", plane, shutdown=feed.shutdown)
    app.state.feed = feed

    async def realtime(websocket: WebSocket) -> None:
        await Session(feed, websocket).run()

    for path in WEBSOCKET_PATHS:
        app.add_api_websocket_route(path, realtime)
    venue = FxVenue(feed)
    plane.on_reset(venue.reset)
    app.state.fx = venue
    app.add_api_websocket_route(FX_PATH, venue.serve)
    app.state.kiwoom = KiwoomVenue(feed, tokens)
    app.add_api_websocket_route(KIWOOM_PATH, app.state.kiwoom.serve)
    signals = SignalVenue(feed)
    plane.on_reset(signals.reset)
    app.state.signals = signals
    app.add_api_websocket_route(SIGNALS_PATH, signals.serve)
    traffic = Traffic(
        {
            "kis": WEBSOCKET_PATHS,
            "kiwoom": (KIWOOM_PATH,),
            "fx": (FX_PATH,),
            "signals": (SIGNALS_PATH,),
        }
    )
    plane.on_reset(traffic.reset)
    app.state.traffic = traffic
    app.add_middleware(traffic.counting)
    app.include_router(status_router(feed, traffic, venue, signals))
    app.include_router(_feed_control(feed, plane, signals))
    return app


def _feed_control(feed: Feed, plane: FeedControlPlane, signals: SignalVenue) -> APIRouter:
    api = APIRouter(prefix=f"{PREFIX}/feed", dependencies=[Depends(plane.authorize)])

    @api.get("/config")
    async def get_config() -> dict[str, Any]:
        return {
            **feed.config.model_dump(),
            "approvals": "uuid" if feed.approvals is None else "issued",
        }

    @api.get("/connections")
    async def connections() -> list[dict[str, Any]]:
        return [
            {
                "connection": session.number,
                "appkey": None if session.appkey is None else fingerprint(session.appkey),
                "subscriptions": [
                    {"tr_id": tr_id, "tr_key": tr_key}
                    for tr_id, tr_key in session.subscriptions.active()
                ],
                **session.condition(),
            }
            for session in feed.sessions()
        ]

    @api.post("/signals")
    async def cue_signal(request: Request) -> dict[str, Any]:
        """Send a signal now to every ``/ws`` connection subscribed to its ticker."""
        what = f"signal cue (signal: {' or '.join(SIGNALS)}; ticker: a listed 6-digit code)"
        payload = await json_body(request, what)
        try:
            cue = SignalCue.model_validate(payload)
        except ValidationError as exc:
            raise HTTPException(422, validation_summary(exc, what)) from None
        problem = check(cue.ticker, feed.market.instruments)
        if problem is not None:
            raise HTTPException(422, problem.message)
        result = signals.cue(cue.signal, cue.ticker, cue.reason)
        return {
            "signal": cue.signal,
            "ticker": cue.ticker,
            "price": result.quote.price,
            "time": result.quote.time,
            "reached": result.reached,
        }

    return api


@asynccontextmanager
async def serve_feed(
    config: FeedConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    approvals: ApprovalRegistry | None = None,
    wall_origin: datetime | None = None,
    control_token: str | None = None,
) -> AsyncIterator[MockServer]:
    """Serve a fresh feed until the block exits; WebSocket at ``server.ws_url + "/tryitout"``,
    control plane at ``server.url + "/_squall"``. Raises PortInUse before anything starts."""
    app = create_feed_app(
        config, approvals=approvals, wall_origin=wall_origin, control_token=control_token
    )
    async with serve(app, host, port, ws_ping_interval=None) as server:
        yield server
