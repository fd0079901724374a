"""Reads under failure: timeouts, 5xx, malformed answers, EGW00201, rejections, backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import httpx
import pytest
import respx

from system.broker import (
    BrokerError,
    BrokerRejected,
    BrokerUnavailable,
    KisClient,
    MalformedResponse,
    RateLimited,
)
from tests.unit.broker.conftest import (
    APPSECRET,
    BOOK,
    PRICE,
    Script,
    gateway_error,
    make_settings,
    price_ok,
)

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("token_route")]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("connection reset by peer"),
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(503, text=""),
        httpx.Response(200, text='{"rt_cd": "0", "output1": {"askp1": "71'),  # truncated
        httpx.Response(200, text=""),
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(404, text="Not Found"),
    ],
    ids=lambda failure: (
        f"HTTP {failure.status_code} {failure.text[:12]!r}"
        if isinstance(failure, httpx.Response)
        else type(failure).__name__
    ),
)
async def test_no_usable_answer_is_broker_unavailable_after_the_read_retries(
    broker: respx.MockRouter, client: KisClient, failure: Exception | httpx.Response
) -> None:
    route = broker.get(BOOK)
    if isinstance(failure, httpx.Response):
        route.mock(return_value=failure)
    else:
        route.mock(side_effect=failure)
    with pytest.raises(BrokerUnavailable) as info:
        await client.get_order_book("005930")
    assert isinstance(info.value, ConnectionError)
    assert info.value.endpoint == f"GET {BOOK}"
    assert f"GET {BOOK}" in str(info.value)
    assert route.call_count == 1 + 2  # the first try and read_retries=2 more
    assert client.metrics.retries == 2
    assert client.metrics.unavailable_errors == 3


async def test_a_timeout_names_the_endpoint_and_the_timeout(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(BOOK).mock(side_effect=httpx.ReadTimeout(""))
    with pytest.raises(ConnectionError, match=r"inquire-asking-price-exp-ccn.*within 10\.0 s"):
        await client.get_order_book("005930")


async def test_a_plain_text_500_is_unavailable_not_malformed(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(BOOK).mock(return_value=httpx.Response(500, text="Internal Server Error"))
    with pytest.raises(BrokerUnavailable, match="HTTP 500 without a KIS verdict") as info:
        await client.get_order_book("005930")
    assert not isinstance(info.value, MalformedResponse)


async def test_an_unparsable_200_is_a_malformed_response(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(PRICE).mock(return_value=httpx.Response(200, text="{"))
    with pytest.raises(MalformedResponse, match="HTTP 200"):
        await client.get_price("005930")


async def test_reads_retry_with_backoff_then_succeed(
    broker: respx.MockRouter, client: KisClient
) -> None:
    script = Script(httpx.ReadTimeout("slow"), httpx.Response(502, text="Bad Gateway"), price_ok())
    broker.get(PRICE).mock(side_effect=script)
    quote = await client.get_price("005930")
    assert quote.price == 71000
    first, second = script.gaps
    assert 0.1 <= first <= 0.2  # backoff_base_s=0.2, jittered to [50 %, 100 %]
    assert 0.2 <= second <= 0.4  # doubled
    assert client.metrics.retries == 2


async def test_backoff_is_capped_and_reproducible_from_the_seed(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    route = broker.get(PRICE)
    settings = make_settings(read_retries=6, backoff_base_s=0.5, backoff_max_s=1.0)

    async def gaps(seed: int) -> list[float]:
        script = Script(httpx.ReadTimeout("slow"))
        route.mock(side_effect=script)
        with pytest.raises(BrokerUnavailable):
            await make_client(settings, rng=random.Random(seed)).get_price("005930")
        return script.gaps

    first, again, other = await gaps(11), await gaps(11), await gaps(12)
    assert len(first) == 6
    assert first == pytest.approx(again)
    assert first != pytest.approx(other)
    assert all(gap <= 1.0 + 1e-9 for gap in first)
    assert all(gap >= 0.5 - 1e-9 for gap in first[1:])  # capped at 1.0, jittered >= 50 %


async def test_no_retries_when_read_retries_is_zero(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    route = broker.get(PRICE).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(BrokerUnavailable):
        await make_client(make_settings(read_retries=0)).get_price("005930")
    assert route.call_count == 1


@pytest.mark.parametrize("status", [500, 200])
async def test_egw00201_waits_and_retries_then_succeeds(
    broker: respx.MockRouter, client: KisClient, status: int
) -> None:
    script = Script(gateway_error("EGW00201", status), price_ok())
    route = broker.get(PRICE).mock(side_effect=script)
    quote = await client.get_price("005930")
    assert quote.price == 71000
    assert route.call_count == 2
    # rate_limit_wait_s, plus up to 20 % jitter so penalised callers do not retry in step.
    assert 1.0 < script.gaps[0] <= 1.2 + 1e-9  # rate_limit_wait_s + up to 20 % jitter
    assert client.metrics.rate_limited_retries == 1
    assert client.metrics.retries == 0


async def test_egw00201_that_persists_is_rate_limited(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(PRICE).mock(return_value=gateway_error("EGW00201"))
    with pytest.raises(RateLimited) as info:
        await client.get_price("005930")
    assert route.call_count == 1 + 3
    assert info.value.retry_after == pytest.approx(1.0)
    assert info.value.endpoint == f"GET {PRICE}"
    assert "EGW00201" in str(info.value)
    assert not isinstance(info.value, ConnectionError)
    assert client.metrics.rate_limited_retries == 3


async def test_egw00201_holds_back_the_other_callers_too(
    broker: respx.MockRouter, client: KisClient
) -> None:
    price = broker.get(PRICE).mock(side_effect=[gateway_error("EGW00201"), price_ok()])
    book = Script(httpx.Response(200, json={}))
    broker.get(BOOK).mock(side_effect=book)
    await client.tokens.get()
    refused = asyncio.create_task(client.get_price("005930"))
    await asyncio.sleep(0.5)
    other = asyncio.create_task(client.get_order_book("005930"))
    await refused
    with pytest.raises(BrokerError):
        await other
    assert price.call_count == 2
    assert book.times[0] >= 1.0  # it waited for the penalty, although the budget had room


@pytest.mark.parametrize("status", [200, 500])
async def test_a_business_rejection_is_broker_rejected_and_not_retried(
    broker: respx.MockRouter, client: KisClient, status: int
) -> None:
    body = {"rt_cd": "7", "msg_cd": "OPSQ0002", "msg1": "없는 종목코드입니다."}
    route = broker.get(PRICE).mock(return_value=httpx.Response(status, json=body))
    with pytest.raises(BrokerRejected) as info:
        await client.get_price("999999")
    assert (info.value.msg_cd, info.value.msg1) == ("OPSQ0002", "없는 종목코드입니다.")
    assert info.value.status_code == status
    assert "OPSQ0002" in str(info.value)
    assert route.call_count == 1


async def test_the_body_is_judged_before_the_status(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(PRICE).mock(return_value=gateway_error("EGW00103", 500))
    with pytest.raises(BrokerRejected, match="EGW00103") as info:
        await client.get_price("005930")
    assert not isinstance(info.value, BrokerUnavailable)
    assert route.call_count == 1


@pytest.mark.parametrize("code", ["5930", "0059300", "ABCDEF", "", "00593O"])
async def test_a_malformed_stock_code_is_refused_before_any_request(
    broker: respx.MockRouter, client: KisClient, code: str
) -> None:
    route = broker.get(PRICE)
    with pytest.raises(ValueError, match="6 digits"):
        await client.get_price(code)
    with pytest.raises(ValueError, match="6 digits"):
        await client.get_order_book(code)
    assert route.call_count == 0
    assert client.metrics.requests_sent == 0


async def test_error_messages_never_carry_the_secret_or_the_token(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(PRICE).mock(
        side_effect=[
            gateway_error("EGW00103"),
            httpx.ReadTimeout("timed out"),
            httpx.ReadTimeout("timed out"),
            httpx.ReadTimeout("timed out"),
            gateway_error("EGW00201"),
            gateway_error("EGW00201"),
            gateway_error("EGW00201"),
            gateway_error("EGW00201"),
        ]
    )
    messages = []
    for _ in range(3):
        with pytest.raises(BrokerError) as info:
            await client.get_price("005930")
        messages.append(f"{info.value} {info.value!r}")
    assert len(messages) == 3
    for message in messages:
        assert APPSECRET not in message
        assert "tok-1" not in message


async def test_metrics_count_what_was_sent(broker: respx.MockRouter, client: KisClient) -> None:
    broker.get(PRICE).mock(side_effect=[httpx.ReadTimeout("slow"), price_ok(), price_ok()])
    await client.get_price("005930")
    await client.get_price("005930")
    metrics = client.metrics
    assert metrics.requests_sent == 1 + 3  # the token, then three price requests
    assert metrics.retries == 1
    assert metrics.unavailable_errors == 1
    assert metrics.token_issuances_succeeded == 1
