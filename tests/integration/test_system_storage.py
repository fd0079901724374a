"""The whole system with a real PostgreSQL: what it stores, what /health and /api/orders
say. (How `squall system` refuses a database it cannot use, exit 2 with the password hidden,
is the start-up scenarios' job: scenarios/storage/start-*.yaml.)"""

from __future__ import annotations

import dataclasses

import httpx

from harness.postgres import PostgresCluster
from harness.stack import system_settings
from mocks.world import serve_world
from system.app import running_system
from system.broker import OrderRequest
from system.gateway import serve as serve_gateway
from system.storage import StorageSettings


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
