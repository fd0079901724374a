"""The realtime approval key on the wire: POST /oauth2/Approval, its answers and refusals."""

from __future__ import annotations

import httpx
import pytest
import respx

from system.broker import BrokerRejected, BrokerUnavailable, KisClient, MalformedResponse
from tests.unit.broker.conftest import APPKEY, APPSECRET, Script, sent_json

pytestmark = pytest.mark.looptime

APPROVAL = "/oauth2/Approval"


async def test_the_key_is_asked_with_appkey_and_secretkey(
    broker: respx.MockRouter, token_route: respx.Route, client: KisClient
) -> None:
    route = broker.post(APPROVAL).mock(
        return_value=httpx.Response(200, json={"approval_key": "a1b2c3-approval"})
    )
    assert await client.approval_key() == "a1b2c3-approval"
    assert sent_json(route) == {
        "grant_type": "client_credentials",
        "appkey": APPKEY,
        "secretkey": APPSECRET,
    }
    request = route.calls.last.request
    assert request.headers["content-type"].startswith("application/json")
    assert "authorization" not in request.headers
    assert token_route.call_count == 0  # no access token is needed for it
    assert client.metrics.requests_sent == 1


async def test_an_oauth_style_refusal_is_a_rejection_not_retried(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.post(APPROVAL).mock(
        return_value=httpx.Response(
            403, json={"error_code": "EGW00103", "error_description": "유효하지 않은 AppKey입니다."}
        )
    )
    with pytest.raises(BrokerRejected) as refused:
        await client.approval_key()
    assert (refused.value.msg_cd, refused.value.status_code) == ("EGW00103", 403)
    assert str(refused.value) == (
        "POST /oauth2/Approval: the broker rejected the request with EGW00103 "
        "(유효하지 않은 AppKey입니다.), HTTP 403; retrying the same request will not help "
        "— fix its input"
    )
    assert route.call_count == 1
    assert APPSECRET not in str(refused.value)


async def test_an_unavailable_broker_is_retried_like_a_read(
    broker: respx.MockRouter, client: KisClient
) -> None:
    script = Script(
        httpx.ConnectError("refused"),
        httpx.Response(503, text="busy"),
        httpx.Response(200, json={"approval_key": "k-3"}),
    )
    broker.post(APPROVAL).mock(side_effect=script)
    assert await client.approval_key() == "k-3"
    assert len(script.times) == 3
    assert client.metrics.retries == 2


async def test_an_answer_without_a_key_is_malformed(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.post(APPROVAL).mock(return_value=httpx.Response(200, json={"approval": ""}))
    with pytest.raises(MalformedResponse) as malformed:
        await client.approval_key()
    assert str(malformed.value) == (
        "POST /oauth2/Approval: the answer carries no approval_key; retry, and check that "
        "base_url points at the KIS Open API"
    )
    assert route.call_count == 3  # read_retries=2
    assert isinstance(malformed.value, BrokerUnavailable)
    assert APPSECRET not in str(malformed.value)
