"""The broker's own rules, always on: token issuance, budgets, token validity, headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from tests.unit.mocks.conftest import APPKEY, APPSECRET, PRICE, SAMSUNG, Kis, client_for

EGW00133 = {
    "error_code": "EGW00133",
    "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
}


@pytest.mark.looptime
async def test_second_token_within_a_minute_gets_the_exact_egw00133(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app()) as http:
        kis = Kis(http)
        first = await kis.issue()
        assert first.status_code == 200
        body = first.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 86400
        assert len(body["access_token_token_expired"]) == len("YYYY-MM-DD HH:MM:SS")
        await asyncio.sleep(59.9)
        again = await kis.issue()
        assert again.status_code == 403
        assert again.json() == EGW00133


@pytest.mark.looptime
async def test_after_the_minute_the_same_token_comes_back_within_six_hours(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app()) as http:
        kis = Kis(http)
        first = (await kis.issue()).json()["access_token"]
        await asyncio.sleep(61)
        assert (await kis.issue()).json()["access_token"] == first
        await asyncio.sleep(6 * 3600)
        newer = await kis.issue()
        assert newer.status_code == 200
        assert newer.json()["access_token"] != first


@pytest.mark.looptime
async def test_tokens_expire_after_expires_in(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(token_ttl_s=120)) as http:
        kis = Kis(http)
        await kis.issue()
        assert (await kis.price()).json()["rt_cd"] == "0"
        await asyncio.sleep(121)
        expired = await kis.price()
        assert expired.status_code == 500
        assert expired.json() == {
            "rt_cd": "1",
            "msg_cd": "EGW00123",
            "msg1": "기간이 만료된 token 입니다.",
        }


async def test_unknown_token_is_egw00121(kis: Kis) -> None:
    kis.token = "not-a-token"
    answer = await kis.price()
    assert answer.status_code == 500
    assert answer.json() == {
        "rt_cd": "1",
        "msg_cd": "EGW00121",
        "msg1": "유효하지 않은 token 입니다.",
    }


async def test_nineteenth_request_in_one_second_is_egw00201(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app()) as http:
        kis = Kis(http)
        await kis.issue()
        # ASGI calls complete in well under a second; the loop clock says how long it took.
        loop = asyncio.get_running_loop()
        started = loop.time()
        codes = [(await kis.price()).json()["msg_cd"] for _ in range(19)]
        assert loop.time() - started < 1.0
        assert codes == ["MCA00000"] * 18 + ["EGW00201"]


@pytest.mark.looptime
async def test_budget_refills_after_the_window_and_paper_allows_one(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app(profile="paper")) as http:
        kis = Kis(http)
        await kis.issue()
        first, second = await kis.price(), await kis.price()
        assert (first.json()["msg_cd"], second.json()["msg_cd"]) == ("MCA00000", "EGW00201")
        await asyncio.sleep(1.0)
        assert (await kis.price()).json()["msg_cd"] == "MCA00000"


async def test_gateway_status_is_switchable(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(requests_per_second=1)
    async with client_for(app) as http:
        kis = Kis(http)
        await kis.issue()
        await kis.price()
        assert (await kis.price()).status_code == 500
        patched = await http.patch("/_squall/broker/config", json={"gateway_error_status": 200})
        assert patched.status_code == 200
        refused = await kis.price()
        assert refused.status_code == 200
        assert refused.json()["msg_cd"] == "EGW00201"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"appkey": ""}, "EGW00103"),
        ({"appkey": "short"}, "EGW00103"),
        ({"appsecret": "x" * 10}, "EGW00105"),
        ({"appsecret": "y" * 180}, "EGW00105"),  # not the secret this app key was issued with
        ({"authorization": ""}, "EGW00121"),
        ({"tr_id": ""}, "OPSQ0002"),
        ({"tr_id": "TTTC0012U"}, "OPSQ0002"),
    ],
)
async def test_wrong_headers_get_kis_errors_not_framework_422(
    kis: Kis, headers: dict[str, str], code: str
) -> None:
    sent = {**kis.headers("FHKST01010100"), **headers}
    answer = await kis.http.get(PRICE, params=SAMSUNG, headers=sent)
    assert answer.status_code == 500
    body = answer.json()
    assert body["rt_cd"] == "1"
    assert body["msg_cd"] == code


async def test_headers_are_case_insensitive(kis: Kis) -> None:
    sent = {
        "Authorization": f"Bearer {kis.token}",
        "appKey": APPKEY,
        "appSecret": APPSECRET,
        "TR_ID": "FHKST01010100",
    }
    answer = await kis.http.get(PRICE, params=SAMSUNG, headers=sent)
    assert answer.json()["rt_cd"] == "0"


async def test_lower_case_query_keys_are_accepted(kis: Kis) -> None:
    params = {"fid_cond_mrkt_div_code": "J", "fid_input_iscd": "005930"}
    answer = await kis.http.get(PRICE, params=params, headers=kis.headers("FHKST01010100"))
    assert answer.json()["rt_cd"] == "0"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"FID_COND_MRKT_DIV_CODE": "J"}, "OPSQ2001"),
        ({"FID_COND_MRKT_DIV_CODE": "Q", "FID_INPUT_ISCD": "005930"}, "OPSQ2001"),
        ({"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "5930"}, "OPSQ2001"),
        ({"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "999999"}, "KIOK0560"),
    ],
)
async def test_bad_query_is_a_business_rejection(
    kis: Kis, params: dict[str, str], code: str
) -> None:
    answer = await kis.http.get(PRICE, params=params, headers=kis.headers("FHKST01010100"))
    assert answer.status_code == 200
    assert (answer.json()["rt_cd"], answer.json()["msg_cd"]) == ("1", code)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"grant_type": "client_credentials", "appkey": "short", "appsecret": APPSECRET}, 403),
        ({"grant_type": "client_credentials", "appkey": APPKEY, "appsecret": "short"}, 403),
        ({"grant_type": "password", "appkey": APPKEY, "appsecret": APPSECRET}, 400),
        ("not json", 400),
    ],
)
async def test_token_request_validation(
    make_app: Callable[..., FastAPI], body: object, status: int
) -> None:
    async with client_for(make_app()) as http:
        if isinstance(body, str):
            answer = await http.post("/oauth2/tokenP", content=body)
        else:
            answer = await http.post("/oauth2/tokenP", json=body)
        assert answer.status_code == status
        assert "error_code" in answer.json()


async def test_revoke_and_approval(kis: Kis) -> None:
    approval = await kis.http.post(
        "/oauth2/Approval",
        json={"grant_type": "client_credentials", "appkey": APPKEY, "secretkey": APPSECRET},
    )
    assert len(approval.json()["approval_key"]) == 36
    revoked = await kis.http.post(
        "/oauth2/revokeP", json={"appkey": APPKEY, "appsecret": APPSECRET, "token": kis.token}
    )
    assert revoked.json()["code"] == 200
    assert (await kis.price()).json()["msg_cd"] == "EGW00121"


async def test_unknown_path_answers_in_kis_terms(kis: Kis) -> None:
    answer = await kis.http.get("/uapi/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["msg_cd"] == "OPSQ0002"
