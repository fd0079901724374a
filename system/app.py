"""Where the system is wired: settings → broker client → trading service → feed client →
gateway.

This is the one place that builds the system; everything else receives its parts.

- ``build_service(environ)``: the trading service alone (the REST side).
- ``SystemSettings.from_env(environ)``: every setting of the whole system, read (and
  checked) before anything is built.
- ``running_system(settings)``: the trading service, the realtime feed client and the
  gateway app around them, closed in reverse order on exit. Serve ``system.app`` with
  ``system.gateway.serve``; ``squall system`` and ``squall up`` do exactly that.

Environment: ``SQUALL_BROKER`` picks the broker, ``kis`` (the default) or ``kiwoom``; its
client reads ``SQUALL_KIS_*`` (``KisSettings``: base URL, credentials, account, budgets) or
``SQUALL_KIWOOM_*`` (``KiwoomSettings``: base URL, app key and secret key, budgets), and the
feed client speaks that broker's realtime dialect. Beside it:
``SQUALL_SERVICE_*`` (``ServiceSettings``: deadlines, retry and reconciliation policy),
``SQUALL_FEED_*`` (``FeedSettings``: the realtime server's URL, stall window, backoff) and
``SQUALL_GATEWAY_*`` (``GatewaySettings``: heartbeats, client queues, REST fallback).
With ``SQUALL_DATABASE_URL`` (or ``DATABASE_URL``) set, the system stores what it does in
PostgreSQL (``system.storage``: ``SQUALL_DB_*`` for the pool, ``SQUALL_STORAGE_*`` for the
write buffer); without it, it runs without a database. With ``SQUALL_TRADING_MODE`` set
(``paper`` or ``live``), the trading desk runs on the feed's prices (``system.trading``:
``SQUALL_TRADING_*`` for the desk and its risk limits, ``SQUALL_ALERT_*`` for the alert
webhook); without it, the system serves prices and orders and trades nothing itself. With
``SQUALL_RATES_URL`` set, the system follows an FX venue's currency pairs
(``RateFeedClient``, ``SQUALL_RATES_*``) and the desk's rate detectors (``triangular``) price
them; the opportunities they find are recorded and broadcast, never traded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from fastapi import FastAPI

from system.broker import BrokerClient, KisClient, KisSettings, SettingsError
from system.broker.clock import kst_now, loop_time
from system.broker.kiwoom import KiwoomClient, KiwoomSettings
from system.gateway import Gateway, GatewaySettings, create_gateway
from system.market import (
    KIS,
    KIWOOM,
    Dialect,
    FeedClient,
    FeedSettings,
    RateFeedClient,
    RateFeedSettings,
    quote_resync,
)
from system.service import ServiceSettings, TradingService
from system.storage import DatabaseWait, Storage, StorageSettings
from system.storage.config import database_url_variable
from system.trading.alerts import AlertNotifier, AlertSettings
from system.trading.desk import Desk
from system.trading.detectors import WallClock
from system.trading.fills import BrokerFills
from system.trading.settings import TradingSettings

# The variable that picks the broker, and each broker's client settings.
BROKER_VARIABLE = "SQUALL_BROKER"
CLIENT_SETTINGS: dict[str, type[KisSettings] | type[KiwoomSettings]] = {
    "kis": KisSettings,
    "kiwoom": KiwoomSettings,
}
# The variable that switches the trading desk on.
TRADING_MODE_VARIABLE = "SQUALL_TRADING_MODE"
# The variable that switches the rate feed on.
RATES_URL_VARIABLE = "SQUALL_RATES_URL"


def build_service(environ: Mapping[str, str] | None = None) -> TradingService:
    """A ``TradingService`` configured from ``environ`` (default: the process environment).

    Raises ``SettingsError`` naming the variables to fix. The caller owns the result: use
    ``async with`` or ``aclose()`` so the client's connections are closed.
    """
    # Both settings are read before the client exists, so a bad variable leaks no client.
    broker = broker_settings(environ)
    policy = ServiceSettings.from_env(environ=environ)
    client, _, _ = broker_client(broker)
    return TradingService(client, policy)


ClientSettings = KisSettings | KiwoomSettings


def broker_settings(environ: Mapping[str, str] | None = None) -> ClientSettings:
    """The client settings of the broker ``SQUALL_BROKER`` names (default ``kis``)."""
    env = os.environ if environ is None else environ
    name = env.get(BROKER_VARIABLE, "").strip().lower() or "kis"
    settings = CLIENT_SETTINGS.get(name)
    if settings is None:
        raise SettingsError(
            f"{BROKER_VARIABLE}={name!r} names no broker Squall speaks; set it to one of "
            f"{', '.join(CLIENT_SETTINGS)} (or leave it unset for kis)"
        )
    return settings.from_env(environ=environ)


def broker_client(
    settings: ClientSettings,
    *,
    rng: random.Random | None = None,
    wall: WallClock | None = None,
) -> tuple[BrokerClient, Callable[[], Awaitable[str]], Dialect]:
    """The broker's client, what its realtime server logs in with (KIS: a new approval key;
    Kiwoom: the access token) and its realtime dialect. ``wall`` maps loop time to KST wall
    time (default: the machine's clock); Kiwoom's token expiry is a wall time."""
    if isinstance(settings, KiwoomSettings):
        if wall is None:
            kiwoom = KiwoomClient(settings, rng=rng)
        else:
            kiwoom = KiwoomClient(settings, rng=rng, wall=lambda: wall(loop_time()))
        return kiwoom, kiwoom.tokens.get, KIWOOM
    kis = KisClient(settings, rng=rng)
    return kis, kis.approval_key, KIS


@dataclass(frozen=True)
class SystemSettings:
    """Everything the running system is configured with."""

    broker: ClientSettings
    service: ServiceSettings
    feed: FeedSettings
    gateway: GatewaySettings
    storage: StorageSettings | None = None  # None: no database
    trading: TradingSettings | None = None  # None: no trading desk
    alerts: AlertSettings = dataclasses.field(default_factory=AlertSettings)
    rates: RateFeedSettings | None = None  # None: no rate feed

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemSettings:
        """Read every prefix; ``SettingsError`` names the variables at fault."""
        env = os.environ if environ is None else environ
        database = database_url_variable(env) is not None
        return cls(
            broker=broker_settings(environ),
            feed=FeedSettings.from_env(environ=environ),
            storage=StorageSettings.from_env(environ=environ) if database else None,
            **policy_from_env(environ),
            alerts=AlertSettings.from_env(environ=environ),
            rates=(
                RateFeedSettings.from_env(environ=environ)
                if env.get(RATES_URL_VARIABLE, "").strip()
                else None
            ),
        )


class Policy(TypedDict):
    service: ServiceSettings
    gateway: GatewaySettings
    trading: TradingSettings | None


def policy_from_env(environ: Mapping[str, str] | None = None) -> Policy:
    """The system's policy, not where it connects: the service's, the gateway's and, with
    ``SQUALL_TRADING_MODE`` set, the trading desk's settings (``SettingsError`` names the
    variable at fault). ``squall up`` takes these over the mocks it wires the rest to."""
    env = os.environ if environ is None else environ
    trading = env.get(TRADING_MODE_VARIABLE, "").strip()
    return Policy(
        service=ServiceSettings.from_env(environ=environ),
        gateway=GatewaySettings.from_env(environ=environ),
        trading=TradingSettings.from_env(environ=environ) if trading else None,
    )


@dataclass(frozen=True)
class System:
    """The running system's parts. ``app`` is the gateway: ``/ws``, ``/health``,
    ``/metrics`` and the dashboard; serve it with ``system.gateway.serve``."""

    service: TradingService
    feed: FeedClient
    app: FastAPI
    storage: Storage | None = None
    desk: Desk | None = None
    alerts: AlertNotifier | None = None  # with the desk: what it alerts goes through it
    rates: RateFeedClient | None = None  # with SQUALL_RATES_URL: the FX venue's quotes


@contextlib.asynccontextmanager
async def running_system(
    settings: SystemSettings,
    *,
    rng: random.Random | None = None,
    wall: WallClock | None = None,
    database_wait: DatabaseWait | None = None,
) -> AsyncIterator[System]:
    """The storage (when configured), the service, the feed client and the gateway app;
    closed in reverse order on exit, so writes still queued are flushed last.

    The database must be reachable at start-up (``PoolInitializationError`` otherwise, with
    the URL's password masked); after that, an outage only queues writes.

    ``rng`` seeds the client's retry jitter, the feed's reconnect jitter and the storage's
    reconnect jitter (a scenario passes a seeded one so a run repeats); by default they are
    unseeded. ``wall`` maps loop time to the KST wall time (the closing bet reads it); by
    default the machine's clock, so a scenario on virtual time passes the mocks' own.
    ``database_wait`` is the storage's (``Storage``): none but on the harness's virtual time.
    """
    rng = rng or random.Random()
    # Streams drawn from one seed, so the feed's reconnects don't shift the REST client's
    # retry jitter or the storage's (or the other way round) when one of them changes.
    client_rng = random.Random(rng.random())
    feed_rng = random.Random(rng.random())
    storage_rng = random.Random(rng.random())
    alert_rng = random.Random(rng.random())
    rates_rng = random.Random(rng.random())
    async with contextlib.AsyncExitStack() as stack:
        storage = None
        if settings.storage is not None:
            storage = await stack.enter_async_context(
                Storage(settings.storage, rng=storage_rng, database_wait=database_wait)
            )
        # Made after the storage started: a database refused at start-up leaks no client.
        client, credential, dialect = broker_client(settings.broker, rng=client_rng, wall=wall)
        service = await stack.enter_async_context(
            TradingService(client, settings.service, recorder=storage)
        )
        feed = FeedClient(
            settings.feed,
            credential=credential,
            resync=quote_resync(service.quote),
            dialect=dialect,
            rng=feed_rng,
        )
        await stack.enter_async_context(feed)
        desk = notifier = None
        if settings.trading is not None:
            notifier = await stack.enter_async_context(
                AlertNotifier(settings.alerts, rng=alert_rng)
            )
            desk = await stack.enter_async_context(
                Desk(
                    detectors=settings.trading.build_detectors(wall or machine_wall),
                    gate=settings.trading.gate(),
                    executor=service,
                    fills=BrokerFills(client),
                    settings=settings.trading,
                    available_cash=broker_cash(client),
                    recorder=storage,
                    notifier=notifier,
                    wall=wall or machine_wall,
                )
            )
            client.order_permit = desk.permit
        app = create_gateway(
            service, feed, settings.gateway, storage=storage, kill_switch=desk, alerts=notifier
        )
        if desk is not None and settings.trading is not None:
            signals = Gateway.of(app).signals
            desk.add_signal_listener(lambda signal: signals.publish(signal, kind="signal"))
            feed.add_listener(desk.on_price)
            for code in settings.trading.codes:
                await feed.subscribe(code)
            desk.add_opportunity_listener(
                lambda opportunity: signals.publish(opportunity, kind="opportunity")
            )
        rates = None
        if settings.rates is not None:
            rates = RateFeedClient(settings.rates, rng=rates_rng)
            if desk is not None:
                rates.add_listener(desk.on_rate)
            await stack.enter_async_context(rates)
        yield System(service, feed, app, storage, desk, notifier, rates=rates)


def machine_wall(at: float) -> datetime:
    """The KST wall time of loop time ``at``, by this machine's clock."""
    return kst_now() + timedelta(seconds=at - loop_time())


def broker_cash(client: BrokerClient) -> Callable[[], Awaitable[int]]:
    """The account's cash, asked of the broker when the desk sizes a trade."""

    async def cash() -> int:
        return (await client.balance()).cash

    return cash
