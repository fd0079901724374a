"""PostgreSQL for the trading service: a pool manager with health, backoff and typed errors.

    config = PoolConfig.from_env()          # SQUALL_DATABASE_URL, SQUALL_DB_*
    async with PoolManager(config, on_change=report) as db:
        await apply_migrations(db)
        async with db.transaction() as conn:
            await conn.execute("insert into halts (seq, reason, at) values ($1, $2, $3)", ...)

See ``pool`` for what the manager adds to asyncpg's pool, ``health`` for the health rules,
``errors`` for what can go wrong (and ``failures`` for how errors are told apart),
``migrate`` for the schema.
"""

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
from system.storage.pool import HealthListener, PoolManager, Row

__all__ = [
    "MIGRATION_LOCK",
    "Connection",
    "ConnectionValidationError",
    "DatabaseUnavailable",
    "HealthListener",
    "HealthMonitor",
    "Migration",
    "MigrationError",
    "PoolClosedError",
    "PoolConfig",
    "PoolInitializationError",
    "PoolManager",
    "PoolStats",
    "PoolTimeoutError",
    "QueryTimeoutError",
    "Row",
    "StorageError",
    "StorageHealth",
    "StorageState",
    "apply_migrations",
    "load_migrations",
    "redact_url",
]
