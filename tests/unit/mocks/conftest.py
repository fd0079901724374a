from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mocks.broker import BrokerConfig, create_app
from mocks.clock import KST

APPKEY = "PSunit" + "k" * 30
APPSECRET = "u" * 180
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
BOOK = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
BALANCE = "/uapi/domestic-stock/v1/trading/inquire-balance"
DAILY = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
SAMSUNG = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
ACCOUNT = {"CANO": "50012345", "ACNT_PRDT_CD": "01"}


def client_for(app: FastAPI, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://broker.test")


class Kis:
    """A tiny hand-rolled KIS caller: the tests speak the wire, not the system's client."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token = ""

    async def issue(self, appkey: str = APPKEY, appsecret: str = APPSECRET) -> httpx.Response:
        body = {"grant_type": "client_credentials", "appkey": appkey, "appsecret": appsecret}
        response = await self.http.post("/oauth2/tokenP", json=body)
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    def headers(self, tr_id: str, **extra: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.token}",
            "appkey": APPKEY,
            "appsecret": APPSECRET,
            "tr_id": tr_id,
            "custtype": "P",
            **extra,
        }

    async def price(self, **extra: str) -> httpx.Response:
        return await self.http.get(
            PRICE, params=SAMSUNG, headers=self.headers("FHKST01010100", **extra)
        )

    async def order(
        self, body: dict[str, Any], tr_id: str = "TTTC0012U", **extra: str
    ) -> httpx.Response:
        return await self.http.post(ORDER, json=body, headers=self.headers(tr_id, **extra))


def order_body(code: str = "005930", qty: int = 10, price: int = 0) -> dict[str, str]:
    return {
        **ACCOUNT,
        "PDNO": code,
        "ORD_DVSN": "01" if price == 0 else "00",
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price),
    }


@pytest.fixture
def make_app() -> Callable[..., FastAPI]:
    def make(**config: Any) -> FastAPI:
        control_token = config.pop("control_token", None)
        return create_app(BrokerConfig(**config), control_token=control_token)

    return make


@pytest.fixture
async def kis(make_app: Callable[..., FastAPI]) -> AsyncIterator[Kis]:
    async with client_for(make_app()) as http:
        caller = Kis(http)
        assert (await caller.issue()).status_code == 200
        yield caller


# Kiwoom REST (BrokerConfig(api="kiwoom")). Kiwoom keys are opaque strings: clients
# report 43 characters, and the mock checks only that they are given and consistent.
KW_APPKEY = "kwunit" + "a" * 37
KW_SECRETKEY = "kwsecret" + "s" * 35
STKINFO = "/api/dostk/stkinfo"
CHART = "/api/dostk/chart"
ORDR = "/api/dostk/ordr"
ACNT = "/api/dostk/acnt"
# A Monday 10:00 KST: today is a trading day, and wall-clock strings are reproducible.
KW_OPEN = datetime(2026, 3, 2, 10, 0, tzinfo=KST)


class Kiwoom:
    """A tiny hand-rolled Kiwoom caller: the tests speak the wire, not a client library."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token = ""

    async def issue(self, appkey: str = KW_APPKEY, secretkey: str = KW_SECRETKEY) -> httpx.Response:
        body = {"grant_type": "client_credentials", "appkey": appkey, "secretkey": secretkey}
        response = await self.http.post("/oauth2/token", json=body)
        if response.json().get("return_code") == 0:
            self.token = response.json()["token"]
        return response

    def headers(self, api_id: str, **extra: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.token}",
            "api-id": api_id,
            "content-type": "application/json;charset=UTF-8",
            **extra,
        }

    async def tr(
        self, path: str, api_id: str, body: dict[str, Any], **headers: str
    ) -> httpx.Response:
        if not self.token:  # the first TR issues: fixtures must not start the mock's clock
            assert (await self.issue()).json()["return_code"] == 0
        return await self.http.post(path, json=body, headers=self.headers(api_id, **headers))

    async def pages(
        self, path: str, api_id: str, body: dict[str, Any], rows: str, limit: int = 50
    ) -> list[list[dict[str, Any]]]:
        """Every page of a list TR: cont-yn/next-key sent back until cont-yn is N."""
        pages: list[list[dict[str, Any]]] = []
        extra: dict[str, str] = {}
        for _ in range(limit):
            answer = await self.tr(path, api_id, body, **extra)
            assert answer.status_code == 200
            assert answer.json()["return_code"] == 0, answer.json()
            assert answer.headers["api-id"] == api_id
            pages.append(answer.json()[rows])
            if answer.headers["cont-yn"] != "Y":
                assert answer.headers["next-key"] == ""
                return pages
            extra = {"cont-yn": "Y", "next-key": answer.headers["next-key"]}
        raise AssertionError(f"{api_id} still said cont-yn Y after {limit} pages")


def kiwoom_order(
    code: str = "005930", qty: int = 3, price: int = 0, venue: str = "KRX"
) -> dict[str, str]:
    return {
        "dmst_stex_tp": venue,
        "stk_cd": code,
        "ord_qty": str(qty),
        "ord_uv": str(price) if price else "",
        "trde_tp": "0" if price else "3",
        "cond_uv": "",
    }


@pytest.fixture
def make_kiwoom_app() -> Callable[..., FastAPI]:
    def make(**config: Any) -> FastAPI:
        control_token = config.pop("control_token", None)
        return create_app(
            BrokerConfig(api="kiwoom", **config), control_token=control_token, wall_origin=KW_OPEN
        )

    return make


@pytest.fixture
async def kiwoom(make_kiwoom_app: Callable[..., FastAPI]) -> AsyncIterator[Kiwoom]:
    """A caller with no token yet: its first TR issues one. Issuing here would start the
    mock's clock on real loop time, before a looptime test's virtual time begins."""
    # A budget no test trips over unless it means to (those build their own app).
    async with client_for(make_kiwoom_app(requests_per_second=1000)) as http:
        yield Kiwoom(http)
