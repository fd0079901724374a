"""The whole system with a real PostgreSQL: what it stores, what /health and /api/orders
say, and how `squall system` refuses a database it cannot use (exit 2, password hidden)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from harness.postgres import PostgresCluster
from harness.stack import system_settings
from mocks.world import serve_world
from system.app import running_system
from system.broker import OrderRequest
from system.gateway import serve as serve_gateway
from system.storage import StorageSettings

PASSWORD = "hunter2-never-printed"


def with_password(url: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{PASSWORD}@{parts.hostname}:{parts.port}"
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))


@pytest.mark.parametrize("problem", ["no-such-database", "nothing-listening"])
def test_squall_system_refuses_a_database_it_cannot_use_without_printing_the_password(
    squall_exe: str, postgres: PostgresCluster, system_env: dict[str, str], problem: str
) -> None:
    url = with_password(postgres.url, "squall_nope")
    if problem == "nothing-listening":
        url = url.replace(f":{postgres.port}/", ":9/")
    result = subprocess.run(
        [squall_exe, "system", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            **system_env,
            "SQUALL_DATABASE_URL": url,
            "SQUALL_DB_CONNECT_TIMEOUT_S": "3",
        },
    )
    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert PASSWORD not in output
    assert "Traceback" not in output
    text = " ".join(result.stderr.split())
    assert "cannot open the database pool for postgresql://postgres:***@" in text
    if problem == "no-such-database":
        assert 'database "squall_nope" does not exist' in text
    else:
        assert "is the server running" in text


async def test_the_system_stores_its_orders_and_serves_them_with_its_health(
    postgres: PostgresCluster,
) -> None:
    database = await postgres.acreate_database("squall_system_storage")
    try:
        async with serve_world() as world:
            storage = StorageSettings.model_validate({"pool": {"url": database}})
            settings = dataclasses.replace(system_settings(world), storage=storage)
            async with (
                running_system(settings) as system,
                serve_gateway(system.app) as gateway,
                httpx.AsyncClient(base_url=gateway.url) as http,
            ):
                assert system.storage is not None
                await system.service.place_order(OrderRequest("st-1", "buy", "005930", 3))
                await system.storage.buffer.flush(10)
                orders = (await http.get("/api/orders")).json()["orders"]
                assert [(o["client_order_id"], o["state"]) for o in orders] == [("st-1", "acked")]
                health = (await http.get("/health")).json()
                assert health["storage"]["state"] == "healthy"
                counts = await system.storage.count_rows()
                assert counts["audit_events"] == 1
    finally:
        await postgres.adrop_database("squall_system_storage")
