"""A started Gateway around fakes, for tests of its glue (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from system.gateway import Gateway, GatewaySettings
from tests.unit.gateway.fakes import FakeFeed, FakeService


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    parts = Gateway(
        FakeService({"005930": 80100}),
        FakeFeed(),
        GatewaySettings(max_message_bytes=256, rest_fallback_interval_s=5),
    )
    await parts.start()
    yield parts
    await parts.stop()
