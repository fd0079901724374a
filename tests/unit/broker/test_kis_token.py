"""The client's token on the wire: first use, cache, single flight, EGW00133, expiry, re-issue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import respx

from system.broker import (
    AuthExpired,
    KisClient,
    TokenCooldown,
    TokenIssuanceFailed,
    TokenUnavailable,
)
from tests.unit.broker.conftest import (
    APPKEY,
    APPSECRET,
    EGW00133,
    PRICE,
    TOKEN,
    gateway_error,
    make_settings,
    now,
    price_ok,
    sent_json,
    token_body,
)

pytestmark = pytest.mark.looptime


def tokens_from(*tokens: str) -> list[httpx.Response]:
    return [httpx.Response(200, json=token_body(token)) for token in tokens]


async def test_the_token_is_fetched_on_the_first_call(
    broker: respx.MockRouter, token_route: respx.Route, client: KisClient
) -> None:
    price = broker.get(PRICE).mock(return_value=price_ok())
    await client.get_price("005930")
    assert token_route.call_count == 1
    assert sent_json(token_route) == {
        "grant_type": "client_credentials",
        "appkey": APPKEY,
        "appsecret": APPSECRET,
    }
    assert token_route.calls.last.request.headers["content-type"].startswith("application/json")
    assert price.calls.last.request.headers["authorization"] == "Bearer tok-1"
    assert client.tokens.token == "tok-1"


async def test_the_cached_token_is_reused(
    broker: respx.MockRouter, token_route: respx.Route, client: KisClient
) -> None:
    price = broker.get(PRICE).mock(return_value=price_ok())
    await client.get_price("005930")
    await asyncio.sleep(3600)
    await client.get_price("000660")
    assert token_route.call_count == 1
    assert [call.request.headers["authorization"] for call in price.calls] == ["Bearer tok-1"] * 2


async def test_five_concurrent_first_calls_issue_exactly_one_token(
    broker: respx.MockRouter, token_route: respx.Route, client: KisClient
) -> None:
    price = broker.get(PRICE).mock(return_value=price_ok())
    quotes = await asyncio.gather(*(client.get_price("005930") for _ in range(5)))
    assert [quote.price for quote in quotes] == [71000] * 5
    assert token_route.call_count == 1
    assert price.call_count == 5
    assert client.metrics.token_issuance_attempts == 1


async def test_egw00133_fails_then_cools_down_without_a_request(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(return_value=httpx.Response(403, json=EGW00133))
    price = broker.get(PRICE).mock(return_value=price_ok())
    client = make_client()
    with pytest.raises(TokenIssuanceFailed) as failed:
        await client.get_price("005930")
    assert failed.value.error_code == "EGW00133"
    assert failed.value.status_code == 403
    assert "접근토큰 발급 잠시 후 다시 시도하세요" in str(failed.value)
    assert isinstance(failed.value, ConnectionError)
    assert token.call_count == 1  # the read loop does not retry token trouble

    with pytest.raises(TokenCooldown) as cooling:
        await client.get_price("005930")
    assert cooling.value.retry_after == pytest.approx(60.0)
    assert token.call_count == 1
    assert price.call_count == 0
    metrics = client.metrics
    assert metrics.token_issuance_attempts == 1
    assert metrics.token_issuances_succeeded == 0
    assert metrics.token_cooldown_rejections == 1


async def test_issuance_works_again_after_the_real_sixty_second_cooldown(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(
        side_effect=[httpx.Response(403, json=EGW00133), *tokens_from("tok-after")]
    )
    price = broker.get(PRICE).mock(return_value=price_ok())
    client = make_client()
    with pytest.raises(TokenIssuanceFailed):
        await client.get_price("005930")
    await asyncio.sleep(61)
    await client.get_price("005930")
    assert token.call_count == 2
    assert price.calls.last.request.headers["authorization"] == "Bearer tok-after"


async def test_a_short_configured_cooldown_is_honoured(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(
        side_effect=[httpx.Response(403, json=EGW00133), *tokens_from("tok-1")]
    )
    broker.get(PRICE).mock(return_value=price_ok())
    client = make_client(make_settings(token_cooldown_s=2.0))
    with pytest.raises(TokenIssuanceFailed):
        await client.get_price("005930")
    with pytest.raises(TokenCooldown) as info:
        await client.get_price("005930")
    assert info.value.retry_after == pytest.approx(2.0)
    await asyncio.sleep(2.0)
    await client.get_price("005930")
    assert token.call_count == 2


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(200, json={"token_type": "Bearer"}), "neither a token nor an error"),
        (httpx.Response(502, text="Bad Gateway"), "HTTP 502"),
        (httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00103", "msg1": "bad"}), "EGW00103"),
    ],
)
async def test_unusable_token_answers_are_token_unavailable(
    broker: respx.MockRouter,
    make_client: Callable[..., KisClient],
    response: httpx.Response,
    expected: str,
) -> None:
    broker.post(TOKEN).mock(return_value=response)
    with pytest.raises(TokenUnavailable, match=expected) as info:
        await make_client().get_price("005930")
    assert APPSECRET not in str(info.value)


async def test_a_token_endpoint_timeout_is_token_unavailable_and_cools_down(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(side_effect=httpx.ReadTimeout("slow"))
    client = make_client()
    with pytest.raises(TokenUnavailable, match=r"no token was issued.*no answer within 10\.0 s"):
        await client.get_price("005930")
    with pytest.raises(TokenCooldown):
        await client.get_price("005930")
    assert token.call_count == 1


async def test_the_token_is_renewed_proactively_before_expiry(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(side_effect=tokens_from("tok-1", "tok-2"))
    price = broker.get(PRICE).mock(return_value=price_ok())
    client = make_client()
    await client.get_price("005930")
    await asyncio.sleep(86400 - 300 - 1)
    await client.get_price("005930")
    assert token.call_count == 1
    await asyncio.sleep(2)
    await client.get_price("005930")
    assert token.call_count == 2
    assert price.calls.last.request.headers["authorization"] == "Bearer tok-2"
    assert client.tokens.expires_at == pytest.approx(86400 - 300 + 1 + 86400)


@pytest.mark.parametrize("msg_cd", ["EGW00123", "EGW00121"])
@pytest.mark.parametrize("status", [500, 200])
async def test_an_expired_or_invalid_token_is_reissued_once_and_the_request_retried(
    broker: respx.MockRouter, make_client: Callable[..., KisClient], msg_cd: str, status: int
) -> None:
    token = broker.post(TOKEN).mock(side_effect=tokens_from("tok-1", "tok-2"))
    price = broker.get(PRICE).mock(
        side_effect=[price_ok(), gateway_error(msg_cd, status), price_ok(stck_prpr="72000")]
    )
    client = make_client()
    await client.get_price("005930")
    await asyncio.sleep(3600)  # hours later the broker drops the token
    quote = await client.get_price("005930")
    assert quote.price == 72000
    assert token.call_count == 2
    sent = [call.request.headers["authorization"] for call in price.calls]
    assert sent == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_auth_expired_after_exactly_one_reissue(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(side_effect=tokens_from("tok-1", "tok-2", "tok-3"))
    price = broker.get(PRICE).mock(side_effect=[price_ok()] + [gateway_error("EGW00121")] * 5)
    client = make_client()
    await client.get_price("005930")
    await asyncio.sleep(120)
    with pytest.raises(AuthExpired, match="after a fresh token was issued") as info:
        await client.get_price("005930")
    assert info.value.msg_cd == "EGW00121"
    assert info.value.endpoint == f"GET {PRICE}"
    assert f"GET {PRICE}" in str(info.value)
    assert token.call_count == 2
    assert price.call_count == 3
    assert client.tokens.token is None  # the refused fresh token is not kept either


async def test_an_expired_token_within_the_cooldown_does_not_cascade(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(side_effect=tokens_from("tok-1", "tok-2"))
    broker.get(PRICE).mock(side_effect=[price_ok(), gateway_error("EGW00123")])
    client = make_client()
    await client.get_price("005930")
    await asyncio.sleep(10)
    with pytest.raises(TokenCooldown) as info:
        await client.get_price("005930")
    assert info.value.retry_after == pytest.approx(50.0)
    assert token.call_count == 1


async def test_a_herd_failing_on_one_expired_token_causes_one_reissue(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    token = broker.post(TOKEN).mock(side_effect=tokens_from("tok-1", "tok-2", "tok-3"))

    async def by_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # a round trip, so all ten are in flight with tok-1
        if request.headers["authorization"] == "Bearer tok-1" and now() > 100:
            return gateway_error("EGW00123")
        return price_ok()

    price = broker.get(PRICE).mock(side_effect=by_token)
    client = make_client()
    await client.get_price("005930")
    await asyncio.sleep(200)
    quotes = await asyncio.gather(*(client.get_price("005930") for _ in range(10)))
    assert len(quotes) == 10
    assert token.call_count == 2
    assert client.tokens.token == "tok-2"
    refused = [call for call in price.calls if call.response.status_code == 500]
    assert len(refused) == 10  # every one of them was in flight with the expired token
    assert price.call_count == 1 + 10 + 10


async def test_callers_queued_for_the_budget_do_not_send_a_token_already_refused(
    broker: respx.MockRouter, make_client: Callable[..., KisClient]
) -> None:
    # 60 callers on an 18/s budget: the first wave meets EGW00123; the rest were still
    # queued for the budget then, and must go out with the new token, not the dead one.
    token = broker.post(TOKEN).mock(side_effect=tokens_from("tok-1", "tok-2"))

    async def by_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # a round trip, so a whole wave is in flight at once
        if request.headers["authorization"] == "Bearer tok-1" and now() > 100:
            return gateway_error("EGW00123")
        return price_ok()

    price = broker.get(PRICE).mock(side_effect=by_token)
    client = make_client()
    await client.get_price("005930")
    await asyncio.sleep(200)
    quotes = await asyncio.gather(*(client.get_price("005930") for _ in range(60)))
    assert len(quotes) == 60
    assert token.call_count == 2
    dead = [c for c in price.calls if c.request.headers["authorization"] == "Bearer tok-1"]
    assert len(dead) == 1 + 18  # the quote at t=0, then only the wave already in flight
