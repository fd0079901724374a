"""The bare wire, the baseline several benchmarks stand beside: the system's broker client
(``BrokerHttp`` over ``BrokerTransport``) and uvicorn (the mocks' server,
``mocks.server.serve``) on loopback, the endpoint answering a fixed body and nothing more. A
scenario's broker request cannot cost less."""

from __future__ import annotations

import time

import httpx
from starlette.types import Receive, Scope, Send

from mocks.server import serve
from system.broker.account import tls_context
from system.broker.http import BrokerHttp
from system.broker.transport import BrokerTransport

BODY = b'{"rt_cd":"0","msg_cd":"MCA00000","msg1":"ok","output":{"stck_prpr":"80100"}}'
PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
PARAMS = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


async def bare_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app answering every request with ``BODY``."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def bare_exchange_s(count: int = 1000) -> float:
    """Seconds per sequential request of the bare wire, after one warm-up request."""
    async with serve(bare_endpoint) as server:
        http = BrokerHttp(server.url, BrokerTransport(verify=tls_context()), httpx.Timeout(10.0))
        try:
            await http.send(http.build_request("GET", "/warm-up"))
            started = time.perf_counter()
            for _ in range(count):
                await http.send(http.build_request("GET", PATH, params=PARAMS))
            return (time.perf_counter() - started) / count
        finally:
            await http.aclose()
