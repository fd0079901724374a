"""The connection-pool manager: asyncpg's pool, plus what a service under faults needs.

``PoolManager`` wraps ``asyncpg.create_pool`` rather than replacing it. asyncpg's pool does
the hard, well-tested parts: resetting a connection on release (open transaction, session
settings, advisory locks), proxies that go dead once released so a stale reference cannot
touch a connection someone else holds, cancellation-safe release, and putting back the
holder of a connection that died. What it lacks sits around it here:

- **admission** (``Slots``): an exact count of waiting callers, the acquire timeout as a
  ``PoolTimeoutError`` that carries ``PoolStats``, and waiters failed at once by ``close()``;
- **validation**: a connection idle longer than ``validate_idle_after_s`` answers
  ``SELECT 1`` before it is handed out, or is terminated and replaced;
- **failure translation** (sorted by ``failures``): errors leaving a ``connection()`` block
  become a lost connection (``DatabaseUnavailable``; the connection is terminated, never
  reused), a timeout (``QueryTimeoutError``), or stay a SQL error (the server answered);
- **health** (``HealthMonitor``) and a **watcher** task that probes the server — at once
  after a failure, with jittered exponential backoff while it is down, and every
  ``probe_interval_s`` otherwise — and flips health back when it answers. While the server
  is known to be down, operations fail fast with ``DatabaseUnavailable`` and a
  ``retry_after_s``, instead of each caller waiting out a connect timeout.

All timing reads the event loop's clock, so the manager can run on virtual time. The
server answers from outside the loop, though, which a virtual clock cannot see: every wait
on it is held inside ``database_wait`` (see ``DatabaseWait``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import replace
from typing import Any, cast

import asyncpg

from system.broker.backoff import jittered_backoff
from system.broker.clock import loop_time
from system.storage.config import PoolConfig
from system.storage.errors import (
    ConnectionValidationError,
    DatabaseUnavailable,
    PoolClosedError,
    PoolTimeoutError,
    QueryTimeoutError,
    StorageError,
)
from system.storage.failures import (
    EXPECTED_CONNECT_ERRORS,
    UNREACHABLE_ERRORS,
    Connection,
    classify,
    connection_lost,
    describe,
    gone,
    initialization_error,
    mark_reported,
    shorten_driver_tracebacks,
    terminate,
)
from system.storage.health import HealthMonitor, PoolStats, StorageHealth
from system.storage.slots import Slots

logger = logging.getLogger(__name__)

# asyncpg ships no type information: a result row (an ``asyncpg.Record``) is ``Any``.
Row = Any

HealthListener = Callable[[StorageHealth], None]

# Held around every wait on the server, the only waits that leave the event loop: opening
# the pool, checking a connection out (which may connect, and validates idle ones), the
# statements, COPYs and transactions of a ``connection()`` block, the reset on release,
# the health probe, closing. Production passes none: a no-op. A virtual clock needs it:
# looptime (the harness's clock) jumps to the next timer whenever nothing in the loop is
# ready, so while PostgreSQL works on an answer every timeout around the wait would fire
# at once. The harness passes a guard that holds that clock to real-time steps while any
# wait is in flight (``harness.clock.RealtimeGuard``); waits inside the loop (for a free
# slot, the watcher's backoff, a retry's delay) stay outside it and jump as before. It is
# entered concurrently by every session and re-entered from inside one, so it must be
# reentrant, and cheap.
DatabaseWait = AbstractContextManager[object]


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's connection, plus when it was last given back to the pool (loop time)."""

    released_at: float | None = None


class PoolManager:
    """A started pool of PostgreSQL connections with health, backoff and typed errors.

    Use ``async with PoolManager(config) as db:`` or ``await start()`` / ``await close()``.
    ``on_change`` is called with the new ``StorageHealth`` whenever the state changes
    (synchronously, from the loop; exceptions it raises are logged). ``rng`` jitters the
    reconnect backoff: pass a seeded one for reproducible runs. ``database_wait`` is held
    around every wait on the server (``DatabaseWait``; none in production).
    """

    def __init__(
        self,
        config: PoolConfig,
        *,
        on_change: HealthListener | None = None,
        rng: random.Random | None = None,
        database_wait: DatabaseWait | None = None,
    ) -> None:
        self.config = config
        self.server = config.server
        self._on_change = on_change
        self._rng = rng if rng is not None else random.Random()
        self._database_wait: DatabaseWait = (
            database_wait if database_wait is not None else nullcontext()
        )
        self._pool: Any = None
        self._monitor = HealthMonitor(error_window_s=config.error_window_s, now=0.0)
        self._slots = Slots(config.max_size, on_waiting=self._waiting_changed)
        self._checked_out = 0
        self._closing = False
        self._closed = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._wake_watcher = asyncio.Event()
        self._next_probe_at: float | None = None
        # When the server last answered (an operation, a connection, a probe): the watcher
        # skips the periodic probe when traffic has just shown it reachable.
        self._last_success_at = -math.inf
        self._refresh: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<PoolManager {self.config.redacted_url} {self._monitor.health.state}>"

    async def __aenter__(self) -> PoolManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pool (``min_size`` connections, at least one checked with ``SELECT 1``).

        Raises ``PoolInitializationError`` when no connection can be made: a bad URL, an
        unknown database, a wrong user or password, no server there (within the connect
        timeout). Starting a started manager does nothing.
        """
        if self._closing:
            raise PoolClosedError(server=self.server)
        if self._pool is not None:
            return
        cfg = self.config
        shorten_driver_tracebacks()  # ``_connect`` reports what asyncpg would log again
        pool: Any = None
        try:
            with self._database_wait:
                pool = await asyncpg.create_pool(
                    cfg.dsn,
                    min_size=cfg.min_size,
                    max_size=cfg.max_size,
                    connect=self._connect,
                    reset=self._reset,
                    connection_class=_PooledConnection,
                    timeout=cfg.connect_timeout_s,
                    command_timeout=cfg.query_timeout_s,
                )
                # With min_size 0 nothing has connected yet, and a typo should fail here.
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except Exception as exc:
            if pool is not None:
                pool.terminate()
            raise initialization_error(exc, self.config) from None
        except BaseException:
            if pool is not None:
                pool.terminate()
            raise
        self._pool = pool
        self._publish(self._monitor.started(loop_time()))
        self._watcher = asyncio.create_task(self._watch(), name=f"storage-watch {self.server}")

    async def close(self) -> None:
        """Stop handing out connections, wait (up to ``close_timeout_s``) for those in use to
        come back, then close them all. Every later call raises ``PoolClosedError``.
        Connections still in use at the deadline are terminated. Idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._slots.close(lambda: PoolClosedError(server=self.server))
        try:
            if self._watcher is not None:
                self._watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._watcher
            if self._pool is not None:
                await self._close_pool()
        finally:
            if self._refresh is not None:
                self._refresh.cancel()
            self._closed.set()
            change = self._monitor.closed(loop_time())
            self._log_change(change)
            if change is not None:
                self._notify(change)

    async def _close_pool(self) -> None:
        try:
            async with asyncio.timeout(self.config.close_timeout_s):
                await self._slots.wait_idle()
                with self._database_wait:
                    await self._pool.close()
        except TimeoutError:
            logger.warning(
                "closing the database pool for %s: %d connection(s) still in use after "
                "%.1f s; terminating them",
                self.server,
                self._checked_out,
                self.config.close_timeout_s,
            )
            self._pool.terminate()
        except BaseException:
            self._pool.terminate()
            raise

    # -- state -------------------------------------------------------------------------

    def stats(self) -> PoolStats:
        """The pool's occupancy now: connections open, handed out, idle, callers waiting."""
        pool = self._pool
        return PoolStats(
            total=pool.get_size() if pool is not None else 0,
            active=self._checked_out,
            idle=pool.get_idle_size() if pool is not None else 0,
            waiting=self._slots.waiting,
            max_size=self.config.max_size,
        )

    def health(self) -> StorageHealth:
        """The verdict now (see ``system.storage.health``); current without a running loop
        only as of the last event."""
        with contextlib.suppress(RuntimeError):  # no running loop: the last verdict stands
            self._publish(self._monitor.refresh(loop_time()))
        return self._monitor.health

    # -- connections -------------------------------------------------------------------

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection for the block (an ``asyncpg`` connection proxy).

        Statements on it time out after ``query_timeout_s`` unless given another
        ``timeout=`` (asyncpg's own argument). Errors leaving the block: a lost connection
        becomes ``DatabaseUnavailable`` (and the connection is discarded), a timeout
        ``QueryTimeoutError``; SQL errors pass through unchanged.
        """
        async with self._session(self.config.query_timeout_s) as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self, *, isolation: str | None = None) -> AsyncIterator[Connection]:
        """A connection inside a transaction: committed when the block ends, rolled back
        when it raises. ``isolation``: ``"read_committed"`` (default),
        ``"repeatable_read"`` or ``"serializable"``.

        A connection lost during ``COMMIT`` raises ``DatabaseUnavailable`` with
        ``outcome_unknown=True``: the transaction may or may not be applied, so replay it
        only if it is idempotent (Squall's tables take ``on conflict (seq) do nothing``).
        """
        async with self.connection() as conn:
            tx = conn.transaction(isolation=isolation)
            await tx.start()
            try:
                yield conn
            except BaseException:
                if not gone(conn):
                    # A rollback that fails leaves the connection to be reset or replaced
                    # on release; the caller's error is the one worth raising.
                    with contextlib.suppress(Exception):
                        await tx.rollback()
                raise
            try:
                await tx.commit()
            except Exception as exc:
                if not connection_lost(exc, conn):
                    raise
                terminate(conn)
                raise self._lost(exc, during="COMMIT") from exc

    async def execute(self, query: str, *args: object, timeout_s: float | None = None) -> str:
        """Run a statement; returns its status (e.g. ``"INSERT 0 1"``)."""
        limit = self._timeout(timeout_s)
        async with self._session(limit) as conn:
            return cast(str, await conn.execute(query, *args, timeout=limit))

    async def executemany(
        self, query: str, args: Iterable[Sequence[object]], *, timeout_s: float | None = None
    ) -> None:
        """Run a statement once per argument tuple, in one round trip per batch."""
        limit = self._timeout(timeout_s)
        async with self._session(limit) as conn:
            await conn.executemany(query, args, timeout=limit)

    async def fetch(self, query: str, *args: object, timeout_s: float | None = None) -> list[Row]:
        """Run a query; returns all rows."""
        limit = self._timeout(timeout_s)
        async with self._session(limit) as conn:
            return cast(list[Row], await conn.fetch(query, *args, timeout=limit))

    async def fetchrow(
        self, query: str, *args: object, timeout_s: float | None = None
    ) -> Row | None:
        """Run a query; returns the first row, or ``None``."""
        limit = self._timeout(timeout_s)
        async with self._session(limit) as conn:
            return await conn.fetchrow(query, *args, timeout=limit)

    async def fetchval(
        self, query: str, *args: object, column: int = 0, timeout_s: float | None = None
    ) -> Any:
        """Run a query; returns one value of the first row (``None`` without rows)."""
        limit = self._timeout(timeout_s)
        async with self._session(limit) as conn:
            return await conn.fetchval(query, *args, column=column, timeout=limit)

    def _timeout(self, timeout_s: float | None) -> float:
        return self.config.query_timeout_s if timeout_s is None else timeout_s

    @asynccontextmanager
    async def _session(self, timeout_s: float) -> AsyncIterator[Connection]:
        started, deadline = await self._admit()
        # From the checkout to the release, the block's waits are on the server.
        with self._database_wait:
            try:
                conn = await self._checkout(started, deadline)
            except BaseException:
                self._slots.release()
                raise
            self._checked_out += 1
            try:
                yield conn
            except Exception as exc:
                failure = classify(exc, conn)
                if failure == "lost":
                    terminate(conn)  # never handed out again; asyncpg replaces it
                    raise self._lost(exc) from exc
                if failure == "timeout":
                    self._failed(f"a statement ran longer than {timeout_s:.1f} s", probe=True)
                    raise QueryTimeoutError(server=self.server, timeout_s=timeout_s) from exc
                if failure == "sql":
                    self._succeeded()  # the server answered; the statement was wrong
                raise
            else:
                self._succeeded()
            finally:
                await self._give_back(conn)

    async def _admit(self) -> tuple[float, float]:
        """A slot (waiting, within the acquire timeout, for one to free up): when the wait
        began and its deadline, both loop times, for the checkout that follows."""
        if self._closing:
            raise PoolClosedError(server=self.server)
        if self._pool is None:
            raise StorageError(
                f"the database pool for {self.server} is not started: await "
                "PoolManager.start() first",
                server=self.server,
            )
        if self._monitor.server_unreachable:
            raise self._down(loop_time())
        started = loop_time()
        deadline = started + self.config.acquire_timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            raise self._pool_timeout(started) from None
        return started, deadline

    async def _checkout(self, started: float, deadline: float) -> Connection:
        """Take a connection from asyncpg's pool (a slot is held), validating idle ones."""
        cfg = self.config
        discarded = 0
        while True:
            window = asyncio.timeout_at(deadline)
            try:
                async with window:
                    conn = await self._pool.acquire()
            except Exception as exc:
                if window.expired():  # opening a connection took the rest of the wait
                    raise self._pool_timeout(started) from None
                if self._closing:
                    raise PoolClosedError(server=self.server) from None
                raise self._cannot_connect(exc) from exc
            now = loop_time()
            released_at = conn.released_at
            if released_at is None or now - released_at <= cfg.validate_idle_after_s:
                return conn
            try:
                await conn.fetchval("SELECT 1", timeout=cfg.probe_timeout_s)
            except Exception as exc:
                terminate(conn)
                await self._pool.release(conn)  # already detached by terminate(): a no-op
                discarded += 1
                what = f"an idle connection failed validation ({self._describe(exc)})"
                self._failed(what, probe=True)
                if discarded >= cfg.max_size or self._monitor.server_unreachable:
                    raise ConnectionValidationError(
                        f"{discarded} idle connection(s) to {self.server} failed their "
                        f"SELECT 1 check ({self._describe(exc)}) and were discarded; the "
                        "server may be unreachable — retry shortly, and check the network "
                        "path to it",
                        server=self.server,
                        retry_after_s=cfg.reconnect_backoff_base_s,
                    ) from exc
                continue
            return conn

    async def _give_back(self, conn: Connection) -> None:
        try:
            await self._pool.release(conn, timeout=self.config.query_timeout_s)
        except Exception as exc:
            # Resetting it failed (asyncpg terminated it), or the pool was terminated.
            if not self._closing:
                self._failed(
                    f"resetting a released connection failed ({self._describe(exc)})", probe=True
                )
        finally:
            self._checked_out -= 1
            self._slots.release()

    # asyncpg's hooks ------------------------------------------------------------------

    async def _connect(self, *args: Any, **kwargs: Any) -> Any:
        """asyncpg's ``connect``, telling the monitor whether the server could be reached."""
        try:
            conn = await asyncpg.connect(*args, **kwargs)
        except Exception as exc:
            described = self._describe(exc)
            what = f"connecting failed ({described})"
            if isinstance(exc, UNREACHABLE_ERRORS):
                self._publish(self._monitor.unreachable(loop_time(), what))
                self._wake_watcher.set()  # switch it to backoff
            else:
                self._failed(what, probe=False)
            if isinstance(exc, EXPECTED_CONNECT_ERRORS):
                # Health now tells of it; asyncpg, restoring its floor, need not add a
                # traceback. Anything else may be a bug, and keeps its traceback.
                mark_reported(exc, f"could not connect to {self.server} ({described})")
            raise
        self._succeeded()
        return conn

    async def _reset(self, conn: Any) -> None:
        """asyncpg's ``reset`` on release: its default reset, plus when it became idle."""
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)
        conn.released_at = loop_time()

    # -- health ------------------------------------------------------------------------

    def _succeeded(self) -> None:
        self._last_success_at = now = loop_time()
        self._publish(self._monitor.succeeded(now))

    def _failed(self, what: str, *, probe: bool) -> None:
        self._publish(self._monitor.failed(loop_time(), what))
        if probe:  # is it the connection, or the server? The watcher finds out now.
            self._wake_watcher.set()

    def _waiting_changed(self, waiting: int) -> None:
        self._publish(self._monitor.saturation(loop_time(), waiting))

    def _publish(self, change: StorageHealth | None) -> None:
        """Tell the listener about a new state, and arm the timer for the next expiry."""
        expiry = self._monitor.next_change_at()
        if self._refresh is not None and (expiry is None or self._refresh.when() != expiry):
            self._refresh.cancel()
            self._refresh = None
        if expiry is not None and self._refresh is None and not self._closing:
            self._refresh = asyncio.get_running_loop().call_at(expiry, self._on_expiry, expiry)
        if change is not None:
            self._log_change(change)
            self._notify(change)

    def _on_expiry(self, expiry: float) -> None:
        # The timer fired, so its moment has come, though the clock may read a hair earlier
        # (timers fire up to the clock's resolution early). Judged at the clock's reading, the
        # verdict could stand and the timer be re-armed for that same moment, again and
        # again: on virtual time the clock never moves on while a timer is due.
        self._refresh = None
        self._publish(self._monitor.refresh(max(loop_time(), expiry)))

    def _notify(self, change: StorageHealth) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(change)
        except Exception:
            logger.exception("the storage health listener failed on %s", change)

    def _log_change(self, change: StorageHealth | None) -> None:
        if change is None:
            return
        level = logging.INFO if change.state == "healthy" else logging.WARNING
        reason = f": {change.reason}" if change.reason else ""
        logger.log(level, "database %s is %s%s", self.server, change.state, reason)

    async def _watch(self) -> None:
        """Probe the server: after failures, with backoff while it is down, and now and
        then otherwise. Runs from ``start()`` to ``close()``."""
        cfg = self.config
        failures = 0  # consecutive failed probes
        last_probe = -math.inf
        while True:
            if self._monitor.server_unreachable:
                delay = jittered_backoff(
                    failures + 1,
                    base_s=cfg.reconnect_backoff_base_s,
                    max_s=cfg.reconnect_backoff_max_s,
                    rng=self._rng,
                )
                self._next_probe_at = loop_time() + delay
                await asyncio.sleep(delay)
            else:
                failures = 0
                interval = cfg.probe_interval_s or None
                self._next_probe_at = None if interval is None else loop_time() + interval
                woken = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await self._wake_watcher.wait()
                        woken = True
                if (
                    not woken
                    and interval is not None
                    and loop_time() - self._last_success_at < interval
                ):
                    # The periodic probe is for an idle system; a busy one has just shown
                    # the server reachable, and a fresh connection a minute costs it a
                    # backend fork and an authentication for nothing.
                    continue
                # A burst of failures should not become a burst of probes.
                spacing = last_probe + cfg.reconnect_backoff_base_s - loop_time()
                if spacing > 0:
                    await asyncio.sleep(spacing)
            self._wake_watcher.clear()
            last_probe = loop_time()
            failures = 0 if await self._probe() else failures + 1

    async def _probe(self) -> bool:
        """Open a fresh connection and ask ``SELECT 1``, within ``probe_timeout_s``.

        The answer is the whole verdict: the connection is dropped without waiting for
        its close to finish (see below), so a network slow to close sockets does not pass
        for a server that is down.
        """
        cfg = self.config
        try:
            with self._database_wait:
                async with asyncio.timeout(cfg.probe_timeout_s):
                    conn = await asyncpg.connect(cfg.dsn, timeout=cfg.probe_timeout_s)
                    try:
                        await conn.fetchval("SELECT 1")
                    finally:
                        # Not ``close()``: it waits until the server's end of the socket
                        # closes, which a slow network (or an unresponsive server) can hold
                        # up past the timeout. ``terminate()`` still sends PostgreSQL its
                        # Terminate message, so the backend ends cleanly, but drops the
                        # socket without waiting.
                        conn.terminate()
        except Exception as exc:
            what = f"the health probe failed ({self._describe(exc)})"
            if isinstance(exc, UNREACHABLE_ERRORS):
                self._publish(self._monitor.unreachable(loop_time(), what))
            else:
                self._publish(self._monitor.failed(loop_time(), what))
            return False
        self._succeeded()
        return True

    # -- errors ------------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        return describe(exc, self.config.dsn)

    def _retry_after(self) -> float:
        base = self.config.reconnect_backoff_base_s
        if self._next_probe_at is None:
            return base
        return max(self._next_probe_at - loop_time(), base)

    def _down(self, now: float) -> DatabaseUnavailable:
        down_for = now - self._monitor.health.since
        retry = self._retry_after()
        return DatabaseUnavailable(
            f"PostgreSQL at {self.server} is unreachable (for {down_for:.1f} s: "
            f"{self._monitor.unreachable_because}); the pool probes it in the background — "
            f"retry in {retry:.1f} s, and check that the server is running",
            server=self.server,
            retry_after_s=retry,
        )

    def _cannot_connect(self, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"cannot open a connection to PostgreSQL at {self.server} "
            f"({self._describe(exc)}); retry in {self._retry_after():.1f} s, and check that "
            "the server is running and accepts connections",
            server=self.server,
            retry_after_s=self._retry_after(),
        )

    def _lost(self, exc: BaseException, *, during: str | None = None) -> StorageError:
        if self._closing:
            return PoolClosedError(server=self.server)
        # asyncpg detaches a connection it saw die, and then only says "released back to
        # the pool": the news worth telling is that the other end closed it.
        how = (
            "the server or the network closed it"
            if isinstance(exc, asyncpg.InterfaceError)
            else self._describe(exc)
        )
        self._failed(f"a connection was lost ({how})", probe=True)
        if during == "COMMIT":
            return DatabaseUnavailable(
                f"lost the connection to PostgreSQL at {self.server} during COMMIT ({how}); "
                "the transaction may or may not have been applied — replay it only if it is "
                "idempotent",
                server=self.server,
                retry_after_s=self.config.reconnect_backoff_base_s,
                outcome_unknown=True,
            )
        return DatabaseUnavailable(
            f"lost the connection to PostgreSQL at {self.server} ({how}); a statement in "
            "flight may or may not have been applied — retry idempotent work (the pool "
            "replaces the connection by itself)",
            server=self.server,
            retry_after_s=self.config.reconnect_backoff_base_s,
        )

    def _pool_timeout(self, started: float) -> PoolTimeoutError:
        # The caller giving up has just left the queue; it still counts as one who waited.
        stats = replace(self.stats(), waiting=self._slots.waiting + 1)
        return PoolTimeoutError(
            server=self.server,
            waited_s=loop_time() - started,
            stats=stats,
            # Held connections free up as their statements end, each within the query
            # timeout: about when trying again has a chance.
            retry_after_s=self.config.query_timeout_s,
        )
