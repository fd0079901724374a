from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mocks.broker import BrokerConfig, create_app

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
