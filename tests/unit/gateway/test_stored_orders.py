"""GET /api/orders and the storage parts of /health and /metrics, around a fake storage (no
database)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from system.gateway import Gateway, GatewaySettings
from system.health import Health
from system.storage import metric_names as storage_metric_names
from system.storage.errors import DatabaseUnavailable, PoolTimeoutError, StorageError
from system.storage.health import PoolStats
from tests.unit.gateway.fakes import FakeFeed, FakeService

pytestmark = pytest.mark.looptime

ORDER = {"client_order_id": "o-1", "code": "005930", "state": "acked", "seq": 3}


class FakeStorage:
    def __init__(self) -> None:
        self.failure: StorageError | None = None
        self.state = Health("healthy")
        self.limits: list[int] = []

    async def recent_orders(self, limit: int = 50) -> list[dict[str, object]]:
        self.limits.append(limit)
        if self.failure is not None:
            raise self.failure
        return [ORDER]

    def health(self) -> Health:
        return self.state

    def metrics(self) -> dict[str, float]:
        # Every name the real Storage reports, each with a value of its own.
        return {name: float(n) for n, name in enumerate(storage_metric_names(), start=1)}


@pytest.fixture
async def parts() -> AsyncIterator[tuple[Gateway, FakeStorage, httpx.AsyncClient]]:
    storage = FakeStorage()
    gateway = Gateway(
        FakeService({"005930": 80100}), FakeFeed(), GatewaySettings(), storage=storage
    )
    await gateway.start()
    transport = httpx.ASGITransport(gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield gateway, storage, http
    await gateway.stop()


async def test_stored_orders_are_served(
    parts: tuple[Gateway, FakeStorage, httpx.AsyncClient],
) -> None:
    _, storage, http = parts
    response = await http.get("/api/orders", params={"limit": "7"})
    assert response.status_code == 200
    assert response.json() == {"orders": [ORDER]}
    assert storage.limits == [7]


async def test_a_pool_timeout_is_503_with_retry_after_and_the_pool_state(
    parts: tuple[Gateway, FakeStorage, httpx.AsyncClient],
) -> None:
    _, storage, http = parts
    stats = PoolStats(total=5, active=5, idle=0, waiting=12, max_size=5)
    storage.failure = PoolTimeoutError(
        server="127.0.0.1:5432/squall", waited_s=2.0, stats=stats, retry_after_s=1.4
    )
    response = await http.get("/api/orders")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"  # whole seconds, rounded up
    message = response.json()["error"]
    assert "5 total, 5 active" in message
    assert "12 waiting" in message
    assert "SQUALL_DB_MAX_SIZE" in message


async def test_an_unreachable_database_is_503_with_retry_after(
    parts: tuple[Gateway, FakeStorage, httpx.AsyncClient],
) -> None:
    _, storage, http = parts
    storage.failure = DatabaseUnavailable("PostgreSQL at db:5432 is unreachable")
    response = await http.get("/api/orders")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "unreachable" in response.json()["error"]


@pytest.mark.parametrize("limit", ["0", "501", "ten", "-1", "²", "9" * 5000])
async def test_a_bad_limit_is_400_and_says_the_range(
    parts: tuple[Gateway, FakeStorage, httpx.AsyncClient], limit: str
) -> None:
    _, storage, http = parts
    response = await http.get("/api/orders", params={"limit": limit})
    assert response.status_code == 400
    assert "from 1 to 500" in response.json()["error"]
    assert storage.limits == []


async def test_without_a_database_the_route_says_how_to_get_one() -> None:
    gateway = Gateway(FakeService({"005930": 80100}), FakeFeed(), GatewaySettings())
    await gateway.start()
    try:
        transport = httpx.ASGITransport(gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            response = await http.get("/api/orders")
    finally:
        await gateway.stop()
    assert response.status_code == 404
    assert "SQUALL_DATABASE_URL" in response.json()["error"]
    assert "storage" not in gateway.health().to_json()


async def test_unhealthy_storage_makes_health_503_and_says_why(
    parts: tuple[Gateway, FakeStorage, httpx.AsyncClient],
) -> None:
    gateway, storage, http = parts
    storage.state = Health("unhealthy", ("PostgreSQL at db:5432 is unreachable",))
    response = await http.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["state"] == "unhealthy"
    assert body["storage"] == {
        "state": "unhealthy",
        "reasons": ["PostgreSQL at db:5432 is unreachable"],
    }
    assert "PostgreSQL at db:5432 is unreachable" in body["reasons"]
    storage.state = Health("degraded", ("12 writes waiting",))
    assert gateway.health().state == "degraded"
    assert gateway.health().http_status == 200


async def test_metrics_include_every_storage_metric_with_help_and_type(
    parts: tuple[Gateway, FakeStorage, httpx.AsyncClient],
) -> None:
    _, storage, http = parts
    response = await http.get("/metrics")
    assert response.status_code == 200
    text = response.text.splitlines()
    assert "service_quotes_served 0.0" in text  # beside the others, not instead of them
    for name, value in storage.metrics().items():
        assert f"# HELP {name} storage metric {name}" in text
        assert f"# TYPE {name} gauge" in text
        assert f"{name} {value}" in text


async def test_without_a_database_metrics_have_no_storage_numbers() -> None:
    gateway = Gateway(FakeService(), FakeFeed(), GatewaySettings())
    transport = httpx.ASGITransport(gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert "service_quotes_served 0.0" in response.text.splitlines()
    assert "storage_" not in response.text
