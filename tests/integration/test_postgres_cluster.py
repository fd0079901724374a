"""The harness's throwaway PostgreSQL: made, used, restarted, torn down, or borrowed.

These tests make their own clusters (``PostgresCluster()``), never the session's, so they
can stop them and check that nothing is left behind.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import asyncpg
import pytest

from harness.postgres import (
    PostgresCluster,
    PostgresClusterError,
    PostgresNotInstalled,
    postgres_cluster,
)


async def can_connect(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError):  # refused, or no such database
        return False
    await conn.close()
    return True


async def test_a_cluster_starts_tuned_for_tests_and_asyncpg_connects() -> None:
    async with postgres_cluster(environ={}) as pg:
        assert pg.managed
        assert pg.password is not None
        assert len(pg.password) >= 24
        assert pg.url == f"postgresql://postgres:{pg.password}@127.0.0.1:{pg.port}/postgres"
        assert (pg.host, pg.url_for("x").rsplit("/", 1)[1]) == ("127.0.0.1", "x")
        # Over TCP the password is checked, as on a real server.
        wrong = pg.url_for("postgres", password="not-" + pg.password)
        assert wrong == pg.url.replace(pg.password, "not-" + pg.password)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(wrong, timeout=5)
        proxied = pg.url_for("x", address="127.0.0.1:1")
        assert proxied == f"postgresql://postgres:{pg.password}@127.0.0.1:1/x"
        base = pg.base_dir
        assert base is not None
        assert base.parent == Path("/tmp")
        if os.geteuid() == 0:  # initdb refuses root: the server runs as postgres
            assert base.stat().st_uid == pwd.getpwnam("postgres").pw_uid
        conn = await asyncpg.connect(pg.url)
        try:
            settings = {
                name: await conn.fetchval(f"show {name}")
                for name in (
                    "listen_addresses",
                    "unix_socket_directories",
                    "fsync",
                    "synchronous_commit",
                    "full_page_writes",
                    "server_encoding",
                    "lc_collate",
                )
            }
        finally:
            await conn.close()
        assert settings == {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(base),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "server_encoding": "UTF8",
            "lc_collate": "C.UTF-8",
        }
        url = pg.url
    assert not base.exists()
    assert not await can_connect(url)


async def test_stop_and_start_keep_the_port_and_the_data() -> None:
    with PostgresCluster() as pg:
        port = pg.port
        conn = await asyncpg.connect(pg.url)
        await conn.execute("create table kept (n int); insert into kept values (42)")
        await conn.close()

        pg.stop()
        assert not pg.running
        assert not await can_connect(pg.url)
        pg.stop()  # stopping a stopped server is fine

        await pg.astart()
        assert (pg.running, pg.port) == (True, port)
        conn = await asyncpg.connect(pg.url)
        assert await conn.fetchval("select n from kept") == 42
        await conn.close()
        pg.start()  # starting a running server is fine


async def test_create_database_gives_its_url_and_refuses_a_duplicate() -> None:
    with PostgresCluster() as pg:
        url = pg.create_database("squall_test")
        assert url == f"postgresql://postgres:{pg.password}@127.0.0.1:{pg.port}/squall_test"
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("select current_database()") == "squall_test"
        await conn.close()
        with pytest.raises(PostgresClusterError, match="already exists"):
            await pg.acreate_database("squall_test")
        assert await pg.acreate_database("squall_test", exist_ok=True) == url
        pg.drop_database("squall_test")
        pg.drop_database("squall_test")  # gone already: fine
        assert not await can_connect(url)
        with pytest.raises(PostgresClusterError, match="not usable"):
            pg.create_database("")


def test_a_missing_binary_names_the_package_and_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SQUALL_PG_BIN", "/nonexistent")
    before = set(Path("/tmp").glob("squall-pg-*"))
    with pytest.raises(PostgresNotInstalled) as caught, postgres_cluster():
        pass
    message = str(caught.value)
    assert "/nonexistent/initdb not found" in message
    assert "postgresql-15" in message
    assert "apt-get install -y postgresql-15" in message
    assert "SQUALL_PG_BIN" in message
    assert set(Path("/tmp").glob("squall-pg-*")) == before  # nothing made


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
async def test_teardown_stops_the_server_and_removes_the_directory_whatever_happened(
    error: type[BaseException],
) -> None:
    seen: list[PostgresCluster] = []

    def broken_test() -> None:
        with PostgresCluster() as pg:
            seen.append(pg)
            raise error("the test broke")

    with pytest.raises(error):
        broken_test()
    base, url = seen[0].base_dir, seen[0].url
    assert base is not None
    assert not base.exists()
    assert not await can_connect(url)


def test_a_failed_start_quotes_the_end_of_the_server_log() -> None:
    with PostgresCluster() as pg:
        pg.stop()
        with (pg.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("shared_buffers = banana\n")
        with pytest.raises(PostgresClusterError) as caught:
            pg.start()
    message = str(caught.value)
    assert f"did not start on 127.0.0.1:{pg.port}" in message
    assert "postgres.log" in message
    assert 'invalid value for parameter "shared_buffers": "banana"' in message


async def test_database_url_borrows_that_server_and_never_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with PostgresCluster() as real:
        # The throwaway server's password stands for staging's; it must never print.
        staging = real.url
        assert real.password is not None
        monkeypatch.setenv("DATABASE_URL", staging)
        with postgres_cluster() as pg:
            assert not pg.managed
            assert (pg.url, pg.host, pg.port) == (staging, "127.0.0.1", real.port)
            assert pg.base_dir is None  # no cluster of its own
            assert await can_connect(pg.url)
            assert pg.password == real.password
            assert real.password not in repr(pg)
            for action in (pg.stop, pg.start):
                with pytest.raises(PostgresClusterError) as caught:
                    action()
                assert "DATABASE_URL" in str(caught.value)
                assert real.password not in str(caught.value)
            assert pg.create_database("staging_scratch").endswith("/staging_scratch")
        assert real.running
        assert await can_connect(real.url)


def test_an_unreachable_or_malformed_database_url_says_what_to_check() -> None:
    # Nothing listens on port 1: the server named by DATABASE_URL cannot be reached.
    unreachable = PostgresCluster(external_url="postgresql://u:hunter2@127.0.0.1:1/x")
    with pytest.raises(PostgresClusterError) as caught:
        unreachable.create_database("squall_scratch")
    message = str(caught.value)
    assert "cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1:1/x" in message
    assert "to create database 'squall_scratch'" in message
    assert "check DATABASE_URL" in message
    assert "hunter2" not in message
    with pytest.raises(PostgresClusterError) as caught:
        PostgresCluster(external_url="postgresql://u:hunter2@127.0.0.1:notaport/x")
    assert "DATABASE_URL is not a usable PostgreSQL URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def _port_in_a_forked_worker() -> int:
    """A worker's shared cluster: its own, closed before the worker exits."""
    import asyncio

    from harness.database import close_shared_cluster, shared_cluster

    try:
        return asyncio.run(shared_cluster()).port
    finally:
        close_shared_cluster()


def test_a_forked_worker_never_closes_its_parents_shared_cluster() -> None:
    # Workers run scenarios and close the shared cluster before exiting (they skip atexit).
    # One forked after the parent started its own must start another, not stop the parent's.
    import asyncio
    import multiprocessing

    from harness.database import close_shared_cluster, shared_cluster

    parent = asyncio.run(shared_cluster())
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            child_port = pool.apply(_port_in_a_forked_worker)
        assert child_port != parent.port
        assert parent.running
        assert asyncio.run(shared_cluster()) is parent  # still the parent's, still serving
    finally:
        close_shared_cluster()
    assert not parent.running
