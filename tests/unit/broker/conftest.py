"""Shared pieces for the KIS client's unit tests: settings, wire bodies, a respx broker.

The tests speak the KIS wire format directly (bodies and headers written out here), so a
mistake in the client's idea of the protocol cannot hide in shared code.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import respx

from system.broker import KisClient, KisSettings

BASE_URL = "https://kis.test:9443"
APPKEY = "PSunitAPPKEY" + "k" * 24
# Distinctive, so a leak into a repr or an error message is easy to spot.
APPSECRET = "SeCrEt-" + "x" * 40 + "-NEVER-PRINT"
ACCOUNT = "50012345-01"
TODAY = date(2026, 3, 2)

TOKEN = "/oauth2/tokenP"
HASHKEY = "/uapi/hashkey"
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
BOOK = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
DAILY = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
BALANCE = "/uapi/domestic-stock/v1/trading/inquire-balance"

GATEWAY_MESSAGES = {
    "EGW00123": "기간이 만료된 token 입니다.",
    "EGW00121": "유효하지 않은 token 입니다.",
    "EGW00201": "초당 거래건수를 초과하였습니다.",
    "EGW00103": "유효하지 않은 AppKey입니다.",
}
EGW00133 = {
    "error_code": "EGW00133",
    "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
}


def make_settings(**overrides: Any) -> KisSettings:
    values: dict[str, Any] = {
        "base_url": BASE_URL,
        "appkey": APPKEY,
        "appsecret": APPSECRET,
        "account": ACCOUNT,
    }
    values.update(overrides)
    return KisSettings(**values)


def now() -> float:
    return asyncio.get_running_loop().time()


def token_body(token: str = "tok-1", expires_in: int = 86400) -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "access_token_token_expired": "2026-03-03 09:00:00",
    }


def gateway_error(msg_cd: str, status: int = 500) -> httpx.Response:
    """A KIS gateway refusal: rt_cd "1", under HTTP 500 by default (200 on some deployments)."""
    body = {"rt_cd": "1", "msg_cd": msg_cd, "msg1": GATEWAY_MESSAGES.get(msg_cd, "거부")}
    return httpx.Response(status, json=body)


def ok(body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    payload = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다."}
    payload.update(body or {})
    return httpx.Response(200, json=payload, headers=headers)


def price_output(**overrides: str) -> dict[str, str]:
    output = {
        "stck_prpr": "71000",
        "prdy_vrss": "500",
        "prdy_vrss_sign": "2",
        "prdy_ctrt": "0.71",
        "acml_vol": "12345678",
        "acml_tr_pbmn": "876543210000",
        "stck_oprc": "70500",
        "stck_hgpr": "71500",
        "stck_lwpr": "70200",
        "stck_mxpr": "91000",
        "stck_llam": "49100",
        "stck_sdpr": "70500",
        "aspr_unit": "100",
        "per": "12.5",
    }
    output.update(overrides)
    return output


def price_ok(**overrides: str) -> httpx.Response:
    return ok({"output": price_output(**overrides)})


def order_ok(odno: str = "0000011111", ord_tmd: str = "091501") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "rt_cd": "0",
            "msg_cd": "APBK0013",
            "msg1": "주문 전송 완료 되었습니다.",
            "output": {"KRX_FWDG_ORD_ORGNO": "91252", "ODNO": odno, "ORD_TMD": ord_tmd},
        },
    )


def hash_ok(request: httpx.Request) -> httpx.Response:
    """Echo the body and hash its exact bytes, as the broker does."""
    digest = hashlib.sha256(request.content).hexdigest()
    return httpx.Response(200, json={"JsonBody": json.loads(request.content), "HASH": digest})


def daily_row(
    odno: str,
    *,
    side: str = "02",
    code: str = "005930",
    qty: str = "10",
    price: str = "70000",
    tmd: str = "091501",
    cancelled: str = "N",
) -> dict[str, str]:
    return {
        "ord_dt": TODAY.strftime("%Y%m%d"),
        "ord_gno_brno": "91252",
        "odno": odno,
        "sll_buy_dvsn_cd": side,
        "pdno": code,
        "ord_qty": qty,
        "ord_unpr": price,
        "ord_tmd": tmd,
        "tot_ccld_qty": "0",
        "avg_prvs": "0",
        "rmn_qty": qty,
        "cncl_yn": cancelled,
    }


def daily_page(rows: list[dict[str, str]], tr_cont: str = "D", **ctx: str) -> httpx.Response:
    body = {
        "output1": rows,
        "ctx_area_fk100": ctx.get("fk", ""),
        "ctx_area_nk100": ctx.get("nk", ""),
    }
    return ok(body, tr_cont=tr_cont)


class Script:
    """A respx side effect: plays ``answers`` in order (raising exceptions), the last one
    forever, and records the loop time at which each request arrived."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(now())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.times, self.times[1:], strict=False)]


def sent_json(route: respx.Route, index: int = -1) -> Any:
    return json.loads(route.calls[index].request.content)


@pytest.fixture
def broker() -> Iterator[respx.MockRouter]:
    """A respx broker at BASE_URL; unmatched requests fail the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def token_route(broker: respx.MockRouter) -> respx.Route:
    return broker.post(TOKEN).mock(return_value=httpx.Response(200, json=token_body()))


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., KisClient]]:
    """Build clients (settings overridable) on a seeded rng; closed after the test."""
    clients: list[KisClient] = []

    def build(settings: KisSettings | None = None, **kwargs: Any) -> KisClient:
        kwargs.setdefault("rng", random.Random(7))
        kwargs.setdefault("today", lambda: TODAY)
        client = KisClient(settings or make_settings(), **kwargs)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(token_route: respx.Route) -> AsyncIterator[KisClient]:
    async with KisClient(make_settings(), rng=random.Random(7), today=lambda: TODAY) as kis:
        yield kis
