"""Starting the parts a scenario needs, on free loopback ports, and always tearing them down.

Today the parts are the mock KIS broker and the system's trading service; the feed, the
fault proxy and the databases join in later issues. Everything runs inside the caller's
event loop, so a scenario on virtual time keeps every participant on the same clock.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from pydantic import ValidationError

from harness.scenario.model import Scenario
from mocks.broker import BrokerConfig, create_app
from mocks.broker.config import Profile
from mocks.clock import KST
from mocks.control_client import BrokerControl
from mocks.server import serve
from mocks.world import World
from system.app import SystemSettings
from system.broker import KisClient, KisSettings
from system.gateway import GatewaySettings
from system.market import FeedSettings
from system.service import ServiceSettings, TradingService

# Well-formed credentials for the mock: it checks their lengths (36 and 180), nothing more.
APPKEY = "PSsquall" + "0" * 28
APPSECRET = "squall" + "s" * 174
ACCOUNT = "50012345-01"
# The stack owns where the system connects and as whom; a scenario may tune the rest.
_STACK_OWNED = {"base_url", "appkey", "appsecret", "account", "profile"}
# Enough money that a long order flow is never refused for cash: the order workload's
# unique quantities grow with every order.
INITIAL_CASH = 100_000_000_000


class StackError(Exception):
    """A part could not be started or configured; the message says which and why."""


@dataclass
class Stack:
    broker_url: str
    broker: BrokerControl
    service: TradingService


def system_settings_problems(scenario: Scenario) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with the scenario's ``system:`` overrides, as (location, message)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    for key in sorted(_STACK_OWNED & set(scenario.system.client)):
        problems.append(
            (("system", "client", key), f"{key!r} is set by the stack, not by scenarios")
        )
    client = {k: v for k, v in scenario.system.client.items() if k not in _STACK_OWNED}
    checks: list[tuple[str, type[Any], Mapping[str, Any]]] = [
        ("client", KisSettings, _client_values("http://127.0.0.1:1", scenario, client)),
        ("service", ServiceSettings, scenario.system.service),
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


def _client_values(
    base_url: str, scenario: Scenario, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "appkey": APPKEY,
        "appsecret": APPSECRET,
        "account": ACCOUNT,
        "profile": scenario.broker.profile,
        **overrides,
    }


def system_settings(
    world: World,
    *,
    profile: Profile = "real",
    client: Mapping[str, Any] | None = None,
    service: Mapping[str, Any] | None = None,
    feed: Mapping[str, Any] | None = None,
    gateway: Mapping[str, Any] | None = None,
) -> SystemSettings:
    """The whole system's settings pointed at ``world`` (the mock broker and feed), as the
    stack's app: each mapping overrides that part's policy fields (never where it connects
    or as whom). Raises pydantic's ``ValidationError`` for a bad override."""
    client_values = {
        **dict(client or {}),
        "base_url": world.broker.url,
        "appkey": APPKEY,
        "appsecret": APPSECRET,
        "account": ACCOUNT,
        "profile": profile,
    }
    return SystemSettings(
        kis=KisSettings.model_validate(client_values),
        service=ServiceSettings.model_validate(dict(service or {})),
        feed=FeedSettings.model_validate({**dict(feed or {}), "url": world.feed_url}),
        gateway=GatewaySettings.model_validate(dict(gateway or {})),
    )


def session_open_today() -> datetime:
    """09:00 KST today: the broker's wall clock starts at the KRX open, whatever the hour."""
    return datetime.combine(datetime.now(KST).date(), time(9, 0), tzinfo=KST)


@contextlib.asynccontextmanager
async def start(scenario: Scenario, seed: int) -> AsyncIterator[Stack]:
    """The broker and the system for ``scenario``; torn down on exit, whatever happened."""
    problems = system_settings_problems(scenario)
    if problems:
        raise StackError("; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in problems))
    config = BrokerConfig(seed=seed, initial_cash=INITIAL_CASH, **scenario.broker.model_dump())
    app = create_app(config, wall_origin=session_open_today())
    async with serve(app) as server, BrokerControl(server.url) as control:
        overrides = {k: v for k, v in scenario.system.client.items() if k not in _STACK_OWNED}
        settings = KisSettings.model_validate(_client_values(server.url, scenario, overrides))
        # A seeded RNG makes the client's retry jitter part of the scenario's determinism.
        client = KisClient(settings, rng=random.Random(f"squall-system:{seed}"))
        service = TradingService(client, ServiceSettings.model_validate(scenario.system.service))
        async with service:
            yield Stack(server.url, control, service)
