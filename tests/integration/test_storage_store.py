"""Storage against a real PostgreSQL, with the TCP fault proxy between them.

Storage talks to the server through ``mocks.proxy`` (refuse, cut, latency, as a network or a
dying server would); the tests look at the database directly, past the proxy, to see what
was really committed and when. Each test gets a database of its own on the session's
server. Real time throughout: the server is an external process (no looptime).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from harness.postgres import PostgresCluster
from mocks.faults import ProxyFaultRule
from mocks.proxy import ProxyConfig, RunningProxy, serve_proxy
from system.storage import (
    AuditEvent,
    BufferFull,
    PoolConfig,
    PoolInitializationError,
    PoolTimeoutError,
    QuoteSnapshot,
    Record,
    Storage,
    StorageSettings,
    StoredOrder,
)
from tests.integration.conftest import FAST_POOL, eventually, shows_a_secret

ALL_ROWS = " union all ".join(
    f"select seq, at from {table}"
    for table in ("quote_snapshots", "signals", "orders", "halts", "audit_events")
)
# One statement, so one snapshot: it sees a transaction's rows all or none.
HALF_GROUPS = """
select
  (select count(*) from orders o where not exists (
     select 1 from audit_events a where a.detail->>'client_order_id' = o.client_order_id))
  +
  (select count(*) from audit_events a where not exists (
     select 1 from orders o where o.client_order_id = a.detail->>'client_order_id'))
"""


@dataclass
class Proxied:
    """The proxy in front of the test's database, and the URLs past it and through it."""

    proxy: RunningProxy
    direct_url: str
    url: str  # through the proxy, with the never-printed password

    def fault(self, **fields: Any) -> str:
        rule = ProxyFaultRule.model_validate(fields)
        stored = self.proxy.control.faults.add(rule, self.proxy.control.clock.now())
        assert stored.id is not None
        return stored.id

    def heal(self) -> None:
        self.proxy.control.faults.clear()

    def down(self) -> None:
        """The server goes away: open connections are cut, new ones refused."""
        self.fault(what={"kind": "refuse"})
        self.fault(what={"kind": "cut"})


@contextlib.asynccontextmanager
async def proxied(postgres: PostgresCluster, database: str) -> AsyncIterator[Proxied]:
    config = ProxyConfig(upstream_host=postgres.host, upstream_port=postgres.port, seed=7)
    async with serve_proxy(config) as proxy:
        through = postgres.url_for(urlsplit(database).path.lstrip("/"), address=proxy.address)
        assert through != database
        yield Proxied(proxy, database, through)


def settings(url: str, **overrides: Any) -> StorageSettings:
    """Fast reactions for tests: short timeouts, backoff and windows."""
    pool: dict[str, Any] = {"url": url, **FAST_POOL, "probe_interval_s": 1.0}
    pool.update(overrides.pop("pool", {}))
    return StorageSettings(pool=PoolConfig.model_validate(pool), flush_timeout_s=5.0, **overrides)


def now() -> float:
    return asyncio.get_running_loop().time()


def placed(n: int, at: float) -> tuple[StoredOrder, AuditEvent]:
    """An order and its audit event: the group the service records before sending."""
    cid = f"c-{n:05d}"
    return (
        StoredOrder(cid, "005930", "buy", 1 + n % 7, 70_000 + n, "pending", None, at),
        AuditEvent(kind="order_placed", detail={"client_order_id": cid}, at=at),
    )


def snapshot(n: int, at: float) -> QuoteSnapshot:
    return QuoteSnapshot(code="000660", price=120_000 + n, volume=n, at=at)


@dataclass
class Producer:
    """Records at a steady rate, alternating lone snapshots and (order, audit) groups, each
    stamped with its submission time; remembers every accepted seq with its ``at``."""

    storage: Storage
    interval_s: float
    only_groups: bool = False
    expected: dict[int, float] = field(default_factory=dict)
    groups: int = 0
    refused: list[BufferFull] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            at = now()
            group: tuple[Record, ...] = (
                placed(n, at) if self.only_groups or n % 2 else (snapshot(n, at),)
            )
            try:
                last = self.storage.record(*group)
            except BufferFull as full:
                self.refused.append(full)
            else:
                self.groups += len(group) == 2
                for seq in range(last - len(group) + 1, last + 1):
                    self.expected[seq] = at
            n += 1
            await asyncio.sleep(self.interval_s)


@contextlib.asynccontextmanager
async def producing(producer: Producer) -> AsyncIterator[Producer]:
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        yield producer
    finally:
        stop.set()
        await task


async def stored(url: str) -> dict[int, float]:
    """Every row's seq and at, read past the proxy."""
    conn = await asyncpg.connect(url)
    try:
        return {row["seq"]: row["at"] for row in await conn.fetch(ALL_ROWS)}
    finally:
        await conn.close()


def assert_in_order(rows: dict[int, float], expected: dict[int, float]) -> None:
    """Nothing lost or added, and the seqs follow the submission times."""
    assert rows == expected
    times = [rows[seq] for seq in sorted(rows)]
    assert times == sorted(times)


def assert_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert not shows_a_secret(record.getMessage())


# -- in order, and across a restart -----------------------------------------------------------


async def test_records_are_written_in_order_and_seq_continues_after_a_restart(
    database: str,
) -> None:
    url = database
    expected: dict[int, float] = {}
    async with Storage(settings(url, batch_size=7), rng=random.Random(1)) as storage:
        for n in range(30):
            at = now()
            group = placed(n, at) if n % 3 == 0 else (snapshot(n, at),)
            last = storage.record(*group)
            expected.update(dict.fromkeys(range(last - len(group) + 1, last + 1), at))
        await storage.buffer.flush(5.0)
        assert sorted(expected) == list(range(1, 41))
        assert_in_order(await stored(database), expected)
        assert await storage.count_rows() == {
            "quote_snapshots": 20,
            "signals": 0,
            "orders": 10,
            "halts": 0,
            "audit_events": 10,
            "opportunities": 0,
        }
        market = StoredOrder("c-market", "005930", "sell", 3, None, "pending", None, now())
        storage.record(market)
        await storage.buffer.flush(5.0)
        recent = await storage.recent_orders(3)
        assert [order["client_order_id"] for order in recent] == ["c-market", "c-00027", "c-00024"]
        assert recent[0] == {
            "client_order_id": "c-market",
            "code": "005930",
            "side": "sell",
            "quantity": 3,
            "price": None,
            "state": "pending",
            "broker_order_id": None,
            "at": market.at,
            "seq": 41,
        }
        assert storage.health().state == "healthy"

    # A new process on the same database continues the sequence instead of reusing it.
    async with Storage(settings(url)) as again:
        assert again.record(snapshot(99, now())) == 42
        assert again.record(*placed(99, now())) == 44
        await again.buffer.flush(5.0)
        assert (await again.count_rows())["quote_snapshots"] == 21


async def test_an_unknown_database_fails_start_without_showing_the_password(
    postgres: PostgresCluster,
) -> None:
    storage = Storage(settings(postgres.url_for("no_such_database")))
    with pytest.raises(PoolInitializationError) as caught:
        await storage.start()
    message = str(caught.value)
    assert 'create the database (createdb "no_such_database")' in message
    assert not shows_a_secret(message)
    assert not shows_a_secret(repr(caught.value))
    await storage.close()


async def test_close_flushes_what_is_queued(database: str) -> None:
    storage = Storage(settings(database))
    await storage.start()
    for n in range(50):
        storage.record(*placed(n, now()))
    await storage.close()  # no flush of our own: close writes what is queued
    assert len(await stored(database)) == 100
    await storage.close()


# -- an outage while records keep coming ------------------------------------------------------


async def test_an_outage_loses_nothing_and_is_reported_then_recovered_from(
    postgres: PostgresCluster, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="system.storage")
    async with proxied(postgres, database) as db:
        storage = Storage(settings(db.url, batch_size=10), rng=random.Random(2))
        async with storage, producing(Producer(storage, interval_s=0.02)) as producer:
            await asyncio.sleep(0.5)
            assert storage.health().state == "healthy"

            db.down()
            took = await eventually(
                lambda: storage.health().state == "unhealthy", within=2.0, what="unhealthy"
            )
            assert took < 2.0
            reasons = storage.health().reasons
            assert reasons[0].startswith("database: cannot connect to the database")
            await asyncio.sleep(3.0)  # the outage goes on; records keep coming
            health = storage.health()
            assert health.state == "unhealthy"
            assert any(r.startswith("write buffer backlogged: ") for r in health.reasons)
            during = storage.metrics()
            assert during["storage_buffer_pending"] > 100  # 3 s of records are waiting
            assert during["storage_buffer_failures"] >= 1
            assert during["storage_health_state"] == 2

            db.heal()
            recovered = await eventually(
                lambda: storage.health().state == "healthy", within=5.0, what="healthy again"
            )
            assert recovered < 5.0
            await asyncio.sleep(0.3)  # records written after the recovery too
        # Leaving the producer's block stopped it; leaving the storage's flushed and closed.
        assert producer.refused == []
        rows = await stored(database)
        assert_in_order(rows, producer.expected)
        assert sorted(rows) == list(range(1, len(rows) + 1))
        metrics = storage.metrics()
        assert metrics["storage_buffer_replayed"] >= during["storage_buffer_pending"]
        assert metrics["storage_buffer_written"] == len(rows)
    assert_no_secret(caplog)


# -- groups are all-or-nothing, even when the connection dies mid-transaction ------------------


@dataclass
class Sampler:
    """Counts, past the proxy, how often an order is stored without its audit event (or
    the other way round)."""

    url: str
    samples: int = 0
    half: int = 0  # samples that saw a half-written group

    async def run(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            while not stop.is_set():
                if await conn.fetchval(HALF_GROUPS):
                    self.half += 1
                self.samples += 1
                await asyncio.sleep(0.005)
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def sampling(url: str) -> AsyncIterator[Sampler]:
    sampler = Sampler(url)
    stop = asyncio.Event()
    task = asyncio.create_task(sampler.run(stop))
    try:
        yield sampler
    finally:
        stop.set()
        await task


async def write_groups_through_cuts(
    postgres: PostgresCluster, database: str, *, transactional: bool
) -> tuple[Sampler, Producer, dict[str, float]]:
    """Groups at a steady rate over a slow link (each batch's transaction stays open a
    while), the connection cut three times and refused for a second after each cut, the
    database sampled directly all along; then healed and flushed."""
    slow_link = {"what": {"kind": "latency", "seconds": 0.03}, "where": {"direction": "upstream"}}
    async with proxied(postgres, database) as db:
        storage = Storage(
            settings(db.url, batch_size=20, transactional=transactional), rng=random.Random(3)
        )
        async with storage, sampling(database) as sampler:
            async with producing(Producer(storage, 0.05, only_groups=True)) as producer:
                db.fault(**slow_link)
                for _ in range(3):
                    await asyncio.sleep(0.7)
                    db.down()  # mid-transaction: over the slow link one is nearly always open
                    await asyncio.sleep(1.0)  # a half-written group would stay visible
                    db.heal()
                    db.fault(**slow_link)
                await asyncio.sleep(0.5)
            db.heal()
            await storage.buffer.flush(20.0)
            metrics = storage.metrics()
            counts = await storage.count_rows()
        # After the last retries every group is whole, in either mode.
        assert counts["orders"] == counts["audit_events"] == producer.groups
        assert_in_order(await stored(database), producer.expected)
    return sampler, producer, metrics


async def test_a_connection_cut_mid_transaction_never_leaves_half_a_group(
    postgres: PostgresCluster, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="system.storage")
    sampler, producer, metrics = await write_groups_through_cuts(
        postgres, database, transactional=True
    )
    assert sampler.samples > 200
    assert producer.groups > 50
    assert metrics["storage_buffer_failures"] >= 3
    assert metrics["storage_buffer_replayed"] > 0
    # The cuts hit transactions in flight (not only the attempts refused afterwards).
    cut_short = [m for m in caplog.messages if "failed (DatabaseUnavailable: lost the" in m]
    assert cut_short
    assert sampler.half == 0
    assert_no_secret(caplog)


async def test_without_transactions_the_same_check_sees_half_written_groups(
    postgres: PostgresCluster, database: str
) -> None:
    # The deliberately unsafe mode commits every record on its own: over the slow link an
    # order sits alone for a round trip before its audit event follows, and a cut between
    # the two leaves it alone until the retry. The check above must see that.
    sampler, _, metrics = await write_groups_through_cuts(postgres, database, transactional=False)
    assert metrics["storage_buffer_failures"] >= 3
    assert sampler.half > 0


# -- a full buffer ----------------------------------------------------------------------------


async def test_a_full_buffer_refuses_loudly_and_keeps_what_it_accepted(
    postgres: PostgresCluster, database: str
) -> None:
    async with proxied(postgres, database) as db:
        storage = Storage(settings(db.url, buffer_capacity=20, batch_size=5))
        async with storage:
            assert storage.record(snapshot(0, now())) == 1
            await storage.buffer.flush(5.0)
            db.down()
            expected = {1: (await stored(database))[1]}
            for n in range(10):  # ten groups of two fill it exactly
                at = now()
                last = storage.record(*placed(n, at))
                expected.update({last - 1: at, last: at})
                if n == 0:  # the first write fails before the rest arrive
                    await eventually(
                        lambda: storage.buffer.stats().failing_since is not None,
                        within=2.0,
                        what="a failed write",
                    )
            with pytest.raises(BufferFull) as refused:
                storage.record(*placed(10, now()))
            message = refused.value.message
            assert message.startswith(
                "write buffer full: refused a group of 2 records (StoredOrder, AuditEvent) "
                "(2 refused so far); 20 records are waiting to be written (capacity 20), and "
                "the database has been failing for "
            )
            assert "raise the write buffer's capacity (SQUALL_STORAGE_BUFFER_CAPACITY)" in message
            assert not shows_a_secret(message)
            with pytest.raises(BufferFull):
                storage.record(snapshot(11, now()))
            await eventually(
                lambda: storage.health().state == "unhealthy", within=2.0, what="unhealthy"
            )
            health = storage.health()
            assert "write buffer full: 20 waiting, capacity 20; new writes are refused" in (
                health.reasons
            )
            assert storage.metrics()["storage_buffer_refused"] == 3

            db.heal()
            await eventually(
                lambda: storage.health().state == "healthy", within=5.0, what="healthy again"
            )
            assert storage.record(snapshot(12, now())) == 22  # the refusals took no seq
            await storage.buffer.flush(5.0)
            rows = await stored(database)
            del rows[22]
            assert_in_order(rows, expected)


# -- pool exhaustion --------------------------------------------------------------------------


async def test_an_exhausted_pool_answers_every_read_in_bounded_time(
    postgres: PostgresCluster, database: str
) -> None:
    latency, acquire_timeout = 0.3, 0.5
    async with proxied(postgres, database) as db:
        pool = {"min_size": 2, "max_size": 2, "acquire_timeout_s": acquire_timeout}
        async with Storage(settings(db.url, pool=pool)) as storage:
            storage.record(*placed(1, now()))
            await storage.buffer.flush(5.0)
            # Both connections open and each with the query prepared, before the link slows.
            await asyncio.gather(storage.recent_orders(), storage.recent_orders())
            db.fault(
                what={"kind": "latency", "seconds": latency}, where={"direction": "downstream"}
            )
            loop = asyncio.get_running_loop()

            async def read() -> tuple[float, list[dict[str, object]] | PoolTimeoutError]:
                began = loop.time()
                try:
                    outcome: (
                        list[dict[str, object]] | PoolTimeoutError
                    ) = await storage.recent_orders(10)
                except PoolTimeoutError as exc:
                    outcome = exc
                return loop.time() - began, outcome

            readers = [asyncio.create_task(read()) for _ in range(20)]
            await eventually(
                lambda: storage.health().state == "degraded", within=1.0, what="saturated"
            )
            assert storage.health().reasons[0].startswith("database: pool saturated: ")
            results = await asyncio.gather(*readers)

    # A query is at most three round trips over the slow link: prepare, run, reset.
    bound = acquire_timeout + 3 * latency + 0.5
    assert max(took for took, _ in results) < bound
    # Those that found no connection gave up at their own deadline, not later.
    assert all(
        took < acquire_timeout + 0.4
        for took, outcome in results
        if isinstance(outcome, PoolTimeoutError)
    )
    answered = [outcome for _, outcome in results if isinstance(outcome, list)]
    timed_out = [outcome for _, outcome in results if isinstance(outcome, PoolTimeoutError)]
    assert len(answered) + len(timed_out) == 20
    assert answered
    assert timed_out
    assert all(orders[0]["client_order_id"] == "c-00001" for orders in answered)
    for error in timed_out:
        assert "no database connection free within 0.5 s" in error.message
        assert "(pool: 2 total, 2 active, " in error.message
        assert error.stats.max_size == 2
        assert error.retry_after_s is not None
        assert not shows_a_secret(str(error))
