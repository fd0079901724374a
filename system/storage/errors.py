"""What can go wrong when talking to PostgreSQL, named so callers can decide what to do.

The hierarchy follows httpx's: catch ``StorageError`` for everything, or a subclass for one
decision. ``retry_after_s`` is set where trying again later can help (the gateway turns it
into HTTP 503 + ``Retry-After``) and ``None`` where it cannot.

- ``DatabaseUnavailable`` (also a ``ConnectionError``): the server cannot be reached, or a
  connection was lost. Transient: the pool reconnects by itself.
  ``ConnectionValidationError`` is the case where idle connections failed their check.
- ``PoolTimeoutError`` (also a ``TimeoutError``): every connection stayed busy for the
  whole acquire timeout; carries the pool's ``PoolStats``.
- ``QueryTimeoutError`` (also a ``TimeoutError``): one statement ran too long and was
  cancelled.
- ``PoolInitializationError``: ``start()`` could not open the pool (a bad URL, a wrong
  database, user or password, or no server there).
- ``PoolClosedError``: the pool was closed; nothing more can be done with it.
- ``MigrationError``: the schema could not be brought up to date.

SQL errors the server answers with (a unique violation, a syntax error) are not wrapped:
they are asyncpg's ``PostgresError`` subclasses, and say nothing about the pool.

Messages name the server as ``host:port/database`` or a URL with its password replaced by
``***``; no message or repr ever contains the password.
"""

from __future__ import annotations

from system.storage.health import PoolStats


class StorageError(Exception):
    """Base of every storage error; ``server`` is ``host:port/database``."""

    retry_after_s: float | None = None

    def __init__(self, message: str, *, server: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.server = server

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class DatabaseUnavailable(StorageError, ConnectionError):
    """The server cannot be reached, or a connection to it was lost; try again later."""

    def __init__(
        self,
        message: str,
        *,
        server: str | None = None,
        retry_after_s: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message, server=server)
        self.retry_after_s = retry_after_s
        # A COMMIT whose answer was lost: the transaction may or may not be applied.
        self.outcome_unknown = outcome_unknown


class ConnectionValidationError(DatabaseUnavailable):
    """Idle connections failed their ``SELECT 1`` check and were discarded."""


class PoolTimeoutError(StorageError, TimeoutError):
    """No connection became free within the acquire timeout."""

    def __init__(
        self, *, server: str, waited_s: float, stats: PoolStats, retry_after_s: float
    ) -> None:
        super().__init__(
            f"no database connection free within {waited_s:.1f} s at {server} "
            f"(pool: {stats.describe()}); raise SQUALL_DB_MAX_SIZE or speed up slow queries",
            server=server,
        )
        self.waited_s = waited_s
        self.stats = stats
        self.retry_after_s = retry_after_s


class QueryTimeoutError(StorageError, TimeoutError):
    """A statement ran longer than the query timeout and was cancelled."""

    def __init__(self, *, server: str, timeout_s: float) -> None:
        super().__init__(
            f"a statement on {server} ran longer than {timeout_s:.1f} s and was cancelled; "
            "make it faster (look for locks in pg_stat_activity) or raise "
            "SQUALL_DB_QUERY_TIMEOUT_S",
            server=server,
        )
        self.timeout_s = timeout_s


class PoolInitializationError(StorageError):
    """``start()`` could not open the pool; ``url`` is the DSN with its password masked."""

    def __init__(self, *, url: str, server: str, reason: str, suggestion: str) -> None:
        super().__init__(
            f"cannot open the database pool for {url}: {reason}; {suggestion}", server=server
        )
        self.url = url
        self.reason = reason
        self.suggestion = suggestion


class PoolClosedError(StorageError):
    """The pool manager was closed (or is closing): no more connections are handed out."""

    def __init__(self, *, server: str | None = None) -> None:
        where = f" for {server}" if server else ""
        super().__init__(
            f"the database pool{where} is closed; no more operations can run on it "
            "(the service is shutting down, or create and start a new PoolManager)",
            server=server,
        )


class MigrationError(StorageError):
    """A migration file is malformed, or applying it failed (then none of it was applied)."""
