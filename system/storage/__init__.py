"""PostgreSQL for the trading service: ``Storage``, and the parts it is made of.

    async with Storage(StorageSettings.from_env()) as storage:   # + SQUALL_STORAGE_*
        storage.record(order, audit_event)      # one atomic group, queued; never waits
        await storage.recent_orders(20)
        storage.health(), storage.metrics()

The parts, for tests and tools: a pool manager with health, backoff and typed errors::

    config = PoolConfig.from_env()          # SQUALL_DATABASE_URL, SQUALL_DB_*
    async with PoolManager(config, on_change=report) as db:
        await apply_migrations(db)
        async with db.transaction() as conn:
            await conn.execute("insert into halts (seq, reason, at) values ($1, $2, $3)", ...)

See ``store`` for ``Storage``, ``buffer`` for the write path (groups, outages, a full
buffer), ``sink`` for how batches reach PostgreSQL, ``pool`` for what the manager adds to
asyncpg's pool, ``health`` for the health rules, ``errors`` for what can go wrong (and
``failures`` for how errors are told apart), ``migrate`` for the schema, ``records`` for
what is stored.
"""

from system.storage.buffer import (
    BufferClosed,
    BufferFull,
    BufferStats,
    DeadLetter,
    FlushTimeout,
    OnFull,
    SinkClosed,
    UnwrittenRecords,
    WriteBuffer,
    WriteBufferError,
)
from system.storage.config import PoolConfig, redact_url
from system.storage.errors import (
    ConnectionValidationError,
    DatabaseUnavailable,
    MigrationError,
    PoolClosedError,
    PoolInitializationError,
    PoolTimeoutError,
    QueryTimeoutError,
    StorageError,
)
from system.storage.failures import Connection
from system.storage.health import HealthMonitor, PoolStats, StorageHealth, StorageState
from system.storage.migrate import MIGRATION_LOCK, Migration, apply_migrations, load_migrations
from system.storage.pool import DatabaseWait, HealthListener, PoolManager, Row
from system.storage.records import (
    AuditEvent,
    Halt,
    Opportunity,
    QuoteSnapshot,
    Record,
    Signal,
    StoredOrder,
)
from system.storage.settings import StorageSettings
from system.storage.sink import PostgresSink, is_transient
from system.storage.store import Storage, metric_names

__all__ = [
    "MIGRATION_LOCK",
    "AuditEvent",
    "BufferClosed",
    "BufferFull",
    "BufferStats",
    "Connection",
    "ConnectionValidationError",
    "DatabaseUnavailable",
    "DatabaseWait",
    "DeadLetter",
    "FlushTimeout",
    "Halt",
    "HealthListener",
    "HealthMonitor",
    "Migration",
    "MigrationError",
    "OnFull",
    "Opportunity",
    "PoolClosedError",
    "PoolConfig",
    "PoolInitializationError",
    "PoolManager",
    "PoolStats",
    "PoolTimeoutError",
    "PostgresSink",
    "QueryTimeoutError",
    "QuoteSnapshot",
    "Record",
    "Row",
    "Signal",
    "SinkClosed",
    "Storage",
    "StorageError",
    "StorageHealth",
    "StorageSettings",
    "StorageState",
    "StoredOrder",
    "UnwrittenRecords",
    "WriteBuffer",
    "WriteBufferError",
    "apply_migrations",
    "is_transient",
    "load_migrations",
    "metric_names",
    "redact_url",
]
