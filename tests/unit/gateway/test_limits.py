"""The gateway's body limit (413 before a body is held whole) and its settings; the
limits on request heads and WebSocket messages need real sockets (tests/integration/
test_limits.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from system.broker import SettingsError
from system.gateway import Gateway, GatewaySettings
from system.gateway.limits import BodyLimit
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeService

TOKEN = "op-Zq8wJ1mV4rT7yB2nK5xC"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
LIMIT = 2048


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()


@pytest.fixture
async def http(desk: FakeDesk) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(operator_token=TOKEN, max_body_bytes=LIMIT)
    gateway = Gateway(FakeService(), FakeFeed(), settings, kill_switch=desk)
    transport = httpx.ASGITransport(gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client


def padded(size: int) -> bytes:
    """A valid kill-switch command of exactly ``size`` bytes (JSON allows the spaces)."""
    command = b'{"engaged": true}'
    return command + b" " * (size - len(command))


async def in_pieces(body: bytes, piece: int = 512) -> AsyncIterator[bytes]:
    """``body`` as a chunked upload: no Content-Length, the gateway must count."""
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


async def test_a_body_at_the_limit_is_taken(http: httpx.AsyncClient, desk: FakeDesk) -> None:
    response = await http.post("/api/kill-switch", content=padded(LIMIT), headers=HEADERS)
    assert response.status_code == 200, response.text
    assert desk.calls == [("engage", desk.calls[0][1], "operator")]


async def test_a_declared_length_over_the_limit_is_413_before_anything_else(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    # No token: the size is refused first, before the body is read or the sender checked.
    response = await http.post("/api/kill-switch", content=padded(LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {
        "error": f"the request body is {LIMIT + 1} bytes; this gateway takes at most {LIMIT} "
        "bytes (SQUALL_GATEWAY_MAX_BODY_BYTES): send a smaller body"
    }
    assert desk.calls == []


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    body = in_pieces(padded(LIMIT + 1))
    response = await http.post("/api/kill-switch", content=body, headers=HEADERS)
    assert response.status_code == 413
    assert response.json()["error"].startswith(f"the request body passed {LIMIT} bytes; ")
    assert desk.calls == []


async def test_a_chunked_body_under_the_limit_goes_through(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    response = await http.post(
        "/api/kill-switch", content=in_pieces(padded(LIMIT)), headers=HEADERS
    )
    assert response.status_code == 200, response.text
    assert len(desk.calls) == 1


class Command(BaseModel):
    engaged: bool


async def test_a_route_that_answers_its_own_error_is_still_413() -> None:
    # FastAPI reads a model's body itself and turns a failure to read it into a 400.
    app = FastAPI()

    @app.post("/command")
    async def command(body: Command) -> dict[str, bool]:
        return {"engaged": body.engaged}

    transport = httpx.ASGITransport(BodyLimit(app, max_body_bytes=64))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        json = {"Content-Type": "application/json"}
        ok = await client.post("/command", content=in_pieces(b'{"engaged": true}', 4), headers=json)
        too_long = await client.post(
            "/command", content=in_pieces(b" " * 65 + b"{}", 4), headers=json
        )
    assert (ok.status_code, ok.json()) == (200, {"engaged": True})
    assert too_long.status_code == 413
    assert too_long.json()["error"].startswith("the request body passed 64 bytes; ")


async def test_websocket_and_lifespan_scopes_pass_untouched() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(str(scope["type"]))

    limited = BodyLimit(app, max_body_bytes=1)  # type: ignore[arg-type]
    for kind in ("websocket", "lifespan"):
        await limited({"type": kind, "headers": []}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket", "lifespan"]


def test_the_limits_default_to_the_documented_values() -> None:
    settings = GatewaySettings()
    assert (settings.max_message_bytes, settings.max_frame_bytes) == (4096, 64 * 1024)
    assert (settings.max_body_bytes, settings.max_header_bytes) == (64 * 1024, 16 * 1024)


def test_the_limits_are_read_from_the_environment() -> None:
    settings = GatewaySettings.from_env(
        environ={
            "SQUALL_GATEWAY_MAX_FRAME_BYTES": "131072",
            "SQUALL_GATEWAY_MAX_BODY_BYTES": "4096",
            "SQUALL_GATEWAY_MAX_HEADER_BYTES": "8192",
        }
    )
    assert (settings.max_frame_bytes, settings.max_body_bytes) == (131072, 4096)
    assert settings.max_header_bytes == 8192


def test_a_frame_limit_under_the_message_limit_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match=r"at least max_message_bytes \(8192\)"):
        GatewaySettings(max_message_bytes=8192, max_frame_bytes=4096)
    with pytest.raises(SettingsError, match="SQUALL_GATEWAY_MAX_BODY_BYTES"):
        GatewaySettings.from_env(environ={"SQUALL_GATEWAY_MAX_BODY_BYTES": "10"})
