"""The pool manager against a real PostgreSQL: queries, exhaustion, bad configuration,
outages and recovery, killed connections, a silent server, close, and migrations.

Real time throughout: the server is an external process (see ENVIRONMENT.md on looptime).
Each test gets a database of its own on the session's server; the outage tests stop and
start that server, and always leave it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from harness.postgres import PostgresCluster
from mocks.control_client import ProxyControl
from mocks.proxy import ProxyConfig, serve_proxy
from system.storage import (
    ConnectionValidationError,
    DatabaseUnavailable,
    MigrationError,
    PoolClosedError,
    PoolConfig,
    PoolInitializationError,
    PoolManager,
    PoolTimeoutError,
    QueryTimeoutError,
    StorageHealth,
    apply_migrations,
    load_migrations,
)
from tests.integration.conftest import FAST_POOL, PASSWORD, eventually, shows_a_secret

TABLES = {"quote_snapshots", "signals", "orders", "halts", "audit_events", "opportunities"}


def assert_secret_kept(error: BaseException) -> None:
    assert not shows_a_secret(str(error))
    assert not shows_a_secret(repr(error))


def config(url: str, **overrides: Any) -> PoolConfig:
    """Fast reactions for tests: short timeouts, backoff and windows."""
    return PoolConfig.model_validate({"url": url, **FAST_POOL, **overrides})


@pytest.fixture
def outage_postgres(postgres: PostgresCluster) -> Iterator[PostgresCluster]:
    """The session's server, for a test that stops it; running again afterwards."""
    if not postgres.managed:
        pytest.skip("DATABASE_URL names a server Squall does not control: no outage tests")
    try:
        yield postgres
    finally:
        postgres.start()


@contextlib.asynccontextmanager
async def started(cfg: PoolConfig, **kwargs: Any) -> AsyncIterator[PoolManager]:
    manager = PoolManager(cfg, **kwargs)
    await manager.start()
    try:
        yield manager
    finally:
        await manager.close()


async def backend_pid(manager: PoolManager) -> int:
    pid: int = await manager.fetchval("select pg_backend_pid()")
    return pid


async def terminate_backend(url: str, pid: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select pg_terminate_backend($1, 5000)", pid)
    finally:
        await conn.close()


# -- the happy path ---------------------------------------------------------------------------


async def test_start_query_and_transactions(database: str) -> None:
    async with started(config(database)) as db:
        assert await db.fetchval("select 1 + 1") == 2
        assert await db.execute("create table t (n int primary key)") == "CREATE TABLE"
        async with db.transaction() as conn:
            await conn.execute("insert into t values (1)")

        async def insert_then_fail() -> None:
            async with db.transaction() as conn:
                await conn.execute("insert into t values (2)")
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await insert_then_fail()  # rolled back
        await db.executemany("insert into t values ($1)", [(3,), (4,)])
        assert [row["n"] for row in await db.fetch("select n from t order by n")] == [1, 3, 4]
        row = await db.fetchrow("select count(*) as c from t")
        assert row is not None
        assert row["c"] == 3
        assert db.health().state == "healthy"
        stats = db.stats()
        assert (stats.active, stats.waiting, stats.max_size) == (0, 0, 4)
        assert stats.total >= 1
        assert stats.idle == stats.total


async def test_sql_errors_pass_through_and_leave_health_alone(database: str) -> None:
    async with started(config(database)) as db:
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.fetch("select * from no_such_table")
        assert db.health().state == "healthy"
        assert await db.fetchval("select 1") == 1


async def test_a_slow_query_times_out_and_the_pool_carries_on(database: str) -> None:
    async with started(config(database)) as db:
        with pytest.raises(QueryTimeoutError, match=r"longer than 0\.2 s") as caught:
            await db.fetchval("select pg_sleep(5)", timeout_s=0.2)
        assert_secret_kept(caught.value)
        assert isinstance(caught.value, TimeoutError)
        assert await db.fetchval("select 1") == 1
        assert db.health().state == "degraded"  # a failure, within the error window


# -- exhaustion -------------------------------------------------------------------------------


async def test_an_exhausted_pool_times_out_with_its_stats_and_reports_saturation(
    database: str,
) -> None:
    changes: list[StorageHealth] = []
    cfg = config(database, max_size=2, acquire_timeout_s=0.5)
    async with started(cfg, on_change=changes.append) as db:
        release = asyncio.Event()
        holding = asyncio.Semaphore(0)

        async def hold() -> None:
            async with db.connection():
                holding.release()
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        for _ in holders:
            await holding.acquire()

        loop = asyncio.get_running_loop()
        waiter = asyncio.create_task(db.fetchval("select 1"))
        await eventually(lambda: db.stats().waiting == 1, within=1, what="a waiter")
        health = db.health()
        assert (health.state, health.reason) == (
            "degraded",
            "pool saturated: 1 caller is waiting for a connection",
        )
        started_at = loop.time()
        with pytest.raises(PoolTimeoutError) as caught:
            await waiter
        waited = loop.time() - started_at
        assert waited < 0.6  # it gave up at its own deadline, 0.5 s after it began
        error = caught.value
        assert "no database connection free within 0.5 s" in str(error)
        assert "(pool: 2 total, 2 active, 1 waiting)" in str(error)
        assert "raise SQUALL_DB_MAX_SIZE or speed up slow queries" in str(error)
        assert (error.stats.total, error.stats.active, error.stats.waiting) == (2, 2, 1)
        assert error.retry_after_s is not None
        assert_secret_kept(error)

        release.set()
        await asyncio.gather(*holders)
        assert await db.fetchval("select 1") == 1
        assert db.health().state == "healthy"
    assert [change.state for change in changes] == ["healthy", "degraded", "healthy", "unhealthy"]


# -- bad configuration ------------------------------------------------------------------------


async def test_a_bad_url_fails_start_without_showing_the_password() -> None:
    cfg = PoolConfig(url=f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/postgres")
    with pytest.raises(PoolInitializationError) as caught:
        await PoolManager(cfg).start()
    assert_secret_kept(caught.value)
    message = str(caught.value)
    assert "postgresql://postgres:***@127.0.0.1:notaport/postgres" in message
    assert "fix the URL: expected postgresql://user:password@host:port/database" in message


async def test_an_unknown_database_fails_start_and_says_to_create_it(
    postgres: PostgresCluster,
) -> None:
    cfg = config(postgres.url_for("no_such_database"))
    with pytest.raises(PoolInitializationError) as caught:
        await PoolManager(cfg).start()
    message = str(caught.value)
    assert f"postgresql://postgres:***@{postgres.host}:{postgres.port}/no_such_database" in message
    assert 'database "no_such_database" does not exist' in message
    assert 'create the database (createdb "no_such_database")' in message
    assert_secret_kept(caught.value)


async def test_nothing_listening_fails_start_and_asks_whether_the_server_runs() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        cfg = config(f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres")
        with pytest.raises(PoolInitializationError) as caught:
            await PoolManager(cfg).start()
    message = str(caught.value)
    assert f"is the server running and listening on 127.0.0.1:{port}?" in message
    assert_secret_kept(caught.value)


async def test_a_silent_server_fails_start_within_the_connect_timeout() -> None:
    hung_up = asyncio.Event()

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until the client gives up
        finally:
            writer.close()
            hung_up.set()

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    async with server:
        cfg = config(
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres", connect_timeout_s=0.3
        )
        began = loop.time()
        with pytest.raises(PoolInitializationError, match=r"nothing answered within 0\.3 s"):
            await PoolManager(cfg).start()
        assert loop.time() - began < 1.5
        await asyncio.wait_for(hung_up.wait(), 2)  # the client left nothing open


async def test_a_wrong_password_fails_start_without_showing_either_password(
    postgres: PostgresCluster, database: str
) -> None:
    if not postgres.managed:
        pytest.skip("needs to edit pg_hba.conf, which only a throwaway cluster allows")
    role = f"pw_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.url)
    try:
        await admin.execute(f"create role {role} login password 'right-{PASSWORD}'")
        hba = postgres.data_dir / "pg_hba.conf"
        # First match wins: this role alone must give a password.
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        await admin.execute("select pg_reload_conf()")
        wrong = f"postgresql://{role}:wrong-{PASSWORD}@127.0.0.1:{postgres.port}/postgres"
        with pytest.raises(PoolInitializationError) as caught:
            await PoolManager(PoolConfig(url=wrong)).start()
        message = str(caught.value)
        assert f'password authentication failed for user "{role}"' in message
        assert "check the user and password in SQUALL_DATABASE_URL" in message
        assert "wrong-" not in message
        assert "wrong-" not in repr(caught.value)
        assert_secret_kept(caught.value)
    finally:
        await admin.close()


# -- outages ----------------------------------------------------------------------------------


async def test_a_stopped_server_is_noticed_within_2_s_and_recovery_needs_no_help(
    outage_postgres: PostgresCluster, database: str
) -> None:
    changes: list[StorageHealth] = []
    async with started(config(database), on_change=changes.append) as db:
        assert await db.fetchval("select 1") == 1

        await outage_postgres.astop()
        # Nobody runs a query: the pool notices by itself (its idle connection was cut).
        took = await eventually(
            lambda: db.health().state == "unhealthy", within=2, what="unhealthy after stop"
        )
        assert took < 2
        assert "cannot connect to the database" in db.health().reason
        with pytest.raises(DatabaseUnavailable) as caught:
            await db.fetchval("select 1")
        error = caught.value
        assert "is unreachable" in str(error)
        assert error.retry_after_s is not None
        assert error.retry_after_s > 0
        assert_secret_kept(error)

        await outage_postgres.astart()
        await eventually(
            lambda: db.health().state != "unhealthy", within=3, what="reachable after start"
        )
        assert await db.fetchval("select 1") == 1
        await eventually(lambda: db.health().state == "healthy", within=2, what="healthy again")
    states = [change.state for change in changes]
    assert states[:2] == ["healthy", "unhealthy"]
    assert "healthy" in states[2:]


async def test_the_first_failed_operation_reveals_an_outage(
    outage_postgres: PostgresCluster, database: str
) -> None:
    # No floor and no periodic probe: only the operation can find out.
    cfg = config(database, min_size=0, probe_interval_s=0)
    async with started(cfg) as db:
        await outage_postgres.astop()
        assert db.health().state == "healthy"  # nothing has told it yet
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(DatabaseUnavailable) as caught:
            await db.fetchval("select 1")
        assert_secret_kept(caught.value)
        await eventually(lambda: db.health().state == "unhealthy", within=2, what="unhealthy")
        assert loop.time() - began < 2
        await outage_postgres.astart()
        await eventually(lambda: db.health().state != "unhealthy", within=3, what="recovered")
        assert await db.fetchval("select 1") == 1


# -- broken connections -----------------------------------------------------------------------


async def test_an_idle_connection_killed_server_side_is_replaced(database: str) -> None:
    cfg = config(database, max_size=1, validate_idle_after_s=0)
    async with started(cfg) as db:
        first = await backend_pid(db)
        await terminate_backend(database, first)
        # Immediately: whether asyncpg has seen the goodbye yet or not, the connection
        # is replaced (noticed as closed, or failing its SELECT 1) before it is handed out.
        second = await backend_pid(db)
        assert second != first
        assert db.stats().total == 1


async def test_a_connection_killed_while_in_use_is_discarded_and_the_next_works(
    database: str,
) -> None:
    async with started(config(database, max_size=1)) as db:
        pids: list[int] = []

        async def killed_mid_use() -> None:
            async with db.connection() as conn:
                pids.append(await conn.fetchval("select pg_backend_pid()"))
                await terminate_backend(database, pids[0])
                await conn.fetchval("select 1")

        with pytest.raises(DatabaseUnavailable) as caught:
            await killed_mid_use()
        assert "lost the connection" in str(caught.value)
        assert_secret_kept(caught.value)
        assert await backend_pid(db) != pids[0]
        health = db.health()
        assert health.state == "degraded"  # a lost connection, but the server answers
        assert "a connection was lost" in health.reason
        await eventually(lambda: db.health().state == "healthy", within=2, what="healthy")


async def test_a_lost_commit_says_its_outcome_is_unknown(database: str) -> None:
    async with started(config(database, max_size=1)) as db:
        await db.execute("create table t (n int)")

        async def killed_before_commit() -> None:
            async with db.transaction() as conn:
                await conn.execute("insert into t values (1)")
                pid = await conn.fetchval("select pg_backend_pid()")
                await terminate_backend(database, pid)

        with pytest.raises(DatabaseUnavailable) as caught:
            await killed_before_commit()
        # The backend died before COMMIT reached it: here the outcome is "not applied",
        # but a client cannot tell that from a COMMIT whose answer was lost.
        assert caught.value.outcome_unknown
        assert "during COMMIT" in str(caught.value)
        assert await db.fetchval("select count(*) from t") == 0


class Relay:
    """A TCP relay to PostgreSQL that can go silent: connections stay open, bytes stop.

    A blackholed network, or a frozen server: nothing is refused or reset, nothing answers.
    """

    def __init__(self, port: int) -> None:
        self.target = port
        self.silent = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.silent:
            return  # accepted, never answered
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers.append(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if not self.silent:
                sink.write(data)
                await sink.drain()
        sink.close()


async def test_a_silent_server_is_reported_unhealthy_within_2_s(
    postgres: PostgresCluster, database: str
) -> None:
    relay = Relay(postgres.port)
    port = await relay.start()
    url = database.replace(f":{postgres.port}/", f":{port}/")
    cfg = config(url, max_size=2, validate_idle_after_s=0, connect_timeout_s=0.5)
    try:
        async with started(cfg) as db:
            assert await db.fetchval("select 1") == 1
            relay.silent = True
            loop = asyncio.get_running_loop()
            began = loop.time()
            # The idle connection fails its SELECT 1 (within probe_timeout_s), is
            # discarded, and its replacement cannot connect either.
            with pytest.raises(DatabaseUnavailable) as caught:
                await db.fetchval("select 1")
            assert isinstance(caught.value, ConnectionValidationError) or (
                "cannot open a connection" in str(caught.value)
                or "is unreachable" in str(caught.value)
            )
            assert_secret_kept(caught.value)
            await eventually(lambda: db.health().state == "unhealthy", within=2, what="unhealthy")
            assert loop.time() - began < 2.5

            relay.silent = False
            await eventually(lambda: db.health().state != "unhealthy", within=3, what="back")
            assert await db.fetchval("select 1") == 1
    finally:
        await relay.close()


@contextlib.asynccontextmanager
async def through_proxy(
    postgres: PostgresCluster, database: str
) -> AsyncIterator[tuple[str, ProxyControl]]:
    """The fault proxy in front of the server: the database's URL through it (with the
    password), and the proxy's control plane."""
    proxy_config = ProxyConfig(upstream_host=postgres.host, upstream_port=postgres.port, seed=3)
    async with serve_proxy(proxy_config) as proxy, ProxyControl(proxy.control_url) as control:
        url = postgres.url_for(urlsplit(database).path.lstrip("/"), address=proxy.address)
        yield url, control


async def test_a_slow_close_on_the_network_leaves_a_working_server_healthy(
    postgres: PostgresCluster, database: str
) -> None:
    changes: list[StorageHealth] = []
    async with through_proxy(postgres, database) as (url, control):
        # Every close (FIN) held 5 s, ten times the probe's timeout: the server still
        # answers at once, only sockets take long to finish closing.
        await control.add_fault({"what": {"kind": "slow-close", "seconds": 5}})
        cfg = config(url, probe_interval_s=0.1, probe_timeout_s=0.5)
        async with started(cfg, on_change=changes.append) as db:

            async def closes_held() -> int:
                """Connections whose close the proxy held back: the probes' own."""
                return len({entry.connection for entry in await control.journal(kind="fault")})

            # Probe after probe, or until the first to time out.
            for _ in range(100):
                if await closes_held() >= 3 or db.health().state != "healthy":
                    break
                await asyncio.sleep(0.05)
            assert db.health().state == "healthy", db.health().reason
            assert await closes_held() >= 3
            assert await db.fetchval("select 1") == 1
            await control.clear_faults()  # so that closing the pool need not wait either
    assert [change.state for change in changes] == ["healthy", "unhealthy"]  # start, close


async def test_asyncpg_restoring_its_floor_in_an_outage_logs_one_line_not_a_traceback(
    postgres: PostgresCluster, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    def floor_records() -> list[logging.LogRecord]:
        return [record for record in caplog.records if record.name == "asyncpg.pool"]

    async with (
        through_proxy(postgres, database) as (url, control),
        started(config(url, min_size=1)) as db,
    ):
        # The server goes away: the idle floor connection is cut, new ones refused.
        await control.add_fault({"what": {"kind": "refuse"}})
        await control.add_fault({"what": {"kind": "cut"}})
        await eventually(lambda: db.health().state == "unhealthy", within=2, what="down")
        # asyncpg tries to reopen its floor at once, then after 1 s, 2 s, ...
        await eventually(lambda: len(floor_records()) >= 2, within=4, what="two retries")
        await control.clear_faults()
        await eventually(lambda: db.health().state != "unhealthy", within=3, what="back")
    assert "Traceback" not in caplog.text
    for record in floor_records():
        assert record.exc_info is None
        assert record.getMessage().startswith(
            "Failed to restore the pool connection floor; retrying — could not connect to "
            f"{db.server} (Connection"  # reset by the proxy, or a closed connection
        )
        assert "\n" not in record.getMessage()
    assert not shows_a_secret(caplog.text)


# -- close ------------------------------------------------------------------------------------


async def test_close_waits_for_connections_in_use_then_refuses_everything(database: str) -> None:
    db = PoolManager(config(database))
    await db.start()
    release = asyncio.Event()
    inside = asyncio.Event()

    async def hold() -> int:
        async with db.connection() as conn:
            inside.set()
            await release.wait()
            value: int = await conn.fetchval("select 7")
            return value

    holder = asyncio.create_task(hold())
    await inside.wait()
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0.1)
    assert not closing.done()  # graceful: the holder is still at work
    with pytest.raises(PoolClosedError):
        await db.fetchval("select 1")  # but nobody new gets in
    release.set()
    assert await holder == 7
    await asyncio.wait_for(closing, 2)
    for call in (db.fetchval("select 1"), db.execute("select 1")):
        with pytest.raises(PoolClosedError):
            await call
    assert db.health().state == "unhealthy"
    assert db.stats().total == 0


async def test_close_gives_up_on_a_stuck_holder_after_its_timeout(database: str) -> None:
    db = PoolManager(config(database, close_timeout_s=0.3))
    await db.start()
    inside = asyncio.Event()

    async def stuck() -> None:
        async with db.connection() as conn:
            inside.set()
            await asyncio.sleep(1)
            await conn.fetchval("select 1")

    holder = asyncio.create_task(stuck())
    await inside.wait()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await db.close()
    assert loop.time() - began < 1
    with pytest.raises(PoolClosedError):
        await holder


# -- migrations -------------------------------------------------------------------------------


async def tables(db: PoolManager) -> set[str]:
    rows = await db.fetch("select tablename from pg_tables where schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def test_migrations_create_the_schema_once(database: str) -> None:
    async with started(config(database)) as db:
        applied = await apply_migrations(db)
        assert [m.file_name for m in applied] == ["0001_initial.sql", "0002_opportunities.sql"]
        assert await tables(db) == TABLES | {"schema_migrations"}
        assert await apply_migrations(db) == []
        rows = await db.fetch("select version, name from schema_migrations")
        assert [(row["version"], row["name"]) for row in rows] == [
            (1, "initial"),
            (2, "opportunities"),
        ]
        # Replays after an outage are idempotent by the system's sequence number.
        insert = (
            "insert into quote_snapshots (seq, code, price, volume, at) "
            "values ($1, $2, $3, $4, $5) on conflict (seq) do nothing"
        )
        for _ in range(2):
            await db.execute(insert, 1, "005930", 71_000, 10, 1.5)
        assert await db.fetchval("select count(*) from quote_snapshots") == 1


async def test_concurrent_migrations_apply_each_file_once(database: str) -> None:
    async with started(config(database)) as one, started(config(database)) as two:
        results = await asyncio.gather(apply_migrations(one), apply_migrations(two))
        assert sorted(len(applied) for applied in results) == [0, 2]
        assert await one.fetchval("select count(*) from schema_migrations") == 2
        assert await tables(one) == TABLES | {"schema_migrations"}


async def test_a_failing_migration_applies_nothing_of_itself(database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_initial.sql").write_text(load_migrations()[0].sql)
    (tmp_path / "0002_broken.sql").write_text(
        "create table half_done (n int);\ncreate tabel oops ();\n"
    )
    async with started(config(database)) as db:
        with pytest.raises(MigrationError, match=r"0002_broken\.sql failed.*nothing of it"):
            await apply_migrations(db, load_migrations(tmp_path))
        assert "half_done" not in await tables(db)
        versions = await db.fetch("select version from schema_migrations")
        assert [row["version"] for row in versions] == [1]


async def test_a_renamed_applied_migration_is_refused(database: str, tmp_path: Path) -> None:
    async with started(config(database)) as db:
        await apply_migrations(db)
        (tmp_path / "0001_renamed.sql").write_text("select 1;")
        with pytest.raises(MigrationError, match="records migration 0001 as 'initial'"):
            await apply_migrations(db, load_migrations(tmp_path))
