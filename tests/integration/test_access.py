"""Who may do what, over real sockets: every refusal of issue 9's access rules, proved.

- The mocks and the proxy listen on loopback unless told otherwise.
- A control plane without a control token answers loopback callers only; with one, it
  requires the token from everyone (compared in constant time: ``hmac.compare_digest``).
- The gateway's mutating routes need the operator token; its reads don't; the dashboard's
  page and assets never hold the token.

A caller from elsewhere is this machine's own non-loopback address, when it has one.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from harness import cli
from mocks.broker import BrokerConfig, create_app
from mocks.control import TOKEN_HEADER
from mocks.proxy import ProxyConfig
from mocks.server import serve
from system.broker.models import OrderAck, OrderRequest
from system.dashboard import assets
from system.gateway import Gateway, GatewaySettings
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeService

CONTROL_TOKEN = "ctl-access-5Hq2mW8rZ1xK"
OPERATOR_TOKEN = "op-access-9Lp3nV6tY2cJ"


def _outside_address() -> str | None:
    """An address of this machine that is not loopback: a caller from "elsewhere"."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.fixture
def outside() -> str:
    address = _outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to call from elsewhere")
    return address


def test_every_mock_listens_on_loopback_by_default() -> None:
    for command in (cli.mock_broker, cli.mock_feed, cli.mock_proxy, cli.system_command):
        host = inspect.signature(command).parameters["host"].default
        assert host == "127.0.0.1", f"{command.__name__} listens on {host} by default"
    assert ProxyConfig(upstream_host="127.0.0.1", upstream_port=1).listen_host == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


@pytest.fixture
async def open_broker() -> AsyncIterator[int]:
    """A mock broker listening on every interface, without a control token."""
    async with serve(create_app(BrokerConfig()), "0.0.0.0", 0) as server:
        yield int(server.url.rsplit(":", 1)[1])


@pytest.fixture
async def guarded_broker() -> AsyncIterator[int]:
    app = create_app(BrokerConfig(), control_token=CONTROL_TOKEN)
    async with serve(app, "0.0.0.0", 0) as server:
        yield int(server.url.rsplit(":", 1)[1])


async def test_without_a_token_the_control_plane_answers_loopback_only(
    open_broker: int, outside: str
) -> None:
    rule = {"what": {"kind": "error", "code": "EGW00201"}}
    async with httpx.AsyncClient(base_url=f"http://{outside}:{open_broker}") as remote:
        refused = await remote.post("/_squall/faults", json=rule)
        assert refused.status_code == 403
        assert "loopback clients only" in refused.json()["detail"]
        assert outside in refused.json()["detail"]
        # The broker's own API is for everyone: only its control plane is guarded.
        issued = await remote.post("/oauth2/tokenP", json={"grant_type": "client_credentials"})
        assert "loopback" not in issued.text
        assert issued.json()["error_code"] == "EGW00103"  # judged on its credentials
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{open_broker}") as local:
        assert (await local.get("/_squall/faults")).json() == []  # the refusal changed nothing
        assert (await local.post("/_squall/faults", json=rule)).status_code == 201


async def test_with_a_token_the_control_plane_requires_it_from_everyone(
    guarded_broker: int, outside: str
) -> None:
    for host in ("127.0.0.1", outside):
        async with httpx.AsyncClient(base_url=f"http://{host}:{guarded_broker}") as http:
            for given in (None, "", CONTROL_TOKEN[:-1], CONTROL_TOKEN + "x", "ctl-é".encode()):
                headers = {} if given is None else {TOKEN_HEADER: given}
                answer = await http.get("/_squall/faults", headers=headers)
                assert answer.status_code == 403, (host, given)
                assert CONTROL_TOKEN not in answer.text
            answer = await http.get("/_squall/faults", headers={TOKEN_HEADER: CONTROL_TOKEN})
            assert answer.status_code == 200, host


class Placer(FakeService):
    """A service that takes every order."""

    async def place_order(self, order: OrderRequest) -> OrderAck:
        return OrderAck(order.client_order_id, "0000012345", "91252", "090102")


@asynccontextmanager
async def _gateway() -> AsyncIterator[tuple[httpx.AsyncClient, FakeDesk]]:
    desk = FakeDesk()
    gateway = Gateway(
        Placer({"005930": 80100}),
        FakeFeed(),
        GatewaySettings(operator_token=OPERATOR_TOKEN),
        kill_switch=desk,
    )
    transport = httpx.ASGITransport(gateway.app, client=("127.0.0.1", 40000))
    await gateway.start()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http, desk
    finally:
        await gateway.stop()


MUTATING = [
    ("POST", "/api/kill-switch", {"engaged": True, "detail": "drill"}),
    ("POST", "/api/kill-switch", {"engaged": False}),  # releasing a halt
    (
        "POST",
        "/api/orders",
        {"client_order_id": "a-1", "side": "buy", "code": "005930", "quantity": 1},
    ),
]
READS = ["/health", "/metrics", "/api/kill-switch", "/api/trading", "/api/quotes/005930", "/"]


@pytest.mark.parametrize(("method", "path", "body"), MUTATING)
async def test_every_mutating_route_needs_the_operator_token(
    method: str, path: str, body: dict[str, object]
) -> None:
    async with _gateway() as (http, desk):
        for authorization in (None, "Bearer wrong-token-123", f"Basic {OPERATOR_TOKEN}"):
            headers = {} if authorization is None else {"authorization": authorization}
            answer = await http.request(method, path, json=body, headers=headers)
            assert answer.status_code == 401, (authorization, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert OPERATOR_TOKEN not in answer.text
        assert desk.calls == []
        granted = await http.request(
            method, path, json=body, headers={"authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        assert granted.status_code < 400, granted.text


@pytest.mark.parametrize("path", READS)
async def test_reads_need_no_token(path: str) -> None:
    async with _gateway() as (http, _):
        answer = await http.get(path)
    assert answer.status_code < 400, answer.text


async def test_the_dashboard_never_holds_the_operator_token() -> None:
    async with _gateway() as (http, _):
        for path in assets():
            page = await http.get(path)
            assert page.status_code == 200, path
            assert OPERATOR_TOKEN not in page.text, f"{path} holds the operator token"
