"""The alert notifier against a respx webhook: delivery, retries, give-up, rejection, the
bounded queue, a hanging webhook, closing, log-only mode and keeping the webhook's token
out of every log line. On virtual time: backoff waits are checked to the exact loop-time
gap a seeded RNG makes."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from system.broker import SettingsError
from system.broker.backoff import jittered_backoff
from system.trading.alerts import (
    Alert,
    AlertNotifier,
    AlertSettings,
    classify,
    metric_names,
    webhook_origin,
)

pytestmark = pytest.mark.looptime

# The token is in both the path and the query, as real webhooks put it; both distinctive,
# so a leak into any log line is easy to spot.
PATH_TOKEN = "T0KEN-IN-PATH-never-log"
QUERY_TOKEN = "T0KEN-IN-QUERY-never-log"
WEBHOOK = f"https://hooks.test:8443/services/{PATH_TOKEN}?key={QUERY_TOKEN}"
ORIGIN = "https://hooks.test:8443"
SEED = 7
# looptime keeps loop time in steps of 1 µs: recorded gaps match computed delays to that.
TICK = 1e-5
WAIT_S = 600.0  # virtual seconds: a bound that only a broken notifier ever reaches


def make_settings(**overrides: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "webhook_url": WEBHOOK,
        "timeout_s": 5.0,
        "max_attempts": 4,
        "backoff_base_s": 1.0,
        "backoff_max_s": 30.0,
        "queue_size": 100,
        "close_timeout_s": 60.0,
    }
    values.update(overrides)
    return AlertSettings(**values)


def alert(title: str = "Trading halted", *, at: float = 100.0, **overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "category": "halt",
        "severity": "critical",
        "title": title,
        "message": "daily loss limit reached",
        "details": {"reason": "daily-loss", "limit": "1000000"},
        "at": at,
    }
    values.update(overrides)
    return Alert(**values)


def loop_now() -> float:
    return asyncio.get_running_loop().time()


class Webhook:
    """A respx side effect playing ``answers`` in order, the last one forever. An answer is
    an ``httpx.Response``, an exception to raise, or ``HANG`` (no answer until ``release``).
    Records each request's body, headers and loop time."""

    HANG = "hang"

    def __init__(self, *answers: httpx.Response | Exception | str) -> None:
        self.answers = list(answers) or [httpx.Response(200)]
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(loop_now())
        self.arrived.set()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == self.HANG:
            await self.released.wait()
            return httpx.Response(200)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    @property
    def ids(self) -> list[str]:
        return [json.loads(request.content)["alert_id"] for request in self.requests]

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.times, self.times[1:], strict=False)]

    async def next_request(self) -> None:
        self.arrived.clear()
        await asyncio.wait_for(self.arrived.wait(), 1.0)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx in front of every httpx client; a request to anything unrouted fails."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def route(router: respx.MockRouter, webhook: Webhook) -> respx.Route:
    return router.post(host="hooks.test").mock(side_effect=webhook)


async def settle(notifier: AlertNotifier) -> None:
    """Until nothing is pending (virtual time: backoff waits take no wall time)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            if not notifier.metrics()["alerts_pending"]:
                return
            await asyncio.sleep(0.05)


def expected_backoffs(count: int, *, base_s: float = 1.0, max_s: float = 30.0) -> list[float]:
    """The waits a notifier seeded with SEED must sleep before its retries 1..count."""
    rng = random.Random(SEED)
    return [jittered_backoff(n, base_s=base_s, max_s=max_s, rng=rng) for n in range(1, count + 1)]


def counts(notifier: AlertNotifier) -> dict[str, float]:
    return {name: value for name, value in notifier.metrics().items() if value}


# -- delivery ----------------------------------------------------------------------------


async def test_a_2xx_delivers_the_alert_as_json_with_its_idempotency_key(
    router: respx.MockRouter,
) -> None:
    webhook = Webhook(httpx.Response(204))
    route(router, webhook)
    raised = alert(alert_id="halt-0001")
    async with AlertNotifier(make_settings()) as notifier:
        notifier.notify(raised)
        await settle(notifier)

    (request,) = webhook.requests
    assert request.method == "POST"
    assert request.url == WEBHOOK
    assert request.headers["Idempotency-Key"] == "halt-0001"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "alert_id": "halt-0001",
        "category": "halt",
        "severity": "critical",
        "title": "Trading halted",
        "message": "daily loss limit reached",
        "details": {"reason": "daily-loss", "limit": "1000000"},
        "at": 100.0,
    }
    assert counts(notifier) == {"alerts_sent": 1, "alerts_delivered": 1}


async def test_a_503_is_retried_after_the_seeded_backoff_then_delivered(
    router: respx.MockRouter,
) -> None:
    webhook = Webhook(httpx.Response(503), httpx.Response(503), httpx.Response(200))
    route(router, webhook)
    async with AlertNotifier(make_settings(), rng=random.Random(SEED)) as notifier:
        notifier.notify(alert(alert_id="halt-0002"))
        await settle(notifier)

    assert webhook.ids == ["halt-0002"] * 3
    assert {request.headers["Idempotency-Key"] for request in webhook.requests} == {"halt-0002"}
    # The waits were asyncio.sleep on the loop's clock: each gap is exactly the jittered
    # backoff the seed gives (1st retry in [0.5, 1] s, 2nd in [1, 2] s).
    assert webhook.gaps == pytest.approx(expected_backoffs(2), abs=TICK)
    assert 0.5 <= webhook.gaps[0] <= 1.0 <= webhook.gaps[1] <= 2.0
    assert counts(notifier) == {"alerts_sent": 1, "alerts_delivered": 1, "alerts_retried": 2}


async def test_a_429_is_retried_no_sooner_than_its_retry_after_capped_at_backoff_max(
    router: respx.MockRouter,
) -> None:
    webhook = Webhook(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(200),
    )
    route(router, webhook)
    settings = make_settings(backoff_max_s=20.0)
    async with AlertNotifier(settings, rng=random.Random(SEED)) as notifier:
        notifier.notify(alert())
        await settle(notifier)

    assert webhook.gaps == pytest.approx([7.0, 20.0], abs=TICK)
    assert counts(notifier) == {"alerts_sent": 1, "alerts_delivered": 1, "alerts_retried": 2}


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.RemoteProtocolError("peer closed connection without sending a response"),
    ],
    ids=lambda failure: type(failure).__name__,
)
async def test_timeouts_and_connection_errors_are_retried(
    router: respx.MockRouter, failure: Exception
) -> None:
    webhook = Webhook(failure, httpx.Response(200))
    route(router, webhook)
    async with AlertNotifier(make_settings(), rng=random.Random(SEED)) as notifier:
        notifier.notify(alert())
        await settle(notifier)

    assert len(webhook.requests) == 2
    assert webhook.gaps == pytest.approx(expected_backoffs(1), abs=TICK)
    assert counts(notifier) == {"alerts_sent": 1, "alerts_delivered": 1, "alerts_retried": 1}


async def test_an_attempt_without_an_answer_is_cut_at_timeout_s_and_retried(
    router: respx.MockRouter,
) -> None:
    # respx bypasses httpx's socket timeouts: only the notifier's own deadline can end this.
    webhook = Webhook(Webhook.HANG, httpx.Response(200))
    route(router, webhook)
    async with AlertNotifier(make_settings(timeout_s=5.0), rng=random.Random(SEED)) as notifier:
        notifier.notify(alert())
        await settle(notifier)

    assert webhook.gaps == pytest.approx([5.0 + expected_backoffs(1)[0]], abs=TICK)
    assert counts(notifier) == {"alerts_sent": 1, "alerts_delivered": 1, "alerts_retried": 1}


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
async def test_a_refusal_other_than_429_is_not_retried_and_counted_as_rejected(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    webhook = Webhook(httpx.Response(status), httpx.Response(200))
    route(router, webhook)
    with caplog.at_level(logging.ERROR, logger="system.trading.alerts"):
        async with AlertNotifier(make_settings()) as notifier:
            notifier.notify(alert(alert_id="halt-0400"))
            await settle(notifier)
            await asyncio.sleep(60)  # a retry would have come by now

    assert len(webhook.requests) == 1
    assert counts(notifier) == {"alerts_sent": 1, "alerts_rejected": 1}
    assert any(
        "halt-0400 rejected" in message and f"answered {status}" in message
        for message in caplog.messages
    )


async def test_after_max_attempts_the_alert_is_given_up_and_counted(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = Webhook(httpx.Response(503))
    route(router, webhook)
    with caplog.at_level(logging.ERROR, logger="system.trading.alerts"):
        async with AlertNotifier(
            make_settings(max_attempts=3), rng=random.Random(SEED)
        ) as notifier:
            notifier.notify(alert(alert_id="halt-0503"))
            await settle(notifier)
            await asyncio.sleep(120)  # a 4th attempt would have come by now

    assert len(webhook.requests) == 3
    assert webhook.gaps == pytest.approx(expected_backoffs(2), abs=TICK)
    assert counts(notifier) == {"alerts_sent": 1, "alerts_retried": 2, "alerts_failed": 1}
    (given_up,) = [m for m in caplog.messages if "not delivered" in m]
    assert "halt-0503" in given_up
    assert "answered 503" in given_up
    assert "3 attempts" in given_up


async def test_deliveries_keep_the_order_alerts_were_raised_in_despite_retries(
    router: respx.MockRouter,
) -> None:
    webhook = Webhook(httpx.Response(500), httpx.Response(500), httpx.Response(200))
    route(router, webhook)
    async with AlertNotifier(make_settings(), rng=random.Random(SEED)) as notifier:
        for n in range(4):
            notifier.notify(alert(alert_id=f"a{n}"))
        await settle(notifier)

    assert webhook.ids == ["a0", "a0", "a0", "a1", "a2", "a3"]
    assert notifier.metrics()["alerts_delivered"] == 4


# -- never blocking ------------------------------------------------------------------------


async def test_notify_returns_at_once_while_the_webhook_hangs_and_queues_the_next_alert(
    router: respx.MockRouter,
) -> None:
    assert not inspect.iscoroutinefunction(AlertNotifier.notify)
    webhook = Webhook(Webhook.HANG, httpx.Response(200))
    route(router, webhook)
    async with AlertNotifier(make_settings(timeout_s=WAIT_S)) as notifier:
        notifier.notify(alert(alert_id="first"))
        await webhook.next_request()  # the first delivery is now stuck in the webhook

        started = loop_now()
        assert notifier.notify(alert(alert_id="second")) is None
        assert loop_now() == started  # no await inside notify: not a tick of loop time
        assert notifier.metrics()["alerts_pending"] == 2  # one in flight, one queued
        assert webhook.ids == ["first"]

        webhook.released.set()
        await settle(notifier)

    assert webhook.ids == ["first", "second"]
    assert counts(notifier) == {"alerts_sent": 2, "alerts_delivered": 2}


async def test_a_full_queue_drops_its_oldest_waiting_alert_and_counts_it(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = Webhook(Webhook.HANG, httpx.Response(200))
    route(router, webhook)
    with caplog.at_level(logging.WARNING, logger="system.trading.alerts"):
        async with AlertNotifier(make_settings(queue_size=2, timeout_s=WAIT_S)) as notifier:
            notifier.notify(alert(alert_id="a"))
            await webhook.next_request()  # "a" is in flight, not waiting
            for alert_id in ("b", "c", "d"):
                notifier.notify(alert(alert_id=alert_id))

            assert notifier.metrics()["alerts_dropped"] == 1
            assert notifier.metrics()["alerts_pending"] == 3
            webhook.released.set()
            await settle(notifier)

    assert webhook.ids == ["a", "c", "d"]
    assert counts(notifier) == {"alerts_sent": 4, "alerts_delivered": 3, "alerts_dropped": 1}
    assert any("alert b dropped from the full webhook queue" in m for m in caplog.messages)


async def test_alerts_raised_before_start_wait_for_it(router: respx.MockRouter) -> None:
    webhook = Webhook(httpx.Response(200))
    route(router, webhook)
    notifier = AlertNotifier(make_settings())
    notifier.notify(alert(alert_id="early"))
    assert notifier.metrics()["alerts_pending"] == 1
    async with notifier:
        await settle(notifier)
    assert webhook.ids == ["early"]


# -- closing -------------------------------------------------------------------------------


async def test_close_delivers_what_is_queued_within_the_grace_time(
    router: respx.MockRouter,
) -> None:
    webhook = Webhook(httpx.Response(503), httpx.Response(200))
    route(router, webhook)
    async with AlertNotifier(make_settings(close_timeout_s=10.0)) as notifier:
        for n in range(3):
            notifier.notify(alert(alert_id=f"a{n}"))
    assert webhook.ids == ["a0", "a0", "a1", "a2"]
    assert notifier.metrics()["alerts_delivered"] == 3
    assert notifier.metrics()["alerts_pending"] == 0


async def test_close_gives_up_after_the_grace_time_and_logs_what_is_left(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = Webhook(Webhook.HANG)
    route(router, webhook)
    notifier = AlertNotifier(make_settings(timeout_s=WAIT_S, close_timeout_s=2.0))
    with caplog.at_level(logging.ERROR, logger="system.trading.alerts"):
        async with notifier:
            notifier.notify(alert(alert_id="stuck"))
            notifier.notify(alert(alert_id="behind"))
            await webhook.next_request()
            closing = loop_now()
        closed_after = loop_now() - closing

    assert closed_after == pytest.approx(2.0, abs=TICK)
    assert counts(notifier) == {"alerts_sent": 2, "alerts_failed": 2}
    (left,) = [m for m in caplog.messages if "closed with" in m]
    assert "2 alert(s) not delivered" in left
    assert "from stuck" in left


async def test_an_alert_raised_after_close_is_logged_and_counted_as_dropped(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = Webhook(httpx.Response(200))
    route(router, webhook)
    async with AlertNotifier(make_settings()) as notifier:
        pass
    with caplog.at_level(logging.INFO, logger="system.trading.alerts"):
        notifier.notify(alert(alert_id="late"))
    assert webhook.requests == []
    assert counts(notifier) == {"alerts_sent": 1, "alerts_dropped": 1}
    assert any("late" in m and "closed" in m for m in caplog.messages)
    assert any(r.levelno == logging.CRITICAL and "late" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="closed"):
        notifier.start()


# -- the log line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "level"),
    [("info", logging.INFO), ("warning", logging.WARNING), ("critical", logging.CRITICAL)],
)
async def test_without_a_webhook_only_the_log_line_is_written(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture, severity: str, level: int
) -> None:
    anything = router.route()  # any request at all would be recorded here
    with caplog.at_level(logging.DEBUG):
        async with AlertNotifier(AlertSettings()) as notifier:
            notifier.notify(alert(severity=severity, alert_id="halt-log"))
            await asyncio.sleep(60)

    assert not anything.called
    (record,) = [r for r in caplog.records if r.name == "system.trading.alerts"]
    assert record.levelno == level
    line = record.getMessage()
    for part in ("halt", severity, "Trading halted", "daily loss limit reached"):
        assert part in line
    assert "reason=daily-loss" in line
    assert "limit=1000000" in line
    assert "halt-log" in line
    assert counts(notifier) == {"alerts_sent": 1}


async def test_no_log_line_ever_shows_the_webhook_token(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    # Every path that logs: notify, a retry, a give-up, a rejection, a connection error,
    # a delivery (and httpx's own request line), a drop, and a close with alerts left.
    webhook = Webhook(
        httpx.Response(503),
        httpx.ConnectError(f"cannot reach {WEBHOOK}"),
        httpx.Response(200),
        httpx.Response(400),
        httpx.Response(503),
        httpx.Response(503),
        Webhook.HANG,
    )
    route(router, webhook)
    settings = make_settings(max_attempts=2, queue_size=1, timeout_s=WAIT_S, close_timeout_s=1)
    with caplog.at_level(logging.DEBUG):
        async with AlertNotifier(settings, rng=random.Random(SEED)) as notifier:
            for n in range(4):
                notifier.notify(alert(alert_id=f"a{n}"))
                await settle(notifier)
            notifier.notify(alert(alert_id="hangs"))
            await webhook.next_request()
            notifier.notify(alert(alert_id="dropped"))
            notifier.notify(alert(alert_id="left"))
        notifier.notify(alert(alert_id="after-close"))

    assert counts(notifier) == {
        "alerts_sent": 8,
        "alerts_delivered": 1,
        "alerts_retried": 2,
        "alerts_failed": 4,
        "alerts_rejected": 1,
        "alerts_dropped": 2,
    }
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert any(record.name == "httpx" for record in caplog.records)
    assert ORIGIN in text  # where the failures were is still said
    assert PATH_TOKEN not in text
    assert QUERY_TOKEN not in text
    assert "/services/" not in text


# -- settings, alerts, names ---------------------------------------------------------------


def test_settings_are_read_from_squall_alert_variables() -> None:
    settings = AlertSettings.from_env(
        environ={
            "SQUALL_ALERT_WEBHOOK_URL": WEBHOOK,
            "SQUALL_ALERT_TIMEOUT_S": "2.5",
            "SQUALL_ALERT_MAX_ATTEMPTS": "7",
            "SQUALL_ALERT_BACKOFF_BASE_S": "0.25",
            "SQUALL_ALERT_BACKOFF_MAX_S": "8",
            "SQUALL_ALERT_QUEUE_SIZE": "50",
            "SQUALL_ALERT_CLOSE_TIMEOUT_S": "3",
        }
    )
    assert settings.webhook_url is not None
    assert settings.webhook_url.get_secret_value() == WEBHOOK
    assert (settings.timeout_s, settings.max_attempts, settings.queue_size) == (2.5, 7, 50)
    assert (settings.backoff_base_s, settings.backoff_max_s) == (0.25, 8.0)
    assert settings.close_timeout_s == 3.0
    assert settings.webhook_origin == ORIGIN
    assert PATH_TOKEN not in repr(settings)
    assert QUERY_TOKEN not in str(settings)


def test_without_variables_there_is_no_webhook() -> None:
    settings = AlertSettings.from_env(environ={"SQUALL_ALERT_WEBHOOK_URL": "  "})
    assert settings.webhook_url is None
    assert settings.webhook_origin is None
    assert settings.max_attempts == 5


def test_a_bad_variable_is_named_and_the_url_never_echoed() -> None:
    bad = f"ftp://hooks.test/{PATH_TOKEN}"
    with pytest.raises(SettingsError, match="SQUALL_ALERT_WEBHOOK_URL") as caught:
        AlertSettings.from_env(environ={"SQUALL_ALERT_WEBHOOK_URL": bad})
    assert PATH_TOKEN not in str(caught.value)
    with pytest.raises(ValidationError) as direct:
        AlertSettings(webhook_url=bad)
    assert PATH_TOKEN not in str(direct.value)
    with pytest.raises(SettingsError, match=r"SQUALL_ALERT_BACKOFF_MAX_S: .*backoff_base_s"):
        AlertSettings.from_env(
            environ={"SQUALL_ALERT_BACKOFF_BASE_S": "5", "SQUALL_ALERT_BACKOFF_MAX_S": "1"}
        )
    with pytest.raises(SettingsError, match="SQUALL_ALERT_MAX_ATTEMPTS"):
        AlertSettings.from_env(environ={"SQUALL_ALERT_MAX_ATTEMPTS": "0"})


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        (WEBHOOK, ORIGIN),
        ("https://user:pa55@hooks.test/x?token=y", "https://hooks.test"),
        ("http://127.0.0.1:9000/hook/abc", "http://127.0.0.1:9000"),
        ("http://[::1]:9000/hook/abc", "http://[::1]:9000"),
        ("https://hooks.test:notaport/abc", "<unparseable webhook URL>"),
        ("not a url", "<unparseable webhook URL>"),
    ],
)
def test_webhook_origin_keeps_only_scheme_host_and_port(url: str, origin: str) -> None:
    assert webhook_origin(url) == origin


def test_an_alert_id_is_derived_deterministically_unless_given() -> None:
    first, again = alert(at=12.5), alert(at=12.5)
    assert first.alert_id == again.alert_id
    assert first.alert_id.startswith("halt-")
    assert alert(at=12.5, title="Other").alert_id != first.alert_id
    assert alert(at=12.75).alert_id != first.alert_id
    assert alert(at=12.5, category="release").alert_id != first.alert_id
    assert alert(alert_id="mine").alert_id == "mine"


def test_an_alert_keeps_its_own_copy_of_the_details_and_checks_its_severity() -> None:
    details = {"reason": "daily-loss"}
    raised = alert(details=details)
    details["reason"] = "rewritten"
    assert raised.details == {"reason": "daily-loss"}
    assert hash(raised) == hash(alert(details={"other": "x"}))  # hashable despite the dict
    with pytest.raises(ValueError, match="severity must be one of info, warning, critical"):
        alert(severity="fatal")
    with pytest.raises(ValueError, match="category must not be empty"):
        alert(category="")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        *[(status, "delivered") for status in (200, 202, 204)],
        *[(status, "retry") for status in (429, 500, 502, 503, 504)],
        *[(status, "rejected") for status in (301, 400, 403, 404)],
    ],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status) == outcome


def test_metric_names_are_the_names_metrics_reports() -> None:
    notifier = AlertNotifier(AlertSettings())
    assert tuple(notifier.metrics()) == metric_names()
    assert set(metric_names()) >= {
        "alerts_sent",
        "alerts_delivered",
        "alerts_retried",
        "alerts_failed",
        "alerts_dropped",
        "alerts_pending",
    }
