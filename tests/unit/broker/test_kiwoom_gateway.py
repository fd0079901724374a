"""Kiwoom's dialect through the shared gateway: its token, its api-id, its codes, its paging.

The bodies and headers are written out as Kiwoom documents them (BROKER_FACTS.md), so a
mistake in the client's idea of the protocol cannot hide in shared code.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from system.broker import AuthExpired, BrokerRejected, RateLimited, TokenIssuanceFailed
from system.broker.clock import KST
from system.broker.gateway import BrokerGateway, Call
from system.broker.kiwoom import KiwoomSettings, KiwoomWire, kiwoom_token_issuer
from system.broker.kiwoom.oauth import lifetime
from system.broker.oauth import DEFAULT_TOKEN_LIFETIME_S
from system.broker.settings import SettingsError
from system.broker.wire import Counters

pytestmark = pytest.mark.looptime

BASE_URL = "https://kiwoom.test"
APPKEY = "KWunit" + "k" * 30
# Distinctive, so a leak into an error message is easy to spot.
SECRETKEY = "KwSeCrEt-" + "x" * 30 + "-NEVER-PRINT"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=KST)
STKINFO = "/api/dostk/stkinfo"


def settings(**overrides: Any) -> KiwoomSettings:
    values: dict[str, Any] = {"base_url": BASE_URL, "appkey": APPKEY, "secretkey": SECRETKEY}
    values.update(overrides)
    return KiwoomSettings(**values)


def token_ok(token: str, expires: datetime = NOW + timedelta(hours=24)) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "expires_dt": expires.strftime("%Y%m%d%H%M%S"),
            "token_type": "bearer",
            "token": token,
            "return_code": 0,
            "return_msg": "정상적으로 처리되었습니다",
        },
    )


def answer(code: int, message: str = "", status: int = 200, **fields: Any) -> httpx.Response:
    return httpx.Response(status, json={"return_code": code, "return_msg": message, **fields})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=BASE_URL) as client:
        yield client


def gateway(http: httpx.AsyncClient, **overrides: Any) -> BrokerGateway:
    config = settings(**overrides)
    counters = Counters()
    return BrokerGateway(
        config,
        http,
        random.Random(1),
        wire=KiwoomWire(),
        issue=kiwoom_token_issuer(config, http, counters, wall=lambda: NOW),
        counters=counters,
    )


def stock_info(code: str = "005930") -> Call:
    return Call("POST", STKINFO, tr_id="ka10001", content=json.dumps({"stk_cd": code}).encode())


async def test_a_tr_goes_out_with_its_api_id_and_the_token_kiwoom_issued(
    http: httpx.AsyncClient,
) -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        token = broker.post("/oauth2/token").mock(return_value=token_ok("kw-1"))
        tr = broker.post(STKINFO).mock(return_value=answer(0, "정상", stk_cd="005930"))
        reply = await gateway(http).exchange(stock_info())
    assert reply.body["stk_cd"] == "005930"
    sent = json.loads(token.calls.last.request.content)
    assert sent == {"grant_type": "client_credentials", "appkey": APPKEY, "secretkey": SECRETKEY}
    headers = tr.calls.last.request.headers
    assert (headers["api-id"], headers["authorization"]) == ("ka10001", "Bearer kw-1")
    assert "cont-yn" not in headers


@pytest.mark.parametrize("code", [8005, 8003, 8016])
async def test_a_token_the_broker_refuses_is_replaced_once(
    http: httpx.AsyncClient, code: int
) -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(side_effect=[token_ok("old"), token_ok("new")])
        tr = broker.post(STKINFO).mock(
            side_effect=[answer(code, "Token이 유효하지 않습니다", status=400), answer(0)]
        )
        await gateway(http, token_cooldown_s=0).exchange(stock_info())
    assert [c.request.headers["authorization"] for c in tr.calls] == ["Bearer old", "Bearer new"]


async def test_a_token_refused_twice_is_auth_expired(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(side_effect=[token_ok("a"), token_ok("b")])
        broker.post(STKINFO).mock(return_value=answer(8005, "Token이 유효하지 않습니다"))
        with pytest.raises(AuthExpired, match="8005"):
            await gateway(http, token_cooldown_s=0).exchange(stock_info())


async def test_1700_waits_for_the_budget_and_tries_again(http: httpx.AsyncClient) -> None:
    over = answer(1700, "허용된 요청 개수를 초과하였습니다. API ID=ka10001", status=429)
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token_ok("kw"))
        tr = broker.post(STKINFO).mock(side_effect=[over, answer(0)])
        gate = gateway(http)
        await gate.exchange(stock_info())
    assert tr.call_count == 2
    assert gate.counters.rate_limited_retries == 1


async def test_1700_past_the_retries_is_rate_limited(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token_ok("kw"))
        broker.post(STKINFO).mock(return_value=answer(1700, "허용된 요청 개수를 초과하였습니다"))
        with pytest.raises(RateLimited):
            await gateway(http, rate_limit_retries=1).exchange(stock_info())


async def test_any_other_code_is_the_brokers_refusal(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token_ok("kw"))
        broker.post(STKINFO).mock(return_value=answer(1902, "종목 정보가 없습니다"))
        with pytest.raises(BrokerRejected) as refused:
            await gateway(http).exchange(stock_info("999999"))
    assert refused.value.msg_cd == "1902"


async def test_a_refused_token_names_kiwooms_endpoint_and_code_never_the_secret(
    http: httpx.AsyncClient,
) -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=answer(8001, "App Key가 유효하지 않습니다"))
        with pytest.raises(TokenIssuanceFailed) as refused:
            await gateway(http).exchange(stock_info())
    message = str(refused.value)
    assert "POST /oauth2/token" in message
    assert "8001" in message
    assert SECRETKEY not in message


async def test_the_next_page_is_asked_with_cont_yn_and_the_next_key(
    http: httpx.AsyncClient,
) -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token_ok("kw"))
        tr = broker.post("/api/dostk/chart").mock(return_value=answer(0))
        call = Call("POST", "/api/dostk/chart", tr_id="ka10081", next_key="20260227")
        await gateway(http).exchange(call)
    headers = tr.calls.last.request.headers
    assert (headers["cont-yn"], headers["next-key"]) == ("Y", "20260227")


@pytest.mark.parametrize(
    ("expires_dt", "seconds"),
    [
        ("20260303090000", 86400.0),
        ("20260302093000", 1800.0),
        ("20260302085959", DEFAULT_TOKEN_LIFETIME_S),  # already past
        ("2026-03-03 09:00:00", DEFAULT_TOKEN_LIFETIME_S),  # not Kiwoom's shape
        (None, DEFAULT_TOKEN_LIFETIME_S),
    ],
)
def test_the_token_lives_until_expires_dt_on_the_kst_wall_clock(
    expires_dt: object, seconds: float
) -> None:
    assert lifetime(expires_dt, NOW) == seconds


def test_kiwooms_budget_is_five_a_second_real_and_one_on_the_mock_host() -> None:
    assert settings().budget_per_second == 5.0
    assert settings(profile="paper").budget_per_second == 1.0
    assert settings(requests_per_second=3).budget_per_second == 3.0


def test_missing_settings_name_the_variable_and_never_print_the_secret() -> None:
    with pytest.raises(SettingsError, match="SQUALL_KIWOOM_SECRETKEY"):
        KiwoomSettings.from_env(environ={"SQUALL_KIWOOM_BASE_URL": BASE_URL})
    config = KiwoomSettings.from_env(
        environ={
            "SQUALL_KIWOOM_BASE_URL": BASE_URL,
            "SQUALL_KIWOOM_APPKEY": APPKEY,
            "SQUALL_KIWOOM_SECRETKEY": SECRETKEY,
        }
    )
    assert SECRETKEY not in repr(config)
