"""``Storage``: what the rest of the system uses of PostgreSQL, in one object.

    async with Storage(StorageSettings.from_env()) as storage:
        storage.record(order, AuditEvent(...))    # one atomic group; never waits
        orders = await storage.recent_orders(20)  # through the pool: may raise StorageError
        storage.health(), storage.metrics()

It wires the parts of this package: the ``PoolManager`` (connections, health, typed errors),
the migrations (applied at ``start``), and the ``WriteBuffer`` that writes records through
a ``PostgresSink``, so the trading loop never waits for the database and loses nothing
while it is away. ``start`` numbers new records after the largest ``seq`` already stored,
so a restarted process continues the sequence instead of colliding with it.

When the pool's probe finds the server again after an outage, the write buffer retries at
once rather than waiting out its backoff: recovery takes as long as the probe, not the
longest retry delay.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Self

from system.health import Health
from system.storage.buffer import (
    BufferClosed,
    BufferStats,
    UnwrittenRecords,
    WriteBuffer,
    describe_database,
)
from system.storage.health import PoolStats, StorageHealth, StorageState
from system.storage.migrate import apply_migrations
from system.storage.pool import DatabaseWait, PoolManager
from system.storage.records import RECORD_TYPES, Record, StoredOrder
from system.storage.settings import CAPACITY_VARIABLE, StorageSettings
from system.storage.sink import PostgresSink, is_transient

log = logging.getLogger(__name__)

TABLES: tuple[str, ...] = tuple(kind.table for kind in RECORD_TYPES)
ORDER_COLUMNS: tuple[str, ...] = (*StoredOrder.columns, "seq")

_MAX_SEQ = "select coalesce(max(seq), 0) from ({}) as tables".format(
    " union all ".join(f"select max(seq) as seq from {table}" for table in TABLES)
)
_COUNT_ROWS = "select {}".format(
    ", ".join(f"(select count(*) from {table}) as {table}" for table in TABLES)
)
# Newest first by seq: an order's row keeps the seq of its first write, when it was placed.
_RECENT_ORDERS = f"select {', '.join(ORDER_COLUMNS)} from orders order by seq desc limit $1"

_POOL_METRICS = ("total", "active", "idle", "waiting", "max_size")
_BUFFER_METRICS = (
    "pending",
    "submitted",
    "written",
    "replayed",
    "refused",
    "shed",
    "rejected",
    "failures",
    "oldest_pending_age_s",
)
_METRIC_NAMES: tuple[str, ...] = (
    *(f"storage_pool_{name}" for name in _POOL_METRICS),
    "storage_health_state",
    *(f"storage_buffer_{name}" for name in _BUFFER_METRICS),
)


def metric_names() -> tuple[str, ...]:
    """Every name ``Storage.metrics()`` reports, known without a running ``Storage``, so a
    scenario naming a metric that doesn't exist is refused when it is loaded."""
    return _METRIC_NAMES


def assess(pool: StorageHealth, buffer: BufferStats | None) -> Health:
    """The storage's verdict: the worse of the pool's and the write buffer's.

    unhealthy — the pool is (the database cannot be reached, or the pool is not started
    or closed), or the buffer is full (new writes are refused, or snapshots shed);
    degraded — the pool is (saturated, or a recent failure), or writes are failing while
    records wait; healthy otherwise. ``buffer`` is None before ``start``.
    """
    unhealthy: list[str] = []
    degraded: list[str] = []
    if pool.state == "unhealthy":
        unhealthy.append(f"database: {pool.reason}")
    elif pool.state == "degraded":
        degraded.append(f"database: {pool.reason}")
    if buffer is not None:
        if buffer.state == "full":
            consequence = (
                "quote snapshots are being shed"
                if buffer.on_full == "shed-oldest-snapshots"
                else "new writes are refused"
            )
            unhealthy.append(
                f"write buffer full: {buffer.pending} waiting, capacity {buffer.capacity}; "
                f"{consequence}"
            )
        if buffer.failing_since is not None:
            degraded.append(
                f"write buffer backlogged: {buffer.pending} records waiting, writes failing "
                f"for {buffer.failing_for_s:.1f} s"
            )
    return Health.judge(unhealthy, degraded)


def measure(pool: PoolStats, health: Health, buffer: BufferStats | None) -> dict[str, float]:
    """``metric_names()`` with their values now (the buffer's all 0 before ``start``)."""
    values: dict[str, float] = {
        f"storage_pool_{name}": float(getattr(pool, name)) for name in _POOL_METRICS
    }
    values["storage_health_state"] = float(health.code)
    for name in _BUFFER_METRICS:
        values[f"storage_buffer_{name}"] = 0.0 if buffer is None else float(getattr(buffer, name))
    return values


class Storage:
    """PostgreSQL for the trading system: records in (``record``), orders out, health.

    Use ``async with Storage(settings) as storage:`` or ``await start()`` / ``await
    close()``. ``rng`` seeds the pool's reconnect jitter and the buffer's retry jitter
    (pass a seeded one for repeatable runs). ``database_wait`` is held around every wait
    on the server (``system.storage.pool.DatabaseWait``: none in production; a virtual
    clock's guard in the harness).
    """

    def __init__(
        self,
        settings: StorageSettings,
        *,
        rng: random.Random | None = None,
        database_wait: DatabaseWait | None = None,
    ) -> None:
        self.settings = settings
        rng = rng if rng is not None else random.Random()
        # Two streams from one seed: the pool's probes don't shift the buffer's retries.
        pool_rng = random.Random(rng.getrandbits(64))
        self._buffer_rng = random.Random(rng.getrandbits(64))
        self._pool = PoolManager(
            settings.pool,
            on_change=self._pool_changed,
            rng=pool_rng,
            database_wait=database_wait,
        )
        self._pool_state: StorageState = "unhealthy"  # not started
        self._sink = PostgresSink(self._pool, transactional=settings.transactional)
        self._buffer: WriteBuffer | None = None
        self._starting = asyncio.Lock()  # two start() calls must not make two buffers
        self._closing = False
        self._closed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Storage {self.settings.pool.redacted_url} {self._pool_state}>"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def pool(self) -> PoolManager:
        return self._pool

    @property
    def buffer(self) -> WriteBuffer:
        """The write buffer (made by ``start``, which has to learn the next seq first)."""
        if self._buffer is None:
            raise BufferClosed(self._not_started())
        return self._buffer

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pool, apply the migrations, continue the seq after the largest stored,
        and start writing. Starting a started ``Storage`` does nothing.

        Raises ``PoolInitializationError`` when the database cannot be reached (the URL's
        password masked), ``MigrationError`` when the schema cannot be brought up to date,
        ``PoolClosedError`` after ``close``; the pool is closed again on any failure.
        """
        async with self._starting:
            await self._pool.start()  # PoolClosedError after close()
            if self._buffer is not None:
                return
            try:
                await apply_migrations(self._pool)
                last_seq: int = await self._pool.fetchval(_MAX_SEQ)
            except BaseException:
                await self._pool.close()
                raise
            self._start_buffer(last_seq + 1)

    def _start_buffer(self, start_seq: int) -> None:
        settings = self.settings
        self._buffer = WriteBuffer(
            self._sink,
            capacity=settings.buffer_capacity,
            batch_size=settings.batch_size,
            linger_s=settings.linger_s,
            on_full=settings.on_full,
            start_seq=start_seq,
            is_transient=is_transient,
            # Retry the buffer about as often as the pool probes a server that is down.
            backoff_base_s=settings.pool.reconnect_backoff_base_s,
            backoff_max_s=settings.pool.reconnect_backoff_max_s,
            rng=self._buffer_rng,
            capacity_setting=CAPACITY_VARIABLE,
        )
        self._buffer.start()
        if not settings.transactional:
            log.warning(
                "storage: transactional=False: every record is committed on its own, so an "
                "outage can leave half-written groups. DELIBERATELY UNSAFE, for Squall's "
                "scenarios only; never in production"
            )
        log.info("storage: started on %s; the next seq is %d", self._pool.server, start_seq)

    async def close(self) -> None:
        """Write what is queued (within ``flush_timeout_s``), stop the buffer, close the
        pool. What could not be written is logged with its count and seqs (never the
        DSN). Idempotent; a second caller waits for the first to finish."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._buffer is not None:
                await self._close_buffer(self._buffer)
        finally:
            try:
                await self._pool.close()
            finally:
                self._closed.set()

    async def _close_buffer(self, buffer: WriteBuffer) -> None:
        try:
            stats = await buffer.close(self.settings.flush_timeout_s)
        except UnwrittenRecords as unwritten:
            records = unwritten.records
            log.error(
                "storage: closing on %s with %d records not written (seq %d..%d) after "
                "waiting %.1f s for them; %s. They are not stored: raise "
                "SQUALL_STORAGE_FLUSH_TIMEOUT_S to wait longer at shutdown",
                self._pool.server,
                len(records),
                records[0][0],
                records[-1][0],
                self.settings.flush_timeout_s,
                describe_database(unwritten.stats),
            )
        else:
            log.info(
                "storage: closed on %s; %d records written, none left waiting",
                self._pool.server,
                stats.written,
            )

    # -- writing and reading -----------------------------------------------------------

    def record(self, *records: Record) -> int:
        """Queue ``records`` to be written as one atomic group (all or none of them stored);
        returns the seq of the last. Never waits for the database.

        Raises ``BufferFull`` when the write buffer has no room for the whole group (the
        database has been away too long), ``BufferClosed`` before ``start`` or after
        ``close``; nothing of the group is queued then.
        """
        if self._buffer is None:
            raise BufferClosed(self._not_started())
        return self._buffer.submit(*records)

    async def recent_orders(self, limit: int = 50) -> list[dict[str, object]]:
        """The ``limit`` most recently placed orders, newest first, as JSON-ready dicts
        (``client_order_id``, ``code``, ``side``, ``quantity``, ``price``, ``state``,
        ``broker_order_id``, ``at``, ``seq``).

        Reads through the pool: raises ``PoolTimeoutError`` (no connection free in time),
        ``DatabaseUnavailable``, ``QueryTimeoutError`` as the pool does. Orders still
        waiting in the write buffer are not there yet.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"recent_orders needs a limit of 1 or more, got {limit!r}")
        rows = await self._pool.fetch(_RECENT_ORDERS, limit)
        return [{column: row[column] for column in ORDER_COLUMNS} for row in rows]

    async def count_rows(self) -> dict[str, int]:
        """Rows per table, e.g. ``{"orders": 3, ...}``: for health pages and tests."""
        row = await self._pool.fetchrow(_COUNT_ROWS)
        assert row is not None  # a select without from answers exactly one row
        return {table: int(row[table]) for table in TABLES}

    # -- health ------------------------------------------------------------------------

    def health(self) -> Health:
        """The worse of the pool's health and the write buffer's (see ``assess``)."""
        return assess(self._pool.health(), self._buffer_stats())

    def metrics(self) -> dict[str, float]:
        """The numbers named by ``metric_names()``: the pool's occupancy, the health code
        (0 healthy, 1 degraded, 2 unhealthy) and the write buffer's counters."""
        buffer = self._buffer_stats()
        return measure(self._pool.stats(), assess(self._pool.health(), buffer), buffer)

    def _buffer_stats(self) -> BufferStats | None:
        return None if self._buffer is None else self._buffer.stats()

    def _pool_changed(self, health: StorageHealth) -> None:
        previous, self._pool_state = self._pool_state, health.state
        if previous == "unhealthy" and health.state != "unhealthy" and self._buffer is not None:
            # The probe reached the server: waiting out the retry's backoff gains nothing.
            self._buffer.retry_now()

    def _not_started(self) -> str:
        if self._closing:
            return "the storage is closed: nothing more can be recorded (the system is stopping)"
        return "the storage is not started: await Storage.start() (or use async with) first"
