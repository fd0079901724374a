"""The feed's control plane and approval-key policy, in process (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from mocks.broker import BrokerConfig, create_app
from mocks.control_client import ControlError, FeedControl
from mocks.faults import FeedFaultRule
from mocks.feed import FeedConfig, create_feed_app
from tests.unit.mocks.conftest import APPKEY, APPSECRET, client_for


def control_for(app: FastAPI) -> FeedControl:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return FeedControl("http://feed.test", transport=transport)


@pytest.fixture
async def control() -> AsyncIterator[FeedControl]:
    async with control_for(create_feed_app(FeedConfig(seed=4))) as client:
        yield client


async def test_feed_rules_go_in_and_come_back_with_counters(control: FeedControl) -> None:
    stored = await control.add_fault(
        {"id": "drop-one", "where": {"tr_key": "005930"}, "what": {"kind": "gap"}}
    )
    assert stored == FeedFaultRule.model_validate(
        {"id": "drop-one", "where": {"tr_key": "005930"}, "what": {"kind": "gap"}}
    )
    second = await control.add_fault(FeedFaultRule.model_validate({"what": {"kind": "stall"}}))
    assert second.id == "rule-2"
    assert [(r["id"], r["what"]["kind"], r["matched"]) for r in await control.faults()] == [
        ("drop-one", "gap", 0),
        ("rule-2", "stall", 0),
    ]
    await control.remove_fault("drop-one")
    assert [r["id"] for r in await control.faults()] == ["rule-2"]
    await control.reset()
    assert await control.faults() == []


async def test_the_feed_plane_refuses_http_rules_with_a_reason(control: FeedControl) -> None:
    response = await control._http.post("/faults", json={"what": {"kind": "error"}})
    assert response.status_code == 422
    assert "does not match any of the expected tags" in response.json()["detail"]
    assert "'stall'" in response.json()["detail"]


async def test_the_broker_plane_still_refuses_feed_rules() -> None:
    async with client_for(create_app(BrokerConfig())) as http:
        response = await http.post("/_squall/faults", json={"what": {"kind": "stall"}})
        assert response.status_code == 422
        assert "'stall'" in response.json()["detail"]


async def test_journal_config_and_connections_of_an_idle_feed(control: FeedControl) -> None:
    assert await control.journal() == []
    assert await control.connections() == []
    config = await control.config()
    assert (config["seed"], config["ping_interval_s"], config["approvals"]) == (4, 100.0, "uuid")
    response = await control._http.get("/journal", params={"since": -1})
    assert response.status_code == 422
    with pytest.raises(ControlError, match="422"):
        await control.journal(connection=0)
    with pytest.raises(ControlError, match=r"query\.kind: Input should be 'connect', "):
        await control.journal(kind="frames")  # a typo is an error, not an empty journal


def test_issued_keys_need_the_brokers_registry() -> None:
    with pytest.raises(ValueError, match=r"approvals=<broker app>\.state\.broker\.tokens"):
        create_feed_app(FeedConfig(approval_keys="issued"))


async def test_the_broker_registers_each_approval_key_with_its_app_key() -> None:
    broker = create_app(BrokerConfig(seed=2))
    registry = broker.state.broker.tokens.approvals
    body = {"grant_type": "client_credentials", "appkey": APPKEY, "secretkey": APPSECRET}
    async with client_for(broker) as http:
        first = (await http.post("/oauth2/Approval", json=body)).json()["approval_key"]
        second = (await http.post("/oauth2/Approval", json=body)).json()["approval_key"]
        assert first != second
        assert (registry.appkey_of(first), registry.appkey_of(second)) == (APPKEY, APPKEY)
        assert registry.appkey_of("00000000-0000-0000-0000-000000000000") is None
        feed = create_feed_app(FeedConfig(seed=2), approvals=registry)
        async with control_for(feed) as control:
            assert (await control.config())["approvals"] == "issued"
        await http.post("/_squall/reset")
    assert broker.state.broker.tokens.approvals is registry  # emptied in place, still shared
    assert len(registry) == 0


async def test_a_feed_on_the_brokers_registry_says_so_before_any_key_is_issued() -> None:
    broker = create_app(BrokerConfig())
    feed = create_feed_app(FeedConfig(), approvals=broker.state.broker.tokens.approvals)
    async with control_for(feed) as control:
        assert (await control.config())["approvals"] == "issued"
