"""The simulated world in one process: the mock KIS broker and its realtime feed, together.

Both draw prices from the same seeded market and start their wall clocks at the same
instant, so a REST quote and the feed's frames agree; each builds its ``Market`` from the
seed, and both share one collection of market events (the broker's, injected through
``/_squall/market/events``), so a gap, a limit or a VI shows in quotes, fills and frames
alike, and a ``mispricing`` in the FX venue's cross rates, which the feed serves on its
ticker channel (``rates_url``). The feed opens sessions only for approval keys the broker
issued (``/oauth2/Approval``), as KIS does. ``squall up``, the harness and the E2E tests
all start the world through ``serve_world``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI

from mocks.broker import BrokerConfig, create_app
from mocks.broker.config import Api
from mocks.control_client import BrokerControl, FeedControl
from mocks.feed import FeedConfig, create_feed_app, opening_bell
from mocks.feed.fx_session import PATH as FX_PATH
from mocks.feed.kiwoom_session import PATH as KIWOOM_PATH
from mocks.server import MockServer, serve


@dataclass(frozen=True)
class World:
    """The running mocks: ``broker.url`` (REST, control plane under ``/_squall``) and
    ``feed_url`` (the realtime WebSocket); clients of both control planes; and the two apps,
    for in-process checks against the simulated market (``feed_app.state.feed.market``)."""

    broker: MockServer
    feed: MockServer
    broker_control: BrokerControl
    feed_control: FeedControl
    broker_app: FastAPI
    feed_app: FastAPI

    @property
    def api(self) -> Api:
        """The broker's protocol: "kis" or "kiwoom"."""
        api: Api = self.broker_app.state.broker.config.api
        return api

    @property
    def feed_url(self) -> str:
        """The realtime channel of the broker's protocol: KIS's ``/tryitout``, or Kiwoom's
        ``/api/dostk/websocket``."""
        return self.feed.ws_url + (KIWOOM_PATH if self.api == "kiwoom" else "/tryitout")

    @property
    def rates_url(self) -> str:
        """The FX venue's ticker channel (Kraken's WebSocket v2 protocol), on the feed."""
        return self.feed.ws_url + FX_PATH


@contextlib.asynccontextmanager
async def serve_world(
    broker_config: BrokerConfig | None = None,
    feed_config: FeedConfig | None = None,
    *,
    host: str = "127.0.0.1",
    broker_port: int = 0,
    feed_port: int = 0,
    wall_origin: datetime | None = None,
    control_token: str | None = None,
) -> AsyncIterator[World]:
    """Serve the broker and the feed until the block exits; PortInUse before either starts
    serving when a port is taken.

    The feed's seed defaults to the broker's, so both show the same market; giving a
    ``feed_config`` with another seed is allowed (a test of disagreement) but unusual.
    ``wall_origin`` is both mocks' wall time at offset zero (default: 09:00 KST today, so
    prices move as in a trading session whatever the hour).
    """
    broker_config = broker_config or BrokerConfig()
    feed_config = feed_config or FeedConfig(seed=broker_config.seed)
    origin = wall_origin or opening_bell()
    broker_app = create_app(broker_config, control_token=control_token, wall_origin=origin)
    broker_market = broker_app.state.broker.market
    feed_app = create_feed_app(
        feed_config,
        approvals=broker_app.state.broker.tokens.approvals,
        tokens=broker_app.state.broker.tokens,
        wall_origin=origin,
        control_token=control_token,
        market_events=broker_app.state.broker.market.events,
        # One market for both when they share a seed: each price path is computed once.
        market=broker_market if broker_market.seed == feed_config.seed else None,
    )
    async with (
        serve(broker_app, host, broker_port) as broker,
        serve(feed_app, host, feed_port, ws_ping_interval=None) as feed,
        BrokerControl(broker.url, token=control_token) as broker_control,
        FeedControl(feed.url, token=control_token) as feed_control,
    ):
        yield World(broker, feed, broker_control, feed_control, broker_app, feed_app)
