"""Storage without a database: its health and metrics rules, its life before start and
after close, and its wiring (the seq continued, groups recorded, a recovered pool cutting
the buffer's backoff short) over a fake pool and sink."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

import system.storage.store as store
from system.health import Health
from system.storage import (
    AuditEvent,
    BufferClosed,
    BufferStats,
    PoolClosedError,
    PoolConfig,
    PoolStats,
    Storage,
    StorageHealth,
    StorageSettings,
    StoredOrder,
    metric_names,
)
from system.storage.records import QuoteSnapshot, Record
from system.storage.store import assess, measure

PASSWORD = "pA55-NEVER-PRINT"
URL = f"postgresql://squall:{PASSWORD}@db.test:6543/trading"
HEALTHY = StorageHealth("healthy", "", 0.0)


def settings(**overrides: Any) -> StorageSettings:
    pool = PoolConfig(url=URL, reconnect_backoff_base_s=5.0, reconnect_backoff_max_s=10.0)
    return StorageSettings(pool=pool, **overrides)


def buffer_stats(**overrides: Any) -> BufferStats:
    values: dict[str, Any] = {
        "state": "flowing",
        "capacity": 100,
        "on_full": "refuse",
        "pending": 0,
        "submitted": 0,
        "written": 0,
        "replayed": 0,
        "refused": 0,
        "shed": 0,
        "rejected": 0,
        "failures": 0,
        "oldest_pending_age_s": 0.0,
        "failing_since": None,
        "failing_for_s": 0.0,
        "last_error": None,
        "next_seq": 1,
    }
    values.update(overrides)
    return BufferStats(**values)


# --- the rules -------------------------------------------------------------------------------


def test_healthy_when_both_are() -> None:
    assert assess(HEALTHY, buffer_stats()) == Health("healthy")


def test_an_unreachable_database_is_unhealthy_with_the_pools_reason() -> None:
    pool = StorageHealth("unhealthy", "cannot connect to the database: refused", 3.0)
    failing = buffer_stats(state="backlogged", pending=7, failing_since=1.0, failing_for_s=2.5)
    assert assess(pool, failing) == Health(
        "unhealthy",
        (
            "database: cannot connect to the database: refused",
            "write buffer backlogged: 7 records waiting, writes failing for 2.5 s",
        ),
    )


def test_a_full_buffer_is_unhealthy_and_says_what_happens_to_new_writes() -> None:
    full = buffer_stats(state="full", pending=100)
    assert assess(HEALTHY, full) == Health(
        "unhealthy", ("write buffer full: 100 waiting, capacity 100; new writes are refused",)
    )
    shedding = buffer_stats(state="full", pending=100, on_full="shed-oldest-snapshots")
    assert assess(HEALTHY, shedding).reasons == (
        "write buffer full: 100 waiting, capacity 100; quote snapshots are being shed",
    )


def test_a_backlog_or_a_degraded_pool_is_degraded() -> None:
    backlogged = buffer_stats(state="backlogged", pending=3, failing_since=0.0, failing_for_s=4)
    assert assess(HEALTHY, backlogged) == Health(
        "degraded", ("write buffer backlogged: 3 records waiting, writes failing for 4.0 s",)
    )
    saturated = StorageHealth("degraded", "pool saturated: 2 callers are waiting", 0.0)
    assert assess(saturated, buffer_stats()) == Health(
        "degraded", ("database: pool saturated: 2 callers are waiting",)
    )
    assert assess(saturated, None).state == "degraded"  # before start, no buffer


def test_metrics_report_exactly_the_names_metric_names_lists() -> None:
    pool = PoolStats(total=3, active=1, idle=2, waiting=0, max_size=5)
    stats = buffer_stats(pending=4, submitted=10, written=6, failures=2, oldest_pending_age_s=1.5)
    values = measure(pool, Health("degraded", ("x",)), stats)
    assert tuple(values) == metric_names()
    assert len(set(metric_names())) == len(metric_names())
    assert all(name.startswith("storage_") for name in metric_names())
    assert values["storage_pool_total"] == 3
    assert values["storage_pool_max_size"] == 5
    assert values["storage_health_state"] == 1
    assert (values["storage_buffer_pending"], values["storage_buffer_written"]) == (4, 6)
    assert values["storage_buffer_oldest_pending_age_s"] == 1.5
    assert all(isinstance(value, float) for value in values.values())
    assert measure(pool, Health("healthy"), None)["storage_buffer_submitted"] == 0


# --- before start, after close ---------------------------------------------------------------


async def test_before_start_it_is_unhealthy_and_refuses_records() -> None:
    storage = Storage(settings())
    health = storage.health()
    assert health == Health("unhealthy", ("database: the pool is not started",))
    metrics = storage.metrics()
    assert tuple(metrics) == metric_names()
    assert (metrics["storage_health_state"], metrics["storage_pool_max_size"]) == (2, 10)
    assert metrics["storage_buffer_pending"] == 0
    with pytest.raises(BufferClosed, match=r"not started: await Storage\.start\(\)"):
        storage.record(QuoteSnapshot("005930", 1, 1, 0.0))
    with pytest.raises(BufferClosed):
        _ = storage.buffer
    assert PASSWORD not in repr(storage)
    assert "postgresql://squall:***@db.test:6543/trading" in repr(storage)


async def test_close_without_start_is_idempotent_and_start_after_it_is_refused() -> None:
    storage = Storage(settings())
    await storage.close()
    await asyncio.gather(storage.close(), storage.close())
    with pytest.raises(PoolClosedError):
        await storage.start()
    with pytest.raises(BufferClosed, match="the storage is closed"):
        storage.record(QuoteSnapshot("005930", 1, 1, 0.0))
    assert storage.health().reasons == ("database: the pool is closed",)


# --- wiring, over fakes ----------------------------------------------------------------------


class FakePool:
    """The parts of PoolManager Storage uses; ``last_seq`` is what the tables hold."""

    last_seq = 0

    def __init__(
        self, config: PoolConfig, *, on_change: Any, rng: random.Random, database_wait: Any
    ) -> None:
        self.config = config
        self.server = config.server
        self.on_change = on_change
        self.state = StorageHealth("unhealthy", "the pool is not started", 0.0)
        self.closed = False

    async def start(self) -> None:
        if self.closed:
            raise PoolClosedError(server=self.server)
        self.change("healthy")

    async def close(self) -> None:
        self.closed = True
        self.state = StorageHealth("unhealthy", "the pool is closed", 0.0)

    async def fetchval(self, query: str) -> int:
        assert query.startswith("select coalesce(max(seq), 0) from (select max(seq)")
        return self.last_seq

    def health(self) -> StorageHealth:
        return self.state

    def stats(self) -> PoolStats:
        return PoolStats(total=1, active=0, idle=1, waiting=0, max_size=self.config.max_size)

    def change(self, state: str, reason: str = "") -> None:
        self.state = StorageHealth(state, reason, 0.0)  # type: ignore[arg-type]
        self.on_change(self.state)


class FakeSink:
    """A table keyed by seq that fails while ``error`` is set."""

    instances: ClassVar[list[FakeSink]] = []

    def __init__(self, pool: FakePool, *, transactional: bool) -> None:
        self.transactional = transactional
        self.rows: dict[int, Record] = {}
        self.attempts = 0
        self.error: Exception | None = None
        FakeSink.instances.append(self)

    async def write(self, batch: Sequence[tuple[int, Record]]) -> None:
        self.attempts += 1
        if self.error is not None:
            raise self.error
        self.rows.update(batch)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_migrations(pool: FakePool) -> list[object]:
        return []

    FakeSink.instances = []
    FakePool.last_seq = 0
    monkeypatch.setattr(store, "PoolManager", FakePool)
    monkeypatch.setattr(store, "PostgresSink", FakeSink)
    monkeypatch.setattr(store, "apply_migrations", no_migrations)


def order(n: int) -> StoredOrder:
    return StoredOrder(f"c-{n}", "005930", "buy", 1, None, "pending", None, float(n))


def audit(n: int) -> AuditEvent:
    return AuditEvent(kind="order_placed", detail={"client_order_id": f"c-{n}"}, at=float(n))


@pytest.mark.usefixtures("fakes")
async def test_start_continues_after_the_largest_stored_seq() -> None:
    FakePool.last_seq = 41
    async with Storage(settings()) as storage:
        assert storage.record(order(1), audit(1)) == 43
        assert storage.record(QuoteSnapshot("005930", 1, 1, 0.0)) == 44
        await storage.buffer.flush(1.0)
        [sink] = FakeSink.instances
        assert sorted(sink.rows) == [42, 43, 44]
        assert sink.transactional
        assert storage.health() == Health("healthy")
        assert storage.metrics()["storage_buffer_written"] == 3


@pytest.mark.usefixtures("fakes")
async def test_the_pool_recovering_cuts_the_buffer_backoff_short() -> None:
    async with Storage(settings(), rng=random.Random(1)) as storage:
        [sink] = FakeSink.instances
        pool: FakePool = storage.pool  # type: ignore[assignment]
        sink.error = ConnectionRefusedError("down")
        pool.change("unhealthy", "cannot connect to the database: refused")
        storage.record(order(1), audit(1))
        await asyncio.sleep(0.05)
        assert sink.attempts == 1  # the next retry is 2.5-5 s away (base 5 s)
        health = storage.health()
        assert health.state == "unhealthy"
        assert "write buffer backlogged: 2 records waiting" in health.reasons[1]
        sink.error = None
        pool.change("healthy")  # the probe answered
        await storage.buffer.flush(0.5)
        assert sorted(sink.rows) == [1, 2]
        assert storage.health() == Health("healthy")


@pytest.mark.usefixtures("fakes")
async def test_close_logs_what_stayed_unwritten_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = Storage(settings(flush_timeout_s=0.1))
    await storage.start()
    [sink] = FakeSink.instances
    sink.error = ConnectionRefusedError("down")
    storage.record(order(1), audit(1))
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.INFO, logger="system.storage"):
        await storage.close()
        await storage.close()
    text = "\n".join(caplog.messages)
    assert "closing on db.test:6543/trading with 2 records not written (seq 1..2)" in text
    assert "ConnectionRefusedError: down" in text
    assert "SQUALL_STORAGE_FLUSH_TIMEOUT_S" in text
    assert PASSWORD not in text
    with pytest.raises(BufferClosed):
        storage.record(order(2))


@pytest.mark.usefixtures("fakes")
async def test_the_unsafe_mode_reaches_the_sink_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="system.storage"):
        async with Storage(settings(transactional=False)):
            [sink] = FakeSink.instances
            assert not sink.transactional
    assert any("DELIBERATELY UNSAFE" in message for message in caplog.messages)


async def test_recent_orders_wants_a_positive_limit() -> None:
    storage = Storage(settings())
    for limit in (0, -1, True):
        with pytest.raises(ValueError, match="a limit of 1 or more"):
            await storage.recent_orders(limit)
