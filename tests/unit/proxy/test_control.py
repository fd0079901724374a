"""The proxy's journal, control plane and typed client, its settings and address parsing,
in process (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mocks.control_client import ControlError, ProxyControl
from mocks.faults import ProxyFaultRule
from mocks.journal import ProxyJournal
from mocks.proxy import (
    FaultProxy,
    ProxyConfig,
    ProxyControlPlane,
    ProxyPortInUse,
    create_control_app,
    format_address,
    parse_address,
)
from mocks.server import PortInUse

CONFIG = ProxyConfig(upstream_host="127.0.0.1", upstream_port=5432, seed=9)


@pytest.fixture
def plane() -> ProxyControlPlane:
    return ProxyControlPlane(seed=CONFIG.seed)


@pytest.fixture
async def control(plane: ProxyControlPlane) -> AsyncIterator[ProxyControl]:
    app = create_control_app(plane, FaultProxy(CONFIG, plane))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with ProxyControl("http://proxy.test", transport=transport) as client:
        yield client


def test_the_journal_filters_by_kind_connection_how_and_fault() -> None:
    journal = ProxyJournal()
    journal.record(at=0.0, connection=1, kind="connect")
    journal.record(at=0.1, connection=1, kind="fault", direction="upstream", fault="db:a:latency")
    journal.record(at=0.2, connection=2, kind="connect")
    journal.record(at=0.3, connection=2, kind="fault", fault="cut-1:cut")
    journal.record(
        at=0.3,
        connection=2,
        kind="disconnect",
        closed_by="proxy",
        how="cut",
        upstream_bytes=10,
        downstream_bytes=20,
    )
    assert [e.seq for e in journal.entries(kind="connect")] == [1, 3]
    assert [e.seq for e in journal.entries(connection=2)] == [3, 4, 5]
    assert [e.seq for e in journal.entries(how="cut")] == [5]
    assert [e.seq for e in journal.entries(fault="db:a")] == [2]  # a rule id with colons
    assert [e.seq for e in journal.entries(fault="cut-1:cut")] == [4]
    assert [e.seq for e in journal.entries(since=3, limit=1)] == [4]
    assert journal.entries(how="cut")[0].to_json() == {
        "seq": 5,
        "at": 0.3,
        "connection": 2,
        "kind": "disconnect",
        "direction": None,
        "fault": None,
        "closed_by": "proxy",
        "how": "cut",
        "upstream_bytes": 10,
        "downstream_bytes": 20,
        "detail": None,
    }


async def test_rules_go_in_come_back_and_go_away(control: ProxyControl) -> None:
    stored = await control.add_fault(
        {"id": "slow-db", "what": {"kind": "latency", "seconds": 0.5}, "when": {"for": 10}}
    )
    assert stored.id == "slow-db"
    assert stored.when.until is not None  # ``for`` pinned to clock readings
    second = await control.add_fault(ProxyFaultRule.model_validate({"what": {"kind": "cut"}}))
    assert second.id == "rule-2"
    listed = await control.faults()
    assert [(r["id"], r["what"]["kind"], r["matched"], r["applied"]) for r in listed] == [
        ("slow-db", "latency", 0, 0),
        ("rule-2", "cut", 0, 0),
    ]
    await control.remove_fault("slow-db")
    assert [r["id"] for r in await control.faults()] == ["rule-2"]
    with pytest.raises(ControlError) as missing:
        await control.remove_fault("slow-db")
    assert missing.value.status == 404
    await control.reset()
    assert await control.faults() == []


async def test_the_plane_refuses_other_mocks_rules_with_a_reason(control: ProxyControl) -> None:
    response = await control._http.post("/faults", json={"what": {"kind": "gap"}})
    assert response.status_code == 422
    assert "'latency'" in response.json()["detail"]
    response = await control._http.post(
        "/faults", json={"what": {"kind": "reset"}, "where": {"direction": "upstream"}}
    )
    assert response.status_code == 422
    assert "remove where.direction" in response.json()["detail"]


async def test_journal_connections_config_and_clock_are_served(
    control: ProxyControl, plane: ProxyControlPlane
) -> None:
    plane.journal.record(at=1.5, connection=1, kind="connect")
    plane.journal.record(at=2.0, connection=1, kind="disconnect", closed_by="client", how="fin")
    entries = await control.journal(how="fin")
    assert [(e.connection, e.kind, e.closed_by) for e in entries] == [(1, "disconnect", "client")]
    with pytest.raises(ControlError, match=r"query\.how: Input should be 'fin', "):
        await control.journal(how="rst")  # a typo is an error, not an empty journal
    assert await control.connections() == []
    config = await control.config()
    assert (config["upstream_host"], config["upstream_port"], config["seed"]) == (
        "127.0.0.1",
        5432,
        9,
    )
    assert (await control.health())["mock"] == "proxy"
    assert await control.now() >= 0


async def test_the_client_checks_a_rule_before_sending_it(control: ProxyControl) -> None:
    with pytest.raises(ValueError, match="bytes_per_second"):
        await control.add_fault({"what": {"kind": "bandwidth"}})


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:5432", ("127.0.0.1", 5432)),
        ("localhost:6379", ("localhost", 6379)),
        ("db.internal:1", ("db.internal", 1)),
        ("[::1]:5432", ("::1", 5432)),
    ],
)
def test_addresses_parse(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address
    assert format_address(*address) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5432", "expected HOST:PORT"),
        ("localhost", "expected HOST:PORT"),
        (":5432", "expected HOST:PORT"),
        ("localhost:", "expected HOST:PORT"),
        ("localhost:http", "not a number from 1 to 65535"),
        ("localhost:0", "not a number from 1 to 65535"),
        ("localhost:70000", "not a number from 1 to 65535"),
        ("::1:5432", "brackets"),
        ("[]:5432", "the host is empty"),
    ],
)
def test_a_malformed_address_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def test_a_taken_port_names_the_option_that_picks_another() -> None:
    error = ProxyPortInUse("127.0.0.1", 5432, "--listen")
    assert isinstance(error, PortInUse)
    assert error.strerror is not None
    assert "port 5432 on 127.0.0.1 is already in use" in error.strerror
    assert "--listen 0 picks a free one" in error.strerror
    assert "--port" not in str(error)


def test_settings_are_strict() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        ProxyConfig.model_validate({"upstream_host": "h", "upstream_port": 1, "listen": 5})
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        ProxyConfig(upstream_host="h", upstream_port=70000)
    assert CONFIG.upstream == "127.0.0.1:5432"
