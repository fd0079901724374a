"""PoolManager before start and after close: no database needed to get these right."""

from __future__ import annotations

import pytest

from system.storage import PoolClosedError, PoolConfig, PoolManager, StorageError

PASSWORD = "pA55-NEVER-PRINT"
CONFIG = PoolConfig(url=f"postgresql://squall:{PASSWORD}@db.test:5432/trading")


def test_repr_names_the_server_without_the_password() -> None:
    manager = PoolManager(CONFIG)
    assert repr(manager) == "<PoolManager postgresql://squall:***@db.test:5432/trading unhealthy>"


def test_before_start_it_is_unhealthy_and_empty() -> None:
    manager = PoolManager(CONFIG)
    health = manager.health()  # no running loop: the last verdict
    assert (health.state, health.reason) == ("unhealthy", "the pool is not started")
    stats = manager.stats()
    assert (stats.total, stats.active, stats.idle, stats.waiting, stats.max_size) == (
        0,
        0,
        0,
        0,
        10,
    )


async def test_using_it_before_start_says_to_start_it() -> None:
    manager = PoolManager(CONFIG)
    with pytest.raises(StorageError, match=r"not started: await PoolManager.start\(\) first"):
        await manager.fetchval("select 1")


async def test_after_close_every_call_raises_pool_closed() -> None:
    manager = PoolManager(CONFIG)
    await manager.close()
    await manager.close()  # idempotent
    with pytest.raises(PoolClosedError, match=r"db\.test:5432/trading is closed"):
        await manager.execute("select 1")
    with pytest.raises(PoolClosedError):
        async with manager.transaction():
            pass
    with pytest.raises(PoolClosedError):
        await manager.start()
    assert manager.health().reason == "the pool is closed"
