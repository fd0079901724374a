"""Starting the parts a scenario needs, on free loopback ports, and always tearing them down.

The parts are the mock KIS broker and the system's trading service, and when a scenario
``needs`` them, the mock realtime feed, the system's feed client and its gateway (served, so
dashboard clients can connect), and PostgreSQL behind the TCP fault proxy (``database``:
the system stores what it does there; see ``harness.database``). When the desk runs the
``triangular`` detector, the system's rate feed client follows the FX venue the mock feed
serves (``World.rates_url``). With ``alerts``, a webhook receiver (``mocks.webhook``)
stands for the operator's chat or pager, and the system's alert notifier posts to it.
Everything runs inside the caller's event loop, so a scenario on virtual time keeps every
participant on the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from harness.clock import realtime_guard
from harness.database import Database, serve_database
from harness.leaks import Secrets
from harness.redis_server import RedisServer, redis_server
from harness.scenario.model import Scenario
from harness.stored import RecordLog
from mocks.broker import BrokerConfig, create_app
from mocks.broker.config import Api, Profile
from mocks.broker.tokens import TokenBook
from mocks.control_client import BrokerControl, FeedControl
from mocks.feed import FeedConfig, opening_bell
from mocks.server import serve
from mocks.webhook import ServedWebhook, WebhookReceiver, serve_webhook
from mocks.world import World, serve_world
from system.app import CLIENT_SETTINGS, SystemSettings, broker_client, running_system
from system.broker import BrokerClient
from system.gateway import Gateway, GatewayServer, GatewaySettings
from system.gateway import serve as serve_gateway
from system.gateway.metrics import gateway_values
from system.health import Health
from system.market import FeedClient, FeedSettings, RateFeedClient, RateFeedSettings
from system.service import ServiceSettings, TradingService
from system.storage import Storage, StorageSettings
from system.trading.alerts import AlertNotifier, AlertSettings
from system.trading.desk import Desk
from system.trading.settings import TradingSettings

# Well-formed credentials for the mock: it checks their lengths (36 and 180), nothing more.
APPKEY = "PSsquall" + "0" * 28
APPSECRET = "squall" + "s" * 174
ACCOUNT = "50012345-01"
# The stack owns where the system connects and as whom; a scenario may tune the rest.
_STACK_OWNED = {
    "base_url",
    "appkey",
    "appsecret",
    "secretkey",
    "account",
    "profile",
    "url",
    "webhook_url",
}
# Only for checking a scenario's storage overrides before anything runs.
_PLACEHOLDER_DSN = "postgresql://squall@127.0.0.1:1/squall"
# Enough money that a long order flow is never refused for cash: the order workload's
# unique quantities grow with every order.
INITIAL_CASH = 100_000_000_000


class StackError(Exception):
    """A part could not be started or configured; the message says which and why."""


@dataclass
class Stack:
    """The parts of one scenario's run. The realtime ones are there when ``needs`` asks:
    the mock feed and the system's feed client for ``feed``, the served gateway for
    ``gateway``."""

    broker_url: str
    broker: BrokerControl
    service: TradingService
    # The loop time the mocks' clocks were set to zero: the scenario's second 0. The stack
    # resets them before the system starts, as the system then holds approval keys and
    # tokens a reset would void.
    origin: float
    world: World | None = None
    feed: FeedClient | None = None
    gateway: Gateway | None = None
    gateway_server: GatewayServer | None = None
    database: Database | None = None
    storage: Storage | None = None
    # What the storage accepted, noted at the service's recording seam.
    records: RecordLog | None = None
    desk: Desk | None = None
    # With ``alerts`` in needs: the webhook receiver the system's alert notifier posts to.
    webhook: WebhookReceiver | None = None
    alerts: AlertNotifier | None = None
    # With a rate detector in the desk's detectors: the FX venue's rate feed client.
    rates: RateFeedClient | None = None
    # With ``redis`` in needs: the server the gateway shares signals through.
    redis: RedisServer | None = None
    # The mock broker's tokens: what it issued is among the run's secrets.
    broker_tokens: TokenBook | None = None

    def secrets(self) -> Secrets:
        """Every secret of this run, as far as now: what no log, journal or report of it may
        hold (harness.leaks)."""
        found = Secrets()
        found.add("the appsecret", [APPSECRET])
        if self.broker_tokens is not None:
            tokens, approval_keys = self.broker_tokens.secrets_issued()
            found.add("an access token", tokens)
            found.add("an approval key", approval_keys)
        if self.gateway is not None and self.gateway.settings.operator_token is not None:
            found.add(
                "the operator token", [self.gateway.settings.operator_token.get_secret_value()]
            )
        if self.database is not None:
            found.add("the database password", [urlsplit(self.database.direct_url).password])
        return found

    @property
    def feed_control(self) -> FeedControl | None:
        return None if self.world is None else self.world.feed_control

    def metrics(self) -> dict[str, float]:
        """The service's metrics, the feed client's, the gateway's and the storage's."""
        values = self.service.metrics()
        if self.feed is not None:
            values.update(self.feed.metrics())
        if self.gateway is not None:
            values.update(gateway_values(self.gateway))
        if self.storage is not None:
            values.update(self.storage.metrics())
        if self.desk is not None:
            values.update(self.desk.metrics())
        if self.alerts is not None:
            values.update(self.alerts.metrics())
        if self.rates is not None:
            values.update(self.rates.metrics())
        return values

    def health(self) -> Health:
        """The system's verdict: the service's, or the worse of it and the storage's (as
        ``/health`` judges; the feed and gateway parts only ever make that page degraded)."""
        health = self.service.health()
        return health if self.storage is None else Health.worst(health, self.storage.health())

    def market_at(self, code: str, step: int) -> tuple[int, int]:
        """The simulated market's (price, accumulated volume) of ``code`` at ``step``."""
        if self.world is None:
            raise StackError("the market is only reachable with the feed in 'needs'")
        tick = self.world.feed_app.state.feed.market.tick(code, step)
        return int(tick.price), int(tick.volume)


def system_settings_problems(scenario: Scenario) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with the scenario's ``system:`` overrides, as (location, message)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    overrides = scenario.system
    owned = (("client", overrides.client), ("feed", overrides.feed), ("alerts", overrides.alerts))
    for section, given in owned:
        for key in sorted(_STACK_OWNED & set(given)):
            problems.append(
                (("system", section, key), f"{key!r} is set by the stack, not by scenarios")
            )
    for key in sorted({"redis_url", "fanout_channel"} & set(overrides.gateway)):
        problems.append(
            (
                ("system", "gateway", key),
                f"{key!r} is set by the stack (add redis to 'needs' for a Redis of its own), "
                "not by scenarios",
            )
        )
    pool = overrides.storage.get("pool", {})
    if isinstance(pool, dict) and "url" in pool:
        problems.append(
            (("system", "storage", "pool", "url"), "'url' is set by the stack, not by scenarios")
        )
    feed = {k: v for k, v in overrides.feed.items() if k not in _STACK_OWNED}
    # The client overrides must suit the client of every broker the scenario runs against.
    checks: list[tuple[str, type[Any], Mapping[str, Any]]] = [
        (
            "client",
            CLIENT_SETTINGS[api],
            _client_values("http://127.0.0.1:1", scenario.broker.profile, overrides.client, api),
        )
        for api in scenario.brokers
    ]
    checks += [
        ("service", ServiceSettings, overrides.service),
        ("feed", FeedSettings, {**feed, "url": "ws://127.0.0.1:1/tryitout"}),
        ("gateway", GatewaySettings, overrides.gateway),
        ("storage", StorageSettings, _storage_values(_PLACEHOLDER_DSN, overrides.storage)),
        ("trading", TradingSettings, overrides.trading),
        ("alerts", AlertSettings, _alert_values(None, overrides.alerts)),
    ]
    for section, model, values in checks:
        try:
            model.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                loc = tuple(str(part) for part in error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    valid = sorted(set(model.model_fields) - _STACK_OWNED)
                    message = f"unknown setting; valid ones: {', '.join(valid)}"
                problems.append((("system", section, *loc), message))
    return problems


def _broker_client(
    scenario: Scenario,
    config: BrokerConfig,
    base_url: str,
    rng: random.Random,
    bell: datetime,
    origin: float,
) -> BrokerClient:
    """The system's client for the broker the run plays: KIS's, or Kiwoom's reading its
    token's expires_dt on the mock's wall clock (the KRX open at the run's time zero)."""
    values = _client_values(base_url, scenario.broker.profile, scenario.system.client, config.api)
    settings = CLIENT_SETTINGS[config.api].model_validate(values)
    client, _, _ = broker_client(
        settings, rng=rng, wall=lambda at: bell + timedelta(seconds=at - origin)
    )
    return client


def _client_values(
    base_url: str, profile: Profile, overrides: Mapping[str, Any] | None, api: Api = "kis"
) -> dict[str, Any]:
    """The broker client's settings: the scenario's policy overrides, then what the stack
    owns (where and as whom the client connects: KIS's app secret and account, Kiwoom's
    secret key), which no override can change."""
    identity = (
        {"secretkey": APPSECRET}
        if api == "kiwoom"
        else {"appsecret": APPSECRET, "account": ACCOUNT}
    )
    return {
        **{k: v for k, v in (overrides or {}).items() if k not in _STACK_OWNED},
        "base_url": base_url,
        "appkey": APPKEY,
        "profile": profile,
        **identity,
    }


def _storage_values(dsn: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The storage settings: the scenario's overrides, with the stack's database URL."""
    pool = overrides.get("pool", {})
    pool = {**pool, "url": dsn} if isinstance(pool, dict) else pool
    return {**overrides, "pool": pool}


def _alert_values(webhook_url: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The alert notifier's settings: the scenario's overrides, with the stack's webhook."""
    return {
        **{k: v for k, v in overrides.items() if k not in _STACK_OWNED},
        "webhook_url": webhook_url,
    }


def storage_settings(
    database: Database | None, overrides: Mapping[str, Any]
) -> StorageSettings | None:
    """The system's storage settings for ``database`` (None: the scenario has none)."""
    if database is None:
        return None
    return StorageSettings.model_validate(_storage_values(database.proxied_url, overrides))


def system_settings(
    world: World,
    *,
    profile: Profile = "real",
    client: Mapping[str, Any] | None = None,
    service: Mapping[str, Any] | None = None,
    feed: Mapping[str, Any] | None = None,
    gateway: Mapping[str, Any] | None = None,
    storage: StorageSettings | None = None,
) -> SystemSettings:
    """The whole system's settings pointed at ``world`` (the mock broker and feed), as the
    stack's app: each mapping overrides that part's policy fields (never where it connects
    or as whom). Raises pydantic's ``ValidationError`` for a bad override."""
    values = _client_values(world.broker.url, profile, client, world.api)
    return SystemSettings(
        broker=CLIENT_SETTINGS[world.api].model_validate(values),
        service=ServiceSettings.model_validate(dict(service or {})),
        feed=FeedSettings.model_validate({**dict(feed or {}), "url": world.feed_url}),
        gateway=GatewaySettings.model_validate(dict(gateway or {})),
        storage=storage,
    )


@contextlib.asynccontextmanager
async def start(scenario: Scenario, seed: int, api: Api = "kis") -> AsyncIterator[Stack]:
    """The parts ``scenario`` needs, the broker playing ``api``; torn down on exit, whatever
    happened."""
    problems = system_settings_problems(scenario)
    if problems:
        raise StackError("; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in problems))
    config = BrokerConfig(
        api=api, seed=seed, initial_cash=INITIAL_CASH, **scenario.broker.model_dump()
    )
    async with contextlib.AsyncExitStack() as parts:
        database = None
        if "database" in scenario.needs:
            database = await parts.enter_async_context(serve_database(seed))
        webhook = None
        if "alerts" in scenario.needs:
            webhook = await parts.enter_async_context(serve_webhook())
        redis = None
        if "redis" in scenario.needs:
            redis = await parts.enter_async_context(_serve_redis())
        if "feed" in scenario.needs:
            stack = await parts.enter_async_context(
                _realtime(scenario, seed, config, database, webhook, redis)
            )
        else:
            stack = await parts.enter_async_context(_broker_only(scenario, seed, config, database))
        yield stack


@contextlib.asynccontextmanager
async def _serve_redis() -> AsyncIterator[RedisServer]:
    """A throwaway ``redis-server`` (its start and stop block for milliseconds, so they run
    beside the loop, not in it)."""
    server = redis_server()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, server.start)
        yield server
    finally:
        await loop.run_in_executor(None, server.close)


def _gateway_values(
    gateway: Mapping[str, Any], redis: RedisServer | None, seed: int
) -> Mapping[str, Any]:
    """The scenario's gateway overrides, plus where Redis is when the scenario needs it (a
    channel of the run's own, so runs sharing a machine never hear each other)."""
    if redis is None:
        return gateway
    return {**gateway, "redis_url": redis.url, "fanout_channel": f"squall:scenario:{seed}"}


async def _time_zero(
    *mocks: BrokerControl | FeedControl,
    database: Database | None,
    webhook: ServedWebhook | None = None,
) -> float:
    """Reset the mocks (and the database's proxy, and the webhook receiver) to the scenario's
    second 0 and return it in loop time: ``Stack.origin``, taken before the system starts."""
    for control in mocks:
        await control.reset()
    if database is not None:
        await database.proxy.reset()
    if webhook is not None:
        webhook.receiver.reset()
    return asyncio.get_running_loop().time()


def _observe_storage(stack: Stack, storage: Storage | None) -> None:
    """Put a ``RecordLog`` between the service and its storage, for the stored invariants."""
    if storage is None:
        return
    stack.storage = storage
    stack.records = RecordLog(storage)
    stack.service.recorder = stack.records
    if stack.desk is not None:
        stack.desk.recorder = stack.records


@contextlib.asynccontextmanager
async def _broker_only(
    scenario: Scenario, seed: int, config: BrokerConfig, database: Database | None
) -> AsyncIterator[Stack]:
    """The broker and the trading service (and its storage, when the database is needed).

    Broker-only scenarios serve no feed at all: an idle server still wakes every second,
    and on virtual time every wake-up costs a clock jump. The broker's wall clock starts at
    the KRX open, whatever the hour."""
    bell = opening_bell()
    app = create_app(config, wall_origin=bell)
    async with (
        serve(app) as server,
        BrokerControl(server.url) as control,
        contextlib.AsyncExitStack() as parts,
    ):
        origin = await _time_zero(control, database=database)
        rng = random.Random(f"squall-system:{seed}")
        storage = None
        stored = storage_settings(database, scenario.system.storage)
        if stored is not None:
            storage = await parts.enter_async_context(
                Storage(stored, rng=random.Random(seed), database_wait=realtime_guard())
            )
        # A seeded RNG makes the client's retry jitter part of the scenario's determinism.
        client = _broker_client(scenario, config, server.url, rng, bell, origin)
        service = TradingService(
            client, ServiceSettings.model_validate(scenario.system.service), recorder=storage
        )
        async with service:
            stack = Stack(
                server.url,
                control,
                service,
                origin,
                database=database,
                broker_tokens=app.state.broker.tokens,
            )
            _observe_storage(stack, storage)
            yield stack


@contextlib.asynccontextmanager
async def _realtime(
    scenario: Scenario,
    seed: int,
    config: BrokerConfig,
    database: Database | None,
    webhook: ServedWebhook | None = None,
    redis: RedisServer | None = None,
) -> AsyncIterator[Stack]:
    """The broker, the feed and the whole system; the gateway served when needed; the alert
    notifier posting to ``webhook`` when there is one; the gateway sharing signals through
    ``redis`` when there is one."""
    feed_config = FeedConfig(seed=seed, **scenario.feed.model_dump())
    overrides = scenario.system
    wall_origin = opening_bell()  # 09:00 KST, as above
    async with serve_world(config, feed_config, wall_origin=wall_origin) as world:
        origin = await _time_zero(
            world.broker_control, world.feed_control, database=database, webhook=webhook
        )

        def wall(at: float) -> datetime:
            # The mocks' wall time: the system's closing bet reads the market's clock.
            return wall_origin + timedelta(seconds=at - origin)

        settings = system_settings(
            world,
            profile=scenario.broker.profile,
            client=overrides.client,
            service=overrides.service,
            feed=overrides.feed,
            gateway=_gateway_values(overrides.gateway, redis, seed),
            storage=storage_settings(database, overrides.storage),
        )
        if "trading" in scenario.needs:
            trading = TradingSettings.model_validate(overrides.trading)
            settings = dataclasses.replace(settings, trading=trading)
            if trading.watches_rates:
                # The desk's triangular detector prices the FX venue's pairs, on the feed.
                rates = RateFeedSettings(url=world.rates_url)
                settings = dataclasses.replace(settings, rates=rates)
        if webhook is not None:
            alerts = _alert_values(webhook.hook_url, overrides.alerts)
            settings = dataclasses.replace(settings, alerts=AlertSettings.model_validate(alerts))
        rng = random.Random(f"squall-system:{seed}")
        async with running_system(
            settings, rng=rng, wall=wall, database_wait=realtime_guard()
        ) as system:
            stack = Stack(
                world.broker.url,
                world.broker_control,
                system.service,
                origin,
                world=world,
                feed=system.feed,
                gateway=Gateway.of(system.app),
                database=database,
                desk=system.desk,
                webhook=None if webhook is None else webhook.receiver,
                alerts=system.alerts,
                rates=system.rates,
                redis=redis,
                broker_tokens=world.broker_app.state.broker.tokens,
            )
            _observe_storage(stack, system.storage)
            if "gateway" not in scenario.needs:
                yield stack
                return
            async with serve_gateway(system.app) as server:
                stack.gateway_server = server
                yield stack
