"""PostgresSink and is_transient, against a fake pool: what is sent, in how many
transactions, and which failures the write buffer retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import pytest

from system.storage import (
    AuditEvent,
    DatabaseUnavailable,
    PoolClosedError,
    PoolManager,
    PoolStats,
    PoolTimeoutError,
    PostgresSink,
    QueryTimeoutError,
    SinkClosed,
    StorageError,
    StoredOrder,
    is_transient,
)
from system.storage.records import QuoteSnapshot, Record

ORDER = StoredOrder("c-1", "005930", "buy", 1, 70_000, "pending", None, 1.0)
AUDIT = AuditEvent(kind="order_placed", detail={"client_order_id": "c-1"}, at=1.0)
SNAP = QuoteSnapshot(code="005930", price=70_000, volume=1, at=1.0)
BATCH: list[tuple[int, Record]] = [(1, SNAP), (2, SNAP), (3, ORDER), (4, AUDIT)]


class FakeConnection:
    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    async def executemany(self, sql: str, args: list[tuple[object, ...]]) -> None:
        self.log.append(("executemany", sql.split(" (")[0], [row[0] for row in args]))

    async def execute(self, sql: str, *args: object) -> None:
        self.log.append(("execute", sql.split(" (")[0], args[0]))


class FakePool:
    """``transaction()`` and ``connection()`` as the pool manager has them, logging calls."""

    server = "db.test:5432/squall"

    def __init__(self, error: Exception | None = None) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.error = error

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeConnection]:
        if self.error is not None:
            raise self.error
        self.log.append(("begin",))
        yield FakeConnection(self.log)
        self.log.append(("commit",))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[FakeConnection]:
        if self.error is not None:
            raise self.error
        yield FakeConnection(self.log)


def sink(pool: FakePool, *, transactional: bool = True) -> PostgresSink:
    return PostgresSink(cast(PoolManager, pool), transactional=transactional)


async def test_a_batch_is_one_transaction_with_one_executemany_per_run() -> None:
    pool = FakePool()
    await sink(pool).write(BATCH)
    assert pool.log == [
        ("begin",),
        ("executemany", "insert into quote_snapshots", [1, 2]),
        ("executemany", "insert into orders", [3]),
        ("executemany", "insert into audit_events", [4]),
        ("commit",),
    ]


async def test_the_unsafe_mode_sends_every_record_on_its_own_without_a_transaction() -> None:
    pool = FakePool()
    await sink(pool, transactional=False).write(BATCH)
    assert pool.log == [
        ("execute", "insert into quote_snapshots", 1),
        ("execute", "insert into quote_snapshots", 2),
        ("execute", "insert into orders", 3),
        ("execute", "insert into audit_events", 4),
    ]


@pytest.mark.parametrize("transactional", [True, False])
async def test_a_closed_pool_becomes_sink_closed(transactional: bool) -> None:
    pool = FakePool(PoolClosedError(server=FakePool.server))
    with pytest.raises(SinkClosed, match=r"pool for db\.test:5432/squall is closed") as caught:
        await sink(pool, transactional=transactional).write(BATCH)
    assert isinstance(caught.value.__cause__, PoolClosedError)


async def test_other_errors_pass_through_for_the_buffer_to_judge() -> None:
    down = DatabaseUnavailable("lost the connection", server=FakePool.server)
    with pytest.raises(DatabaseUnavailable):
        await sink(FakePool(down)).write(BATCH)


STATS = PoolStats(total=2, active=2, idle=0, waiting=3, max_size=2)


@pytest.mark.parametrize(
    "error",
    [
        DatabaseUnavailable("down", server="s"),
        PoolTimeoutError(server="s", waited_s=1.0, stats=STATS, retry_after_s=1.0),
        QueryTimeoutError(server="s", timeout_s=1.0),
        PoolClosedError(server="s"),
        StorageError("the pool is not started"),
        asyncpg.exceptions.UndefinedTableError('relation "orders" does not exist'),
        asyncpg.exceptions.ReadOnlySQLTransactionError("read-only"),
        ConnectionResetError("reset"),
        RuntimeError("something nobody foresaw"),
    ],
    ids=type,
)
def test_the_database_or_the_unknown_is_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DataError("bad data"),
        asyncpg.exceptions.NumericValueOutOfRangeError("out of range"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.CheckViolationError("check"),
        asyncpg.exceptions.NotNullViolationError("null"),
        asyncpg.exceptions._base.DataError("invalid input for query argument $2"),
    ],
    ids=type,
)
def test_data_the_server_refuses_is_permanent(error: Exception) -> None:
    assert not is_transient(error)
