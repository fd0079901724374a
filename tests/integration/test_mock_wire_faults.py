"""Faults below HTTP need a real socket: each is seen by a real client as it would be in prod."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mocks.broker import BrokerConfig, create_app
from mocks.control_client import BrokerControl
from mocks.server import PortInUse, serve

APPKEY = "PSwire" + "w" * 30
APPSECRET = "w" * 180
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
QUERY = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


@pytest.fixture
async def wired() -> AsyncIterator[tuple[httpx.AsyncClient, BrokerControl, dict[str, str]]]:
    async with (
        serve(create_app(BrokerConfig(requests_per_second=1000))) as server,
        httpx.AsyncClient(base_url=server.url, timeout=2) as http,
        BrokerControl(server.url) as control,
    ):
        token = await http.post(
            "/oauth2/tokenP",
            json={"grant_type": "client_credentials", "appkey": APPKEY, "appsecret": APPSECRET},
        )
        headers = {
            "authorization": f"Bearer {token.json()['access_token']}",
            "appkey": APPKEY,
            "appsecret": APPSECRET,
            "tr_id": "FHKST01010100",
        }
        yield http, control, headers


async def fault(control: BrokerControl, what: dict[str, Any]) -> None:
    await control.add_fault({"where": {"path": PRICE}, "what": what, "when": {"first": 1}})


async def test_reset_is_a_connection_reset(wired: Any) -> None:
    http, control, headers = wired
    await fault(control, {"kind": "reset"})
    with pytest.raises(httpx.ReadError):
        await http.get(PRICE, params=QUERY, headers=headers)
    assert (await http.get(PRICE, params=QUERY, headers=headers)).json()["rt_cd"] == "0"
    (entry, _) = await control.journal(path=PRICE)
    assert (entry.fault, entry.outcome, entry.status) == ("rule-1:reset", "reset", None)


async def test_close_is_an_empty_reply(wired: Any) -> None:
    http, control, headers = wired
    await fault(control, {"kind": "close"})
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await http.get(PRICE, params=QUERY, headers=headers)


async def test_truncated_body_is_an_incomplete_message(wired: Any) -> None:
    http, control, headers = wired
    await fault(control, {"kind": "truncated", "fraction": 0.3})
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message body"):
        await http.get(PRICE, params=QUERY, headers=headers)
    (entry,) = await control.journal(path=PRICE)
    assert (entry.outcome, entry.code) == ("truncated", "MCA00000")


async def test_hang_lasts_until_the_client_gives_up(wired: Any) -> None:
    http, control, headers = wired
    await fault(control, {"kind": "hang"})
    with pytest.raises(httpx.ReadTimeout):
        await http.get(PRICE, params=QUERY, headers=headers, timeout=0.3)
    (entry,) = await control.journal(path=PRICE)
    assert entry.outcome == "abandoned"
    assert entry.duration is not None
    assert entry.duration >= 0.25


async def test_drop_acts_but_the_answer_is_lost(wired: Any) -> None:
    http, control, headers = wired
    await fault(control, {"kind": "drop"})
    with pytest.raises(httpx.ReadTimeout):
        await http.get(PRICE, params=QUERY, headers=headers, timeout=0.3)
    (entry,) = await control.journal(path=PRICE)
    # The broker did answer (and would have booked an order); only the client never heard.
    assert (entry.outcome, entry.status, entry.code) == ("dropped", 200, "MCA00000")


async def test_delay_then_a_normal_answer(wired: Any) -> None:
    http, control, headers = wired
    await fault(control, {"kind": "delay", "seconds": 0.2})
    answer = await http.get(PRICE, params=QUERY, headers=headers)
    assert answer.json()["rt_cd"] == "0"
    assert answer.elapsed.total_seconds() >= 0.19


async def test_serving_on_a_taken_port_raises_port_in_use() -> None:
    async with serve(create_app()) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
            async with serve(create_app(), port=port):
                pass


async def test_the_date_header_is_real_time_though_the_server_never_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The served mock wakes only to stop (a wake-up is a clock jump on virtual time); the
    # Date header is brought up to date by the first request of each second instead.
    import mocks.server

    now = [1_800_000_000.0]  # 2027-01-15 08:00:00 UTC
    monkeypatch.setattr(mocks.server.time, "time", lambda: now[0])
    async with serve(create_app()) as server, httpx.AsyncClient(base_url=server.url) as http:
        first = (await http.get("/nothing")).headers["date"]
        now[0] += 61
        second = (await http.get("/nothing")).headers["date"]
    assert (first, second) == ("Fri, 15 Jan 2027 08:00:00 GMT", "Fri, 15 Jan 2027 08:01:01 GMT")
