"""The database part of a scenario's stack: PostgreSQL behind the TCP fault proxy.

One PostgreSQL server serves every scenario a process runs (a throwaway cluster started on
first use, ~1 s, and stopped at exit; or the server ``DATABASE_URL`` names). Each run gets a
fresh database of its own, dropped afterwards, so no run sees another's rows. The system
connects through the fault proxy, where the scenario's database faults strike; the harness
reads the database directly, so what it checks is what PostgreSQL holds, never what the
faulted path lets through.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

from harness.postgres import PostgresCluster, postgres_cluster
from mocks.control_client import ProxyControl
from mocks.proxy import ProxyConfig, serve_proxy

_shared: PostgresCluster | None = None
# The process that started ``_shared``. A process forked from it inherits the reference, not
# the ownership: were the child to use it and then close it (as a worker must before it
# exits), the parent's server would be gone under the parent's feet.
_owner: int | None = None
# A thread lock, not an asyncio one: every scenario runs in an event loop of its own.
_lock = threading.Lock()


def _start_shared() -> PostgresCluster:
    global _shared, _owner
    with _lock:
        if _shared is not None and _owner != os.getpid():
            _shared = None  # the parent's, inherited through fork: start our own
        if _shared is None:
            cluster = postgres_cluster()
            if cluster.managed:
                cluster.start()
            _shared, _owner = cluster, os.getpid()
        return _shared


async def shared_cluster() -> PostgresCluster:
    """The process's PostgreSQL, started on first use (its atexit hook stops it)."""
    return await asyncio.to_thread(_start_shared)


def close_shared_cluster() -> None:
    """Stop and remove the process's PostgreSQL now. A process that ends without running
    atexit hooks (a multiprocessing worker) must call this, or the server outlives it."""
    global _shared
    with _lock:
        if _shared is not None and _owner == os.getpid():
            _shared.close()
        _shared = None


@dataclass(frozen=True)
class Database:
    """One run's database: ``direct_url`` for the harness, ``proxied_url`` for the system
    (through the proxy that ``proxy`` controls). Both hold any password: never print them."""

    name: str
    direct_url: str
    proxied_url: str
    proxy: ProxyControl


@contextlib.asynccontextmanager
async def serve_database(seed: int) -> AsyncIterator[Database]:
    """A fresh database behind a fresh fault proxy, dropped (with its sessions) on exit."""
    cluster = await shared_cluster()
    name = f"squall_{secrets.token_hex(6)}"
    direct = await cluster.acreate_database(name)
    try:
        config = ProxyConfig(upstream_host=cluster.host, upstream_port=cluster.port, seed=seed)
        async with serve_proxy(config) as proxy, ProxyControl(proxy.control_url) as control:
            proxied = cluster.url_for(name, address=proxy.address)
            yield Database(name, direct, proxied, control)
    finally:
        await cluster.adrop_database(name)
