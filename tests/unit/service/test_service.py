"""TradingService: waiting out cooldowns, retrying, reconciling, and what it reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from system.broker import (
    BrokerRejected,
    BrokerUnavailable,
    KisClient,
    KisSettings,
    MalformedResponse,
    OrderAck,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequest,
    SettingsError,
    TokenCooldown,
    TokenIssuanceFailed,
)
from system.service import OrderRecord, ServiceSettings, TradingService, metric_names
from tests.unit.broker.conftest import (
    DAILY,
    EGW00133,
    HASHKEY,
    ORDER,
    PRICE,
    TOKEN,
    Script,
    daily_page,
    daily_row,
    hash_ok,
    make_settings,
    now,
    order_ok,
    price_ok,
    token_body,
)

pytestmark = pytest.mark.looptime

BUY = OrderRequest("cid-1", "buy", "005930", 10, 70000)  # booked as daily_row's defaults
UNAVAILABLE = httpx.Response(503, text="Service Unavailable")
REJECTION = httpx.Response(
    200, json={"rt_cd": "1", "msg_cd": "APBK0919", "msg1": "주문가능금액을 초과 했습니다"}
)

MakeService = Callable[..., TradingService]


@pytest.fixture
def make_service(make_client: Callable[..., KisClient]) -> MakeService:
    """A service over a fresh client; ``kis`` overrides KisSettings, the rest ServiceSettings."""

    def build(kis: KisSettings | None = None, **policy: Any) -> TradingService:
        return TradingService(make_client(kis), ServiceSettings(**policy))

    return build


@pytest.fixture
def order_route(broker: respx.MockRouter) -> respx.Route:
    broker.post(HASHKEY).mock(side_effect=hash_ok)
    return broker.post(ORDER)


def events(record: OrderRecord) -> list[str]:
    return [what for _, what in record.events]


def only_order(service: TradingService) -> OrderRecord:
    (record,) = service.orders()
    return record


# --- settings ---------------------------------------------------------------------------


def test_the_settings_default_to_the_documented_policy() -> None:
    settings = ServiceSettings()
    assert (settings.quote_deadline_s, settings.order_deadline_s) == (120.0, 120.0)
    assert (settings.retry_wait_s, settings.reconcile_delay_s) == (1.0, 2.0)
    assert settings.on_unknown_order == "reconcile"
    assert (settings.health_window_s, settings.unhealthy_after_failures) == (30.0, 3)
    undocumented = [name for name, f in ServiceSettings.model_fields.items() if not f.description]
    assert undocumented == []
    assert "UNSAFE" in (ServiceSettings.model_fields["on_unknown_order"].description or "")


def test_the_settings_are_frozen_and_strict() -> None:
    settings = ServiceSettings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.retry_wait_s = 5.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="retry_wait"):
        ServiceSettings(retry_waits=2.0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="retry_wait_s"):
        ServiceSettings(retry_wait_s=0)


def test_from_env_reads_prefixed_variables_and_defaults_the_rest() -> None:
    environ = {
        "SQUALL_SERVICE_ORDER_DEADLINE_S": "60",
        "SQUALL_SERVICE_ON_UNKNOWN_ORDER": "resend",
        "SQUALL_SERVICE_UNHEALTHY_AFTER_FAILURES": "5",
        "SQUALL_SERVICE_RETRY_WAIT_S": "",  # empty counts as unset
        "SQUALL_KIS_TIMEOUT_S": "3",  # another prefix: ignored
    }
    settings = ServiceSettings.from_env(environ=environ)
    assert settings.order_deadline_s == 60.0
    assert settings.on_unknown_order == "resend"
    assert settings.unhealthy_after_failures == 5
    assert settings.retry_wait_s == 1.0
    assert ServiceSettings.from_env(environ={}) == ServiceSettings()


def test_from_env_names_the_invalid_variables_without_echoing_values() -> None:
    environ = {"SQUALL_SERVICE_ON_UNKNOWN_ORDER": "yolo-mode", "SQUALL_SERVICE_RETRY_WAIT_S": "0"}
    with pytest.raises(SettingsError) as info:
        ServiceSettings.from_env(environ=environ)
    message = str(info.value)
    assert "SQUALL_SERVICE_ON_UNKNOWN_ORDER" in message
    assert "SQUALL_SERVICE_RETRY_WAIT_S" in message
    assert "trading service" in message
    assert "yolo-mode" not in message


# --- quotes -----------------------------------------------------------------------------


async def test_quote_waits_out_a_token_cooldown_and_succeeds(
    broker: respx.MockRouter, make_service: MakeService
) -> None:
    tokens = Script(httpx.Response(403, json=EGW00133), httpx.Response(200, json=token_body()))
    token_route = broker.post(TOKEN).mock(side_effect=tokens)
    broker.get(PRICE).mock(return_value=price_ok())
    service = make_service()
    start = now()
    quote = await service.quote("005930")
    assert quote.price == 71000
    # Refused at 0 s; one retry_wait_s later the client says "cooldown, 59 s left";
    # the service sleeps exactly that and the second issuance is the only other request.
    assert token_route.call_count == 2
    assert tokens.gaps == [pytest.approx(60.0)]
    assert now() - start == pytest.approx(60.0)
    metrics = service.metrics()
    assert metrics["broker_token_cooldown_rejections"] == 1
    assert (metrics["quotes_served"], metrics["quotes_failed"]) == (1, 0)


async def test_quote_gives_up_at_once_when_the_cooldown_outlasts_the_deadline(
    broker: respx.MockRouter, make_service: MakeService
) -> None:
    broker.post(TOKEN).mock(return_value=httpx.Response(403, json=EGW00133))
    service = make_service(quote_deadline_s=30)
    start = now()
    with pytest.raises(TokenCooldown) as info:
        await service.quote("005930")
    assert info.value.retry_after == pytest.approx(59.0)
    # It did not sleep towards a deadline it could not make: one retry_wait_s, no more.
    assert now() - start == pytest.approx(1.0)
    assert service.metrics()["quotes_failed"] == 1


@pytest.mark.usefixtures("token_route")
async def test_quote_retries_an_unavailable_broker(
    broker: respx.MockRouter, make_service: MakeService
) -> None:
    price = broker.get(PRICE).mock(side_effect=Script(UNAVAILABLE, price_ok()))
    service = make_service(make_settings(read_retries=0), retry_wait_s=2.5)
    start = now()
    assert (await service.quote("005930")).price == 71000
    assert price.call_count == 2
    assert now() - start == pytest.approx(2.5)


@pytest.mark.usefixtures("token_route")
async def test_quote_gives_up_after_the_deadline_with_the_last_error(
    broker: respx.MockRouter, make_service: MakeService
) -> None:
    # 503s at first, then timeouts: the error raised must be a timeout, the last one seen.
    answers = Script(*[UNAVAILABLE] * 3, httpx.ReadTimeout("timed out"))
    price = broker.get(PRICE).mock(side_effect=answers)
    service = make_service(make_settings(read_retries=0), quote_deadline_s=10)
    start = now()
    with pytest.raises(BrokerUnavailable, match=r"no answer within") as info:
        await service.quote("005930")
    assert not isinstance(info.value, MalformedResponse)
    elapsed = now() - start
    assert 9.0 <= elapsed <= 10.0
    assert price.call_count == 11  # at 0, 1, ..., 10 s
    assert service.metrics()["quotes_failed"] == 1


@pytest.mark.usefixtures("token_route")
@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(200, text="<html>maintenance</html>"), MalformedResponse),
        (
            httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00103", "msg1": "x"}),
            BrokerRejected,
        ),
    ],
    ids=["malformed", "rejected"],
)
async def test_quote_raises_what_waiting_cannot_fix_at_once(
    broker: respx.MockRouter, make_service: MakeService, answer: httpx.Response, error: type
) -> None:
    price = broker.get(PRICE).mock(return_value=answer)
    service = make_service(make_settings(read_retries=0))
    start = now()
    with pytest.raises(error):
        await service.quote("005930")
    assert price.call_count == 1
    assert now() == start


async def test_quote_refuses_a_malformed_code_without_a_request(
    broker: respx.MockRouter, make_service: MakeService
) -> None:
    service = make_service()
    with pytest.raises(ValueError, match="6 digits"):
        await service.quote("5930")
    assert broker.calls.call_count == 0
    assert service.metrics()["quotes_failed"] == 1
    assert service.health().state == "healthy"


# --- orders -----------------------------------------------------------------------------


@pytest.mark.usefixtures("token_route")
async def test_an_order_acked_at_once_is_recorded(
    order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(return_value=order_ok("0000011111"))
    service = make_service()
    ack = await service.place_order(BUY)
    assert ack.odno == "0000011111"
    record = only_order(service)
    assert (record.client_order_id, record.order, record.status) == ("cid-1", BUY, "acked")
    assert record.odno == "0000011111"
    assert events(record) == ["requested", "acked: ODNO 0000011111"]
    assert service.metrics()["orders_acked"] == 1


@pytest.mark.usefixtures("token_route")
async def test_an_order_that_never_left_is_sent_again(
    order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(side_effect=Script(httpx.ConnectError("refused"), order_ok()))
    service = make_service()
    start = now()
    await service.place_order(BUY)
    assert order_route.call_count == 2
    assert now() - start == pytest.approx(1.0)
    record = only_order(service)
    assert record.status == "acked"
    assert "not executed (BrokerUnavailable); retrying in 1.0 s" in events(record)


@pytest.mark.usefixtures("token_route")
async def test_an_unknown_outcome_found_at_the_broker_is_never_sent_again(
    broker: respx.MockRouter, order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(side_effect=httpx.ReadTimeout("timed out"))
    daily = broker.get(DAILY).mock(return_value=daily_page([daily_row("0000012")]))
    service = make_service(reconcile_delay_s=2.0)
    start = now()
    ack = await service.place_order(BUY)
    assert ack == OrderAck("cid-1", "0000012", "91252", "091501")
    assert order_route.call_count == 1
    assert daily.call_count == 1
    assert now() - start == pytest.approx(2.0)  # asked only after reconcile_delay_s
    record = only_order(service)
    assert (record.status, record.odno) == ("reconciled", "0000012")
    assert events(record)[1].startswith("outcome unknown: no answer within")
    assert events(record)[-1] == "reconciled: present ODNO 0000012"
    metrics = service.metrics()
    assert (metrics["orders_unknown"], metrics["orders_reconciled_present"]) == (1, 1)
    assert (metrics["orders_acked"], metrics["orders_resent"]) == (0, 0)
    assert metrics["orders_unresolved"] == 0


@pytest.mark.usefixtures("token_route")
async def test_an_unknown_outcome_confirmed_absent_is_sent_exactly_once_more(
    broker: respx.MockRouter, order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(side_effect=Script(httpx.ReadTimeout("timed out"), order_ok("0000013")))
    broker.get(DAILY).mock(return_value=daily_page([]))
    service = make_service()
    ack = await service.place_order(BUY)
    assert ack.odno == "0000013"
    assert order_route.call_count == 2
    record = only_order(service)
    assert (record.status, record.odno) == ("acked", "0000013")
    assert events(record)[-2:] == ["reconciled: absent", "acked: ODNO 0000013"]
    metrics = service.metrics()
    assert (metrics["orders_reconciled_absent"], metrics["orders_acked"]) == (1, 1)


@pytest.mark.usefixtures("token_route")
async def test_an_order_that_cannot_be_reconciled_stays_unknown(
    broker: respx.MockRouter, order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(side_effect=httpx.ReadTimeout("timed out"))
    broker.get(DAILY).mock(return_value=UNAVAILABLE)
    service = make_service(order_deadline_s=20)
    start = now()
    with pytest.raises(OrderOutcomeUnknown, match="do not re-send") as info:
        await service.place_order(BUY)
    # The caller hears "unknown" (never "unavailable", which would invite a re-send).
    assert isinstance(info.value.__cause__, BrokerUnavailable)
    assert order_route.call_count == 1
    assert now() - start <= 20
    record = only_order(service)
    assert record.status == "unknown"
    assert events(record)[-1] == "gave up, outcome unknown (BrokerUnavailable)"
    assert service.metrics()["orders_unresolved"] == 1
    assert "1 order of unknown outcome" in service.health().reasons
    # Long after the failures, and with the broker answering again, it still degrades.
    broker.get(PRICE).mock(return_value=price_ok())
    await asyncio.sleep(60)
    await service.quote("005930")
    assert service.health().state == "degraded"
    assert service.health().reasons == ("1 order of unknown outcome",)


@pytest.mark.usefixtures("token_route")
async def test_resend_mode_sends_an_unknown_order_twice(
    broker: respx.MockRouter, order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(side_effect=Script(httpx.ReadTimeout("timed out"), order_ok("0000014")))
    daily = broker.get(DAILY).mock(return_value=daily_page([]))
    service = make_service(on_unknown_order="resend")
    ack = await service.place_order(BUY)
    assert ack.odno == "0000014"
    assert order_route.call_count == 2  # the bug Squall's scenarios must catch
    assert daily.call_count == 0  # nobody asked the broker
    record = only_order(service)
    assert (record.client_order_id, record.status) == ("cid-1", "acked")
    assert "resent (unsafe) as cid-1~resend1" in events(record)
    assert ack.client_order_id == "cid-1~resend1"
    metrics = service.metrics()
    assert (metrics["orders_resent"], metrics["orders_unknown"]) == (1, 1)


@pytest.mark.usefixtures("token_route")
async def test_a_rejected_order_is_recorded_and_raised(
    order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(return_value=REJECTION)
    service = make_service()
    with pytest.raises(OrderRejected, match="APBK0919"):
        await service.place_order(BUY)
    assert order_route.call_count == 1
    record = only_order(service)
    assert (record.status, record.odno) == ("rejected", None)
    assert events(record)[-1] == "rejected: APBK0919 주문가능금액을 초과 했습니다"
    assert service.metrics()["orders_rejected"] == 1
    assert service.health().state == "healthy"  # "no" comes from a working broker


async def test_an_order_never_sent_before_the_deadline_failed(
    broker: respx.MockRouter, order_route: respx.Route, make_service: MakeService
) -> None:
    broker.post(TOKEN).mock(return_value=httpx.Response(403, json=EGW00133))
    service = make_service(order_deadline_s=30)
    with pytest.raises(TokenCooldown):
        await service.place_order(BUY)
    assert order_route.call_count == 0
    assert only_order(service).status == "failed"
    assert service.metrics()["orders_failed"] == 1


@pytest.mark.usefixtures("token_route")
async def test_a_placed_client_order_id_is_refused_and_one_rejected_may_be_retried(
    order_route: respx.Route, make_service: MakeService
) -> None:
    order_route.mock(side_effect=Script(REJECTION, order_ok("0000015")))
    service = make_service()
    with pytest.raises(OrderRejected):
        await service.place_order(BUY)
    await service.place_order(BUY)  # rejected means not placed: the id is free
    with pytest.raises(ValueError, match="already placed as broker order 0000015"):
        await service.place_order(BUY)
    assert order_route.call_count == 2
    record = only_order(service)
    assert record.status == "acked"
    assert events(record)[-2:] == ["requested again", "acked: ODNO 0000015"]


@pytest.mark.usefixtures("token_route")
async def test_a_cancelled_place_order_in_flight_is_unknown(
    order_route: respx.Route, make_service: MakeService
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return order_ok()

    order_route.mock(side_effect=hang)
    service = make_service()
    task = asyncio.create_task(service.place_order(BUY))
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert only_order(service).status == "unknown"
    assert service.metrics()["orders_unknown"] == 1


async def test_a_cancelled_place_order_waiting_for_a_token_failed(
    broker: respx.MockRouter, order_route: respx.Route, make_service: MakeService
) -> None:
    broker.post(TOKEN).mock(return_value=httpx.Response(403, json=EGW00133))
    service = make_service()
    task = asyncio.create_task(service.place_order(BUY))
    await asyncio.sleep(10)  # the service is waiting out the token cooldown
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert order_route.call_count == 0
    record = only_order(service)
    assert (record.status, events(record)[-1]) == ("failed", "cancelled before it was placed")
    assert service.metrics()["orders_failed"] == 1
    assert service.metrics()["orders_unknown"] == 0


async def test_orders_are_snapshots_in_first_seen_order(
    broker: respx.MockRouter, token_route: respx.Route, order_route: respx.Route
) -> None:
    order_route.mock(side_effect=Script(order_ok("1"), order_ok("2")))
    async with TradingService(KisClient(make_settings())) as service:
        await service.place_order(OrderRequest("b", "buy", "005930", 1))
        before = service.orders()
        await service.place_order(OrderRequest("a", "sell", "000660", 2))
        assert [record.client_order_id for record in service.orders()] == ["b", "a"]
        before[0].events.clear()
        assert len(service.orders()[0].events) == 2
    with pytest.raises(RuntimeError, match="closed"):  # leaving the block closed the client
        await service.quote("005930")


async def test_recent_orders_are_the_last_seen_newest_first_as_snapshots(
    broker: respx.MockRouter, token_route: respx.Route, order_route: respx.Route
) -> None:
    order_route.mock(side_effect=Script(*(order_ok(str(n)) for n in range(1, 4))))
    async with TradingService(KisClient(make_settings())) as service:
        assert service.recent_orders(5) == []
        for cid in ("a", "b", "c"):
            await service.place_order(OrderRequest(cid, "buy", "005930", 1))
        latest = service.recent_orders(2)
        assert [(r.client_order_id, r.odno) for r in latest] == [("c", "3"), ("b", "2")]
        assert [r.client_order_id for r in service.recent_orders(10)] == ["c", "b", "a"]
        assert service.recent_orders(0) == []
        latest[0].events.clear()
        assert len(service.recent_orders(1)[0].events) == 2


# --- health and metrics -----------------------------------------------------------------


@pytest.mark.usefixtures("token_route")
async def test_health_goes_unhealthy_after_three_failures_and_recovers_after_the_window(
    broker: respx.MockRouter, make_service: MakeService
) -> None:
    broker.get(PRICE).mock(side_effect=Script(*[UNAVAILABLE] * 3, price_ok()))
    # A deadline of 0: one attempt per quote(), so each call is one interaction.
    service = make_service(make_settings(read_retries=0), quote_deadline_s=0)
    assert service.health().state == "healthy"
    assert service.health().reasons == ()
    for failures in (1, 2):
        with pytest.raises(BrokerUnavailable):
            await service.quote("005930")
        health = service.health()
        assert health.state == "degraded", failures
        assert health.reasons == ("a broker interaction failed 0.0 s ago (BrokerUnavailable)",)
    with pytest.raises(BrokerUnavailable):
        await service.quote("005930")
    assert service.health().state == "unhealthy"
    assert service.health().reasons == ("3 consecutive broker failures (last: BrokerUnavailable)",)
    assert service.metrics()["health_state"] == 2
    await service.quote("005930")
    assert service.health().state == "degraded"
    assert service.metrics()["health_state"] == 1
    await asyncio.sleep(29.5)
    assert service.health().state == "degraded"
    await asyncio.sleep(0.6)
    # Healthy although the token's issuance cooldown still runs: the token is usable.
    assert service.client.tokens.cooldown_remaining > 0
    assert service.health().state == "healthy"
    assert service.metrics()["health_state"] == 0


async def test_health_sees_unanswered_requests_before_any_quote_has_failed(
    broker: respx.MockRouter, token_route: respx.Route, make_service: MakeService
) -> None:
    # A hanging broker: every attempt times out. One quote() makes several attempts (its
    # read retries) before it fails, so the interaction count alone would wait for it.
    broker.get(PRICE).mock(side_effect=httpx.ReadTimeout("no answer"))
    service = make_service(make_settings(read_retries=5), quote_deadline_s=0)
    quote = asyncio.create_task(service.quote("005930"))
    while service.client.unanswered.in_a_row < 3:
        assert not quote.done()
        assert service.health().state == "healthy"
        await asyncio.sleep(0.01)
    assert not quote.done()  # no interaction has failed yet
    assert service.health().state == "unhealthy"
    assert service.health().reasons == (
        "the broker left the last 3 requests unanswered (last: ReadTimeout)",
    )
    with pytest.raises(BrokerUnavailable):
        await quote
    broker.get(PRICE).mock(side_effect=None, return_value=price_ok())
    await service.quote("005930")  # any answer ends the run of silence
    assert service.client.unanswered.in_a_row == 0
    assert "unanswered" not in " ".join(service.health().reasons)


async def test_health_is_unhealthy_while_no_token_can_be_had(
    broker: respx.MockRouter, make_service: MakeService
) -> None:
    broker.post(TOKEN).mock(return_value=httpx.Response(403, json=EGW00133))
    service = make_service(quote_deadline_s=0)
    with pytest.raises(TokenIssuanceFailed):
        await service.quote("005930")
    health = service.health()
    assert health.state == "unhealthy"  # after one failure: the token rule, not the count
    assert health.reasons[0] == (
        "no usable access token, and token issuance is cooling down for another 60.0 s"
    )
    await asyncio.sleep(60)
    assert service.health().state == "healthy"


async def test_metrics_carry_the_documented_names(make_service: MakeService) -> None:
    metrics = make_service().metrics()
    assert set(metrics) == {
        "broker_requests_sent",
        "broker_token_issuance_attempts",
        "broker_token_issuances_succeeded",
        "broker_token_cooldown_rejections",
        "broker_rate_limited_retries",
        "broker_retries",
        "broker_unavailable_errors",
        "broker_orders_unknown",
        "broker_orders_reconciled",
        "broker_orders_confirmed_absent",
        "quotes_served",
        "quotes_failed",
        "orders_acked",
        "orders_rejected",
        "orders_failed",
        "orders_unknown",
        "orders_reconciled_present",
        "orders_reconciled_absent",
        "orders_resent",
        "orders_not_recorded",
        "records_refused",
        "orders_unresolved",
        "health_state",
    }
    assert all(type(value) is float for value in metrics.values())
    assert set(metrics.values()) == {0.0}
    # Scenario files are checked against metric_names() before anything runs.
    assert sorted(metric_names()) == sorted(metrics)
