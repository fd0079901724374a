"""Quotes, order books and the hashkey on the wire: paths, tr_ids, headers, parsing, budget."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import respx

from system.broker import KisClient, MalformedResponse, OrderBook, Quote
from tests.unit.broker.conftest import (
    ACCOUNT,
    APPKEY,
    APPSECRET,
    BASE_URL,
    BOOK,
    HASHKEY,
    PRICE,
    TOKEN,
    hash_ok,
    make_settings,
    now,
    ok,
    price_ok,
    price_output,
    token_body,
)

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("token_route")]


def book_output() -> dict[str, str]:
    output = {"aspr_acpt_hour": "093012", "total_askp_rsqn": "0", "total_bidp_rsqn": "0"}
    for level in range(1, 11):
        # Three ask levels and two bid levels are quoted; the rest are empty ("0").
        output[f"askp{level}"] = str(71000 + 100 * (level - 1)) if level <= 3 else "0"
        output[f"askp_rsqn{level}"] = str(10 * level) if level <= 3 else "0"
        output[f"bidp{level}"] = str(70900 - 100 * (level - 1)) if level <= 2 else "0"
        output[f"bidp_rsqn{level}"] = str(5 * level) if level <= 2 else "0"
    return output


async def test_get_price_sends_the_documented_request(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(PRICE).mock(return_value=price_ok())
    await client.get_price("005930")
    request = route.calls.last.request
    assert dict(request.url.params) == {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    headers = request.headers
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["authorization"] == "Bearer tok-1"
    assert headers["appkey"] == APPKEY
    assert headers["appsecret"] == APPSECRET
    assert headers["tr_id"] == "FHKST01010100"
    assert headers["tr_cont"] == ""
    assert headers["custtype"] == "P"
    assert "hashkey" not in headers


async def test_get_price_parses_every_field(broker: respx.MockRouter, client: KisClient) -> None:
    broker.get(PRICE).mock(return_value=price_ok())
    assert await client.get_price("005930") == Quote(
        code="005930",
        price=71000,
        change=500,
        change_rate=0.71,
        volume=12345678,
        open=70500,
        high=71500,
        low=70200,
        upper_limit=91000,
        lower_limit=49100,
        base_price=70500,
        tick=100,
    )


@pytest.mark.parametrize(
    ("vrss", "sign", "change"), [("-500", "5", -500), ("500", "5", -500), ("0", "3", 0)]
)
async def test_a_falling_price_has_a_negative_change(
    broker: respx.MockRouter, client: KisClient, vrss: str, sign: str, change: int
) -> None:
    broker.get(PRICE).mock(return_value=price_ok(prdy_vrss=vrss, prdy_vrss_sign=sign))
    assert (await client.get_price("005930")).change == change


async def test_a_quote_missing_a_field_is_malformed_and_retried(
    broker: respx.MockRouter, client: KisClient
) -> None:
    output = price_output()
    del output["stck_mxpr"]
    route = broker.get(PRICE).mock(return_value=ok({"output": output}))
    with pytest.raises(MalformedResponse, match="'stck_mxpr'"):
        await client.get_price("005930")
    assert route.call_count == 3


async def test_a_quote_with_a_non_number_is_malformed(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(PRICE).mock(return_value=price_ok(stck_prpr="7l000"))
    with pytest.raises(MalformedResponse, match=r"stck_prpr.*not a number"):
        await client.get_price("005930")


async def test_get_order_book_keeps_quoted_levels_best_first(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(BOOK).mock(return_value=ok({"output1": book_output(), "output2": {}}))
    book = await client.get_order_book("000660")
    assert book == OrderBook(
        code="000660",
        asks=[(71000, 10), (71100, 20), (71200, 30)],
        bids=[(70900, 5), (70800, 10)],
        time="093012",
    )
    request = route.calls.last.request
    assert request.headers["tr_id"] == "FHKST01010200"
    assert request.url.params["FID_INPUT_ISCD"] == "000660"


async def test_quotation_tr_ids_are_the_same_on_paper(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    price = broker.get(PRICE).mock(return_value=price_ok())
    book = broker.get(BOOK).mock(return_value=ok({"output1": book_output()}))
    client = make_client(make_settings(profile="paper"))
    await client.get_price("005930")
    await client.get_order_book("005930")
    assert price.calls.last.request.headers["tr_id"] == "FHKST01010100"
    assert book.calls.last.request.headers["tr_id"] == "FHKST01010200"


async def test_hashkey_posts_the_body_without_token_or_tr_id(
    broker: respx.MockRouter, token_route: respx.Route, client: KisClient
) -> None:
    route = broker.post(HASHKEY).mock(side_effect=hash_ok)
    body = {"CANO": "12345678", "ACNT_PRDT_CD": "01"}
    hashed = await client.hashkey(body)
    request = route.calls.last.request
    assert hashed == route.calls.last.response.json()["HASH"]
    assert len(hashed) == 64
    assert json.loads(request.content) == body
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["appkey"] == APPKEY
    assert request.headers["appsecret"] == APPSECRET
    for absent in ("authorization", "tr_id"):
        assert absent not in request.headers
    assert token_route.call_count == 0  # no token is needed for a hashkey


async def test_a_hashkey_answer_without_hash_is_malformed(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.post(HASHKEY).mock(return_value=httpx.Response(200, json={"JsonBody": {}}))
    with pytest.raises(MalformedResponse, match="no HASH"):
        await client.hashkey({"CANO": "12345678"})


async def test_paper_budget_is_one_request_per_second_including_hashkey(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    client = make_client(make_settings(profile="paper"))
    assert client.limiter.capacity == 1
    sent: list[float] = []

    def record(response: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(now())
            return response

        return answer

    broker.get(PRICE).mock(side_effect=record(price_ok()))
    broker.post(HASHKEY).mock(side_effect=record(httpx.Response(200, json={"HASH": "ab"})))
    await client.get_price("005930")
    await client.hashkey({"CANO": "12345678"})
    await client.get_price("005930")
    assert sent == pytest.approx([0.0, 1.02, 2.04])


async def test_real_budget_spends_eighteen_per_window(
    broker: respx.MockRouter, client: KisClient
) -> None:
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(now())
        return price_ok()

    broker.get(PRICE).mock(side_effect=answer)
    for _ in range(19):
        await client.get_price("005930")
    assert sent[:18] == [0.0] * 18
    assert sent[18] == pytest.approx(1.02)


async def test_the_token_request_does_not_spend_the_budget(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    broker.post(TOKEN).mock(return_value=httpx.Response(200, json=token_body()))
    broker.get(PRICE).mock(return_value=price_ok())
    client = make_client(make_settings(profile="paper"))
    await client.get_price("005930")  # token + one quote: only the quote counts
    assert now() == 0.0


async def test_a_custom_transport_is_used_for_every_request() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == TOKEN:
            return httpx.Response(200, json=token_body())
        return price_ok()

    settings = make_settings(account=ACCOUNT, base_url=BASE_URL)
    async with KisClient(settings, transport=httpx.MockTransport(handler)) as client:
        await client.get_price("005930")
    assert seen == [TOKEN, PRICE]
