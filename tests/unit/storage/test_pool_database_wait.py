"""``PoolManager(database_wait=...)``: every wait on the server is held in the hook, and
waits inside the loop are not.

asyncpg is replaced by a fake whose every awaitable notes whether the hook was held when
it was awaited: what a virtual clock needs (see ``harness.clock.RealtimeGuard``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from system.storage import PoolConfig, PoolManager, Storage, StorageSettings
from system.storage import pool as pool_module


class CountingWait:
    """A reentrant hook that counts its holders."""

    def __init__(self) -> None:
        self.depth = 0
        self.entries = 0

    def __enter__(self) -> None:
        self.depth += 1
        self.entries += 1

    def __exit__(self, *exc_info: object) -> None:
        self.depth -= 1


class Server:
    """What the fake driver saw: each wait on the server, and whether the hook was held."""

    def __init__(self, wait: CountingWait) -> None:
        self.wait = wait
        self.waits: list[tuple[str, bool]] = []

    async def answer(self, what: str, value: Any = None) -> Any:
        self.waits.append((what, self.wait.depth > 0))
        await asyncio.sleep(0)  # the server's answer comes in a later loop iteration
        return value

    def outside(self) -> list[str]:
        return [what for what, held in self.waits if not held]


class FakeConnection:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.released_at: float | None = None
        self.closed = False

    async def fetchval(self, query: str, *args: object, **kwargs: object) -> Any:
        return await self.server.answer(f"fetchval {query}", 1)

    async def fetchrow(self, query: str, *args: object, **kwargs: object) -> Any:
        return await self.server.answer(f"fetchrow {query}", None)

    async def fetch(self, query: str, *args: object, **kwargs: object) -> list[Any]:
        return list(await self.server.answer(f"fetch {query}", []))

    async def execute(self, query: str, *args: object, **kwargs: object) -> str:
        return str(await self.server.answer(f"execute {query}", "OK"))

    async def executemany(self, query: str, args: object, **kwargs: object) -> None:
        await self.server.answer(f"executemany {query}")

    def transaction(self, **kwargs: object) -> FakeTransaction:
        return FakeTransaction(self.server)

    def get_reset_query(self) -> str:
        return "RESET ALL"

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        self.closed = True


class FakeTransaction:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def start(self) -> None:
        await self.server.answer("BEGIN")

    async def commit(self) -> None:
        await self.server.answer("COMMIT")

    async def rollback(self) -> None:
        await self.server.answer("ROLLBACK")


class FakePool:
    """asyncpg's pool, as much of it as ``PoolManager`` uses: each acquire connects, through
    the manager's ``connect`` hook, and each release resets, through its ``reset`` hook."""

    def __init__(self, server: Server, connect: Any, reset: Any) -> None:
        self.server = server
        self.connect = connect
        self.reset = reset
        self.size = 0

    def acquire(self) -> _Acquiring:
        return _Acquiring(self)

    async def _acquire(self) -> FakeConnection:
        conn: FakeConnection = await self.connect()
        self.size += 1
        return conn

    async def release(self, conn: FakeConnection, **kwargs: object) -> None:
        await self.reset(conn)  # (asyncpg's takes a timeout=, which the pool passes)

    async def close(self) -> None:
        await self.server.answer("close")

    def terminate(self) -> None:
        pass

    def get_size(self) -> int:
        return self.size

    def get_idle_size(self) -> int:
        return 0


class _Acquiring:
    """``pool.acquire()``: awaited, or used with ``async with``."""

    def __init__(self, pool: FakePool) -> None:
        self.pool = pool
        self.conn: FakeConnection | None = None

    def __await__(self) -> Any:
        return self.pool._acquire().__await__()

    async def __aenter__(self) -> FakeConnection:
        self.conn = await self.pool._acquire()
        return self.conn

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.conn is not None
        await self.pool.release(self.conn)


@pytest.fixture
def wait() -> CountingWait:
    return CountingWait()


@pytest.fixture
def server(wait: CountingWait, monkeypatch: pytest.MonkeyPatch) -> Server:
    server = Server(wait)

    async def connect(*args: object, **kwargs: object) -> FakeConnection:
        await server.answer("connect")
        return FakeConnection(server)

    async def create_pool(
        dsn: str, *, connect: Any, reset: Any, min_size: int, **kwargs: object
    ) -> FakePool:
        pool = FakePool(server, connect, reset)
        for _ in range(min_size):
            await pool.release(await pool._acquire())
        return pool

    monkeypatch.setattr(pool_module.asyncpg, "connect", connect)
    monkeypatch.setattr(pool_module.asyncpg, "create_pool", create_pool)
    return server


def config(**fields: Any) -> PoolConfig:
    return PoolConfig.model_validate(
        {"url": "postgresql://squall:pw@db.test:5432/trading", **fields}
    )


@pytest.mark.looptime
async def test_every_wait_on_the_server_is_held_in_the_hook(
    wait: CountingWait, server: Server
) -> None:
    manager = PoolManager(config(min_size=1, probe_interval_s=1.0), database_wait=wait)
    async with manager:
        await manager.fetch("select 1")
        await manager.execute("select 2")
        await manager.fetchrow("select 3")
        await manager.fetchval("select 4")
        await manager.executemany("insert 5", [(1,), (2,)])
        async with manager.transaction() as conn:
            await conn.execute("insert 6")
        async with manager.connection() as conn:
            await conn.execute("insert 7")
        await asyncio.sleep(1.5)  # the watcher probes once (a fresh connection)
    seen = [what for what, _ in server.waits]
    for what in ("connect", "fetch select 1", "BEGIN", "execute insert 6", "COMMIT"):
        assert what in seen
    assert seen.count("execute RESET ALL") >= 8  # every release resets
    assert seen.count("fetchval SELECT 1") >= 2  # the start-up check, and the probe
    assert seen[-1] == "close"
    assert server.outside() == []
    assert wait.depth == 0  # every holder left


@pytest.mark.looptime
async def test_waiting_for_a_free_connection_is_not_held_in_the_hook(
    wait: CountingWait, server: Server
) -> None:
    manager = PoolManager(config(min_size=0, max_size=1, acquire_timeout_s=5), database_wait=wait)
    async with manager:
        holding = asyncio.Event()
        done = asyncio.Event()

        async def hold() -> None:
            async with manager.connection():
                holding.set()
                await done.wait()

        holder = asyncio.create_task(hold())
        await holding.wait()
        waiter = asyncio.create_task(manager.fetchval("select 1"))
        await asyncio.sleep(1)
        assert manager.stats().waiting == 1
        assert wait.depth == 1  # the holder's session; the waiter waits inside the loop
        done.set()
        assert await waiter == 1
        await holder
    assert wait.depth == 0
    assert server.outside() == []


@pytest.mark.looptime
async def test_a_failed_wait_leaves_the_hook(wait: CountingWait, server: Server) -> None:
    async def refused(*args: object, **kwargs: object) -> FakeConnection:
        await server.answer("connect")
        raise ConnectionRefusedError("refused")

    manager = PoolManager(config(min_size=0), database_wait=wait)
    async with manager:
        pool_module.asyncpg.connect = refused  # the fixture's monkeypatch restores it
        with pytest.raises(Exception, match="refused"):
            await manager.fetchval("select 1")
        assert wait.depth == 0
    assert server.outside() == []


async def test_storage_hands_the_hook_to_its_pool(wait: CountingWait) -> None:
    settings = StorageSettings(pool=config())
    storage = Storage(settings, database_wait=wait)
    assert storage.pool._database_wait is wait


async def test_without_a_hook_the_pool_holds_a_no_op() -> None:
    manager = PoolManager(config())
    with manager._database_wait:
        pass


@pytest.mark.looptime
async def test_the_periodic_probe_waits_for_an_idle_spell(
    wait: CountingWait, server: Server
) -> None:
    # Traffic that succeeds shows the server reachable; a fresh probe connection each
    # interval would only add a backend fork and an authentication.
    manager = PoolManager(config(min_size=1, probe_interval_s=1.0), database_wait=wait)

    def probes() -> int:
        return [what for what, _ in server.waits].count("fetchval SELECT 1")

    async with manager:
        before = probes()  # the start-up check
        for _ in range(10):  # busy: a write every half second for five seconds
            await manager.execute("insert 1")
            await asyncio.sleep(0.5)
        busy = probes() - before
        await asyncio.sleep(3.5)  # idle: a probe about every second
        idle = probes() - before - busy
    assert busy == 0
    assert idle >= 2
