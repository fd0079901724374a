"""Storage against a real PostgreSQL on virtual time (looptime), as scenarios run it.

PostgreSQL answers from outside the event loop. Without the realtime guard, looptime jumps
to the next timer while the answer is on its way, so even opening the pool times out at
once; with it (``Storage(database_wait=realtime_guard())``, as the stack passes it), the
storage works, and a timeout that is genuine (a slow network, a server that says nothing)
still fires at its moment on the loop's clock. Each test runs its own loop with
``harness.clock.run``, and starts the fault proxy inside it (a server started in a fixture
would run on another loop); the PostgreSQL server and database come from the fixtures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from harness.clock import realtime_guard, run
from harness.postgres import PostgresCluster
from mocks.faults import ProxyFaultRule
from mocks.proxy import ProxyConfig, RunningProxy, serve_proxy
from system.storage import (
    PoolConfig,
    PoolInitializationError,
    QueryTimeoutError,
    Storage,
    StorageSettings,
    StoredOrder,
)
from tests.integration.conftest import FAST_POOL

T = TypeVar("T")


def settings(url: str, **pool: Any) -> StorageSettings:
    config = PoolConfig.model_validate({"url": url, **FAST_POOL, **pool})
    return StorageSettings(pool=config, flush_timeout_s=5.0)


def on_virtual_time(
    postgres: PostgresCluster,
    database: str,
    test: Callable[[RunningProxy, str], Awaitable[T]],
) -> T:
    """``test(proxy, url through the proxy)`` in a fresh loop on virtual time."""

    async def main() -> T:
        config = ProxyConfig(upstream_host=postgres.host, upstream_port=postgres.port, seed=3)
        async with serve_proxy(config) as proxy:
            name = urlsplit(database).path.lstrip("/")
            return await test(proxy, postgres.url_for(name, address=proxy.address))

    return run(main(), "virtual")


def fault(proxy: RunningProxy, **fields: Any) -> None:
    control = proxy.control
    control.faults.add(ProxyFaultRule.model_validate(fields), control.clock.now())


def order(n: int) -> StoredOrder:
    at = asyncio.get_running_loop().time()
    return StoredOrder(f"c-{n}", "005930", "buy", 1, 70_000, "pending", None, at)


def test_without_the_guard_opening_the_pool_times_out_at_once(
    postgres: PostgresCluster, database: str
) -> None:
    async def test(proxy: RunningProxy, url: str) -> tuple[str, float, float]:
        loop = asyncio.get_running_loop()
        started, wall = loop.time(), time.perf_counter()
        with pytest.raises(PoolInitializationError) as refused:
            await Storage(settings(url, connect_timeout_s=2.0)).start()
        return str(refused.value), loop.time() - started, time.perf_counter() - wall

    message, simulated, wall = on_virtual_time(postgres, database, test)
    # The spurious timeout: a server that answers in milliseconds, given up on after the
    # whole connect timeout of loop time, in a fraction of it of real time.
    assert "timed out" in message
    assert simulated >= 2.0
    assert wall < 1.0


def test_with_the_guard_it_works_and_a_slow_network_times_out_on_time(
    postgres: PostgresCluster, database: str
) -> None:
    async def test(proxy: RunningProxy, url: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        seen: dict[str, Any] = {}
        storage = Storage(settings(url, query_timeout_s=1.0), database_wait=realtime_guard())
        async with storage:
            for n in range(20):
                storage.record(order(n))
            await storage.buffer.flush(5.0)
            seen["stored"] = len(await storage.recent_orders(50))
            # Every answer now takes 3 s on the network (the proxy's timers, on this loop):
            # the 1 s query timeout is genuine and must fire at its moment. Then the pool
            # gives the connection back, whose reset waits out its own 1 s limit.
            fault(
                proxy, what={"kind": "latency", "seconds": 3.0}, where={"direction": "downstream"}
            )
            started, wall = loop.time(), time.perf_counter()
            with pytest.raises(QueryTimeoutError):
                await storage.recent_orders(50)
            seen["timed out after"] = loop.time() - started
            seen["real seconds"] = time.perf_counter() - wall
            proxy.control.faults.clear()
            await asyncio.sleep(5)  # the pool probes, finds the server, and is healthy
            seen["after"] = len(await storage.recent_orders(50))
            # With no wait on the server in flight, virtual time jumps again.
            started, wall = loop.time(), time.perf_counter()
            await asyncio.sleep(600)
            seen["idle real seconds"] = time.perf_counter() - wall
        return seen

    seen = on_virtual_time(postgres, database, test)
    assert seen["stored"] == 20
    assert seen["timed out after"] == pytest.approx(2.0, abs=0.05)  # as on the wall clock
    assert seen["real seconds"] >= 1.6  # waited for, not jumped over
    assert seen["after"] == 20
    assert seen["idle real seconds"] < 1.0


def test_with_the_guard_a_server_that_says_nothing_times_out_at_the_connect_timeout(
    postgres: PostgresCluster, database: str
) -> None:
    async def test(proxy: RunningProxy, url: str) -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        fault(proxy, what={"kind": "blackhole"})  # connections open; nothing comes back
        started = loop.time()
        storage = Storage(settings(url, connect_timeout_s=0.5), database_wait=realtime_guard())
        with pytest.raises(PoolInitializationError) as refused:
            await storage.start()
        return str(refused.value), loop.time() - started

    message, simulated = on_virtual_time(postgres, database, test)
    assert "timed out" in message
    assert simulated == pytest.approx(0.5, abs=0.05)
