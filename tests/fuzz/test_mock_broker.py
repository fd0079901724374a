"""The mock brokers' REST surfaces under fuzzed requests: bodies, headers, tr_ids, paths.

Each example must get an answer in the broker's own terms (a KIS ``rt_cd``/``msg_cd`` body,
an OAuth-style ``error_code``, a Kiwoom ``return_code``, or a control plane's ``detail``),
never an unhandled exception, and a well-formed client must still be served afterwards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from mocks.broker import BrokerConfig, create_app
from mocks.broker.codes import GATEWAY_MESSAGES
from tests.fuzz.strategies import (
    HEADER_VALUES,
    JSON_VALUES,
    NASTY_TEXT,
    TEXT,
    bodies,
    mostly,
    objects_like,
    variants,
)
from tests.unit.mocks.conftest import APPKEY, APPSECRET, PRICE, Kis

# Each endpoint with the tr_id it serves ("" where none is needed).
KIS_ENDPOINTS = [
    ("POST", "/oauth2/tokenP", ""),
    ("POST", "/oauth2/revokeP", ""),
    ("POST", "/oauth2/Approval", ""),
    ("GET", PRICE, "FHKST01010100"),
    ("GET", "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn", "FHKST01010200"),
    ("POST", "/uapi/hashkey", ""),
    ("POST", "/uapi/domestic-stock/v1/trading/order-cash", "TTTC0012U"),
    ("POST", "/uapi/domestic-stock/v1/trading/order-cash", "TTTC0011U"),
    ("GET", "/uapi/domestic-stock/v1/trading/inquire-daily-ccld", "TTTC8001R"),
    ("GET", "/uapi/domestic-stock/v1/trading/inquire-balance", "TTTC8434R"),
]
QUOTE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
ORDER = {
    "CANO": "50012345",
    "ACNT_PRDT_CD": "01",
    "PDNO": "005930",
    "ORD_DVSN": "00",
    "ORD_QTY": "1",
    "ORD_UNPR": "70000",
}
ODD_PATHS = [PRICE, "/uapi/", "/oauth2/tokenP/../tokenP", "/%00", "/uapi/x%ff", "/_squall/x"]
KIS_TR_IDS = ["FHKST01010100", "TTTC0012U", "VTTC0012U", "tttc0012u", " TTTC0012U ", "X" * 300]
# Each endpoint with a TR it serves.
KIWOOM_ENDPOINTS = [
    ("POST", "/oauth2/token", ""),
    ("POST", "/oauth2/revoke", ""),
    ("POST", "/api/dostk/stkinfo", "ka10001"),
    ("POST", "/api/dostk/stkinfo", "ka10099"),
    ("POST", "/api/dostk/chart", "ka10081"),
    ("POST", "/api/dostk/ordr", "kt10000"),
    ("POST", "/api/dostk/ordr", "kt10001"),
    ("POST", "/api/dostk/acnt", "kt00018"),
]
KIWOOM_BODY = {"stk_cd": "005930", "dt": "20261123", "qry_tp": "0", "ord_qty": "1"}
KIWOOM_API_IDS = ["ka10001", "kt10000", "KA10001", "ka99999", " ka10081 "]
ORDER_FIELDS = {
    "CANO": st.sampled_from(["50012345", "5001234", "00000000"]),
    "ACNT_PRDT_CD": st.sampled_from(["01", "1", "99"]),
    "PDNO": st.sampled_from(["005930", "000660", "999999", "5930"]),
    "ORD_DVSN": st.sampled_from(["00", "01", "99"]),
    "ORD_QTY": st.one_of(st.integers(-5, 10**12).map(str), NASTY_TEXT),
    "ORD_UNPR": st.one_of(st.integers(-5, 10**12).map(str), NASTY_TEXT),
    "grant_type": st.just("client_credentials"),
    "appkey": st.sampled_from([APPKEY, "x"]),
    "appsecret": st.sampled_from([APPSECRET, "y"]),
    "secretkey": st.sampled_from([APPSECRET, "y"]),
    "token": TEXT,
    "stk_cd": st.sampled_from(["005930", "", "12345678901234"]),
    "dt": st.sampled_from(["20261123", "2026-11-23", "99999999"]),
    "qry_tp": st.sampled_from(["0", "1", "X"]),
    "ord_qty": st.one_of(st.integers(-5, 10**12).map(str), NASTY_TEXT),
}
QUERY = st.dictionaries(
    st.sampled_from(["FID_COND_MRKT_DIV_CODE", "FID_INPUT_ISCD", "fid_input_iscd", "CANO"])
    | st.sampled_from(["ACNT_PRDT_CD", "CTX_AREA_FK100", "CTX_AREA_NK100", "INQR_DVSN"])
    | TEXT,
    st.sampled_from(["J", "005930", "50012345", "01", "", "02"]) | TEXT,
    max_size=6,
)


def _client(app: Any) -> httpx.AsyncClient:
    # raise_app_exceptions: an exception the app does not handle fails the example.
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://broker.test", timeout=10)


@pytest.fixture
async def kis() -> AsyncIterator[httpx.AsyncClient]:
    # No per-second budget or token interval in the way: the fuzz must reach the handlers,
    # and the liveness check after each example must not be refused for a rate.
    app = create_app(BrokerConfig(requests_per_second=10**9, token_interval_s=0))
    async with _client(app) as client:
        yield client


@pytest.fixture
async def kiwoom() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(BrokerConfig(api="kiwoom", requests_per_second=10**9, token_interval_s=0))
    async with _client(app) as client:
        yield client


async def _kis_token(client: httpx.AsyncClient) -> Kis:
    """A well-behaved caller holding a fresh token (re-issued: an example may revoke it)."""
    kis = Kis(client)
    issued = await kis.issue()
    assert issued.status_code == 200, issued.text
    return kis


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        pytest.fail(f"HTTP {response.status_code} with a body that is not JSON: {response.text!r}")
    assert isinstance(body, dict), body
    return body


# The answers that are not rt_cd bodies: the token and hashkey endpoints' successes.
OWN_SUCCESS = {
    "/oauth2/tokenP": "access_token",
    "/oauth2/revokeP": "message",
    "/oauth2/Approval": "approval_key",
    "/uapi/hashkey": "HASH",
}


def _check_kis(response: httpx.Response) -> None:
    body = _answer(response)
    own = OWN_SUCCESS.get(response.request.url.path)
    # What the examples reached, for --hypothesis-show-statistics.
    event(f"HTTP {response.status_code} {body.get('msg_cd') or body.get('error_code') or ''}")
    if "detail" in body:  # FastAPI's own answers: 404/405 on an unknown route, 413, 422
        assert 400 <= response.status_code < 500, body
    elif "error_code" in body:  # the token endpoints' OAuth-style refusals
        assert 400 <= response.status_code < 500, body
        assert isinstance(body.get("error_description"), str), body
    elif own is not None and response.status_code == 200 and "rt_cd" not in body:
        assert isinstance(body.get(own), str), body
    else:
        assert body.get("rt_cd") in {"0", "1"}, body
        assert isinstance(body.get("msg_cd"), str), body
        assert isinstance(body.get("msg1"), str), body
        if response.status_code >= 500:  # only the gateway's own codes, at the set status
            assert body["msg_cd"] in GATEWAY_MESSAGES, body


@st.composite
def kis_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], dict[str, Any], bytes]:
    odd = st.tuples(
        st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        st.sampled_from(ODD_PATHS),
        st.just(""),
    )
    method, path, tr_id = draw(st.sampled_from(KIS_ENDPOINTS) if draw(st.integers(0, 3)) else odd)
    junk = st.none() | HEADER_VALUES  # None: the header is left out
    headers: dict[str, Any] = {
        "appkey": draw(mostly(APPKEY, junk)),
        "appsecret": draw(mostly(APPSECRET, junk)),
        "tr_id": draw(mostly(tr_id, st.sampled_from(KIS_TR_IDS) | junk)),
        "custtype": draw(mostly("P", junk)),
        "tr_cont": draw(st.sampled_from(["", "N", "F", "M", "D", "E"]) | junk),
        "hashkey": draw(junk),
        "content-type": draw(
            mostly(
                "application/json",
                st.sampled_from(["text/plain", "application/x-www-form-urlencoded"]) | junk,
            )
        ),
    }
    headers = {name: value for name, value in headers.items() if value is not None}
    authorization = draw(mostly("valid", st.sampled_from(["none", "junk"])))
    body = draw(bodies(variants(ORDER) | objects_like(ORDER_FIELDS) | JSON_VALUES))
    query = draw(variants(QUOTE) | QUERY)
    return method, path, {"authorization": authorization, **headers}, query, body


@given(request=kis_requests())
async def test_the_kis_mock_answers_every_request_in_its_own_terms(
    kis: httpx.AsyncClient, request: tuple[str, str, dict[str, Any], dict[str, Any], bytes]
) -> None:
    method, path, headers, query, body = request
    token = (await _kis_token(kis)).token
    headers = dict(headers)
    auth = headers.pop("authorization")
    if auth == "valid":
        headers["authorization"] = f"Bearer {token}"
    elif auth == "junk":
        headers["authorization"] = "Bearer " + "x" * 40
    response = await kis.request(method, path, headers=headers, params=query, content=body)
    _check_kis(response)

    # Still serving a well-behaved client.
    price = await (await _kis_token(kis)).price()
    assert price.status_code == 200, price.text
    assert price.json()["rt_cd"] == "0", price.text


def _check_kiwoom(response: httpx.Response) -> None:
    body = _answer(response)
    event(f"HTTP {response.status_code} {body.get('return_code', '')}")
    if "detail" in body:
        assert 400 <= response.status_code < 500, body
        return
    assert isinstance(body.get("return_code"), int), body
    assert isinstance(body.get("return_msg"), str), body
    assert response.status_code < 500 or body["return_code"] != 0, body


@given(
    endpoint=st.sampled_from(KIWOOM_ENDPOINTS),
    api_id=mostly("home", st.sampled_from(KIWOOM_API_IDS) | HEADER_VALUES | st.none()),
    authorization=mostly("valid", st.sampled_from(["none", "junk", "Basic abc", "bearer  "])),
    paging=st.fixed_dictionaries(
        {},
        optional={
            "cont-yn": st.sampled_from(["Y", "N"]) | HEADER_VALUES,
            "next-key": HEADER_VALUES,
        },
    ),
    body=bodies(variants(KIWOOM_BODY) | objects_like(ORDER_FIELDS) | JSON_VALUES),
)
async def test_the_kiwoom_mock_answers_every_request_in_its_own_terms(
    kiwoom: httpx.AsyncClient,
    endpoint: tuple[str, str, str],
    api_id: str | bytes | None,
    authorization: str,
    paging: dict[str, Any],
    body: bytes,
) -> None:
    issued = await kiwoom.post(
        "/oauth2/token",
        json={"grant_type": "client_credentials", "appkey": APPKEY, "secretkey": APPSECRET},
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["return_code"] == 0, issued.text
    token = issued.json()["token"]
    headers: dict[str, Any] = dict(paging)
    method, path, home = endpoint
    if api_id == "home":
        api_id = home
    if api_id is not None:
        headers["api-id"] = api_id
    if authorization == "valid":
        headers["authorization"] = f"Bearer {token}"
    elif authorization == "junk":
        headers["authorization"] = "Bearer " + "x" * 40
    elif authorization != "none":
        headers["authorization"] = authorization
    response = await kiwoom.request(method, path, headers=headers, content=body)
    _check_kiwoom(response)

    issued = await kiwoom.post(
        "/oauth2/token",
        json={"grant_type": "client_credentials", "appkey": APPKEY, "secretkey": APPSECRET},
    )
    info = await kiwoom.post(
        "/api/dostk/stkinfo",
        json={"stk_cd": "005930"},
        headers={"api-id": "ka10001", "authorization": f"Bearer {issued.json()['token']}"},
    )
    assert info.status_code == 200, info.text
    assert info.json()["return_code"] == 0, info.text
