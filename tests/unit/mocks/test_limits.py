"""The mocks' body limit (``mocks.limits.BodyLimit``, which ``mocks.server.serve`` puts in
front of every mock) around the mock broker, in process; over real sockets, with the limits
on heads and WebSocket messages, in tests/integration/test_limits.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mocks.broker import BrokerConfig, create_app
from mocks.limits import MAX_BODY_BYTES, BodyLimit

RULE = b'{"what": {"kind": "error", "status": 503}}'
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def broker() -> AsyncIterator[httpx.AsyncClient]:
    app = BodyLimit(create_app(BrokerConfig()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://b") as http:
        yield http


def padded(body: bytes, size: int) -> bytes:
    return body + b" " * (size - len(body))


async def in_pieces(body: bytes, piece: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


async def test_a_control_plane_takes_a_body_at_the_limit(broker: httpx.AsyncClient) -> None:
    body = padded(RULE, MAX_BODY_BYTES)
    response = await broker.post("/_squall/faults", content=body, headers=JSON)
    assert response.status_code == 201, response.text


async def test_a_declared_length_over_the_limit_is_413(broker: httpx.AsyncClient) -> None:
    size = MAX_BODY_BYTES + 1
    for path in ("/_squall/faults", "/oauth2/tokenP"):
        response = await broker.post(path, content=padded(RULE, size), headers=JSON)
        assert response.status_code == 413, path
        assert response.json() == {
            "detail": f"the request body is {size} bytes; the mock takes at most "
            f"{MAX_BODY_BYTES} bytes (mocks.limits.MAX_BODY_BYTES): send a smaller body"
        }
    assert (await broker.get("/_squall/faults")).json() == []


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    broker: httpx.AsyncClient,
) -> None:
    for path in ("/_squall/faults", "/oauth2/tokenP", "/uapi/hashkey"):
        body = in_pieces(padded(RULE, MAX_BODY_BYTES + 1))
        response = await broker.post(path, content=body, headers=JSON)
        assert response.status_code == 413, path
        assert response.json()["detail"].startswith(f"the request body passed {MAX_BODY_BYTES} ")
    assert (await broker.get("/_squall/faults")).json() == []
