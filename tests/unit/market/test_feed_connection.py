"""The feed client's connection on virtual time: connect, subscribe, heartbeat, stall,
reconnect with seeded backoff, resubscribe, refusals, limits and shutdown."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from system.broker import BrokerUnavailable
from system.market import (
    FeedClient,
    FeedStatus,
    FeedUnavailable,
    PriceUpdate,
    SubscriptionLimitExceeded,
)
from tests.unit.market.conftest import (
    URL,
    WAIT_S,
    Approvals,
    FakeConnection,
    FakeServer,
    Quotes,
    ack,
    close_to,
    now,
    pingpong,
    seeded_delays,
    trade_record,
    trades,
)

pytestmark = pytest.mark.looptime


class StatusLog:
    """Every status the client published, with the loop time it came, and ways to wait."""

    def __init__(self, feed: FeedClient) -> None:
        self.seen: list[FeedStatus] = []
        self.times: list[float] = []
        self._changed = asyncio.Event()
        feed.add_status_listener(self._heard)

    def _heard(self, status: FeedStatus) -> None:
        self.seen.append(status)
        self.times.append(now())
        self._changed.set()

    @property
    def states(self) -> list[str]:
        """The states in order, each change once."""
        states: list[str] = []
        for status in self.seen:
            if not states or states[-1] != status.state:
                states.append(status.state)
        return states

    async def first(self, wanted: Callable[[FeedStatus], bool]) -> tuple[float, FeedStatus]:
        """The first status ``wanted`` accepts (waiting for it), and when it came."""
        async with asyncio.timeout(WAIT_S):
            while True:
                for at, status in zip(self.times, self.seen, strict=True):
                    if wanted(status):
                        return at, status
                self._changed.clear()
                await self._changed.wait()

    async def reach(self, state: str) -> FeedStatus:
        """The first status in ``state``."""
        return (await self.first(lambda status: status.state == state))[1]


def subscription(key: str, tr_id: str, code: str, tr_type: str = "1") -> dict[str, object]:
    return {
        "header": {
            "approval_key": key,
            "custtype": "P",
            "tr_type": tr_type,
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": tr_id, "tr_key": code}},
    }


async def test_connects_with_an_approval_key_and_subscribes_every_code(
    feed: FeedClient, server: FakeServer, approvals: Approvals
) -> None:
    log = StatusLog(feed)
    await feed.subscribe("005930")
    await feed.subscribe("000660")
    feed.start()
    connection = await server.connection(1)
    assert server.urls == [URL]
    assert approvals.calls == 1
    assert connection.messages() == [
        subscription("approval-key-1", "H0STCNT0", "005930"),
        subscription("approval-key-1", "H0STCNT0", "000660"),
    ]
    assert log.states == ["stopped", "connecting", "live"]  # subscribed before start()
    status = feed.status()
    assert (status.state, status.subscriptions, status.reconnects, status.detail) == (
        "live",
        ("000660", "005930"),
        0,
        "",
    )
    assert status.last_message_at == connection.opened_at
    metrics = feed.metrics()
    assert (metrics["feed_subscriptions"], metrics["feed_subscriptions_active"]) == (2.0, 2.0)
    assert metrics["feed_state"] == 0.0


async def test_books_are_subscribed_when_asked_or_by_setting(
    make_feed: Callable[..., FeedClient], server: FakeServer
) -> None:
    feed = make_feed(books=True)
    await feed.subscribe("005930")
    await feed.subscribe("000660", book=False)
    feed.start()
    connection = await server.connection(1)
    assert connection.registrations() == [
        ("1", "H0STCNT0", "005930"),
        ("1", "H0STASP0", "005930"),
        ("1", "H0STCNT0", "000660"),
    ]


async def test_subscribing_while_live_sends_at_once_and_only_once(
    feed: FeedClient, server: FakeServer
) -> None:
    feed.start()
    connection = await server.connection(1)
    await feed.subscribe("005930")
    await feed.subscribe("005930")
    await feed.subscribe("005930", book=True)  # adds only the book
    await connection.delivered()
    assert connection.registrations() == [
        ("1", "H0STCNT0", "005930"),
        ("1", "H0STASP0", "005930"),
    ]
    assert feed.metrics()["feed_subscriptions_active"] == 2.0


async def test_unsubscribe_removes_both_registrations_and_the_price(
    feed: FeedClient, server: FakeServer
) -> None:
    await feed.subscribe("005930", book=True)
    await feed.subscribe("000660")
    feed.start()
    connection = await server.connection(1)
    connection.push(trades(trade_record()))
    await connection.delivered()
    assert feed.latest("005930") is not None
    await feed.unsubscribe("005930")
    await feed.unsubscribe("005930")
    await feed.unsubscribe("123456")  # never subscribed: nothing to send
    await connection.delivered()
    assert connection.registrations()[-2:] == [
        ("2", "H0STCNT0", "005930"),
        ("2", "H0STASP0", "005930"),
    ]
    assert len(connection.registrations()) == 5
    assert feed.latest("005930") is None
    assert feed.status().subscriptions == ("000660",)
    metrics = feed.metrics()
    assert (metrics["feed_subscriptions"], metrics["feed_subscriptions_active"]) == (1.0, 1.0)
    # Frames already on their way when the unsubscribe left are ignored.
    connection.push(trades(trade_record(accumulated=1010)))
    await connection.delivered()
    assert feed.latest("005930") is None
    assert feed.metrics()["feed_trades"] == 1.0


async def test_pingpong_is_echoed_verbatim_and_keeps_a_quiet_connection(
    feed: FeedClient, server: FakeServer
) -> None:
    feed.start()
    connection = await server.connection(1)
    # Unusual spacing on purpose: the echo must be the very text received.
    heartbeat = '{"header" : {"tr_id":"PINGPONG",  "datetime":"20260302093000"}}'
    for _ in range(5):
        await asyncio.sleep(50)  # stall_after_s is 60
        connection.push(heartbeat)
        await connection.delivered()
    assert connection.sent == [heartbeat] * 5
    assert len(server.connections) == 1
    metrics = feed.metrics()
    assert (metrics["feed_pingpongs"], metrics["feed_stalls"]) == (5.0, 0.0)
    assert feed.status().last_message_at == close_to(connection.opened_at + 250)


async def test_silence_for_stall_after_s_replaces_the_connection(
    feed: FeedClient, server: FakeServer
) -> None:
    log = StatusLog(feed)
    await feed.subscribe("005930")
    feed.start()
    first = await server.connection(1)
    first.push(trades(trade_record()))
    await first.delivered()
    heard_at = now()
    await asyncio.sleep(59.5)
    assert feed.status().state == "live"
    stalled = await log.reach("stalled")
    second = await server.connection(2)
    delay = seeded_delays(7, 1)[0]
    assert first.closed_at == close_to(heard_at + 60)
    assert stalled.since == close_to(heard_at + 60)
    assert stalled.detail == (
        f"stalled: neither data nor a heartbeat for 60.0 s; retry in {delay:.1f} s"
    )
    assert second.opened_at == close_to(heard_at + 60 + delay)
    assert log.states == ["stopped", "connecting", "live", "stalled", "reconnecting", "live"]
    metrics = feed.metrics()
    assert (metrics["feed_stalls"], metrics["feed_reconnects"]) == (1.0, 1.0)


async def test_after_a_stall_the_client_does_not_wait_for_the_closing_handshake(
    feed: FeedClient, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A half-open peer never answers the close frame: close() would hang for its timeout.
    async def unanswered_close(self: FakeConnection) -> None:
        self.closed_by_client = True
        await asyncio.sleep(3600)

    monkeypatch.setattr(FakeConnection, "close", unanswered_close)
    await feed.subscribe("005930")
    feed.start()
    first = await server.connection(1)
    first.push(trades(trade_record()))
    await first.delivered()
    heard_at = now()
    second = await server.connection(2)
    delay = seeded_delays(7, 1)[0]
    # Stall window plus backoff, not plus the close timeout (connect_timeout_s).
    assert second.opened_at == close_to(heard_at + 60 + delay)
    assert first.closed_by_client


async def test_a_connection_that_never_speaks_stalls_from_its_opening(
    make_feed: Callable[..., FeedClient], server: FakeServer
) -> None:
    server.auto_ack = False
    feed = make_feed(stall_after_s=10.0)
    feed.start()
    first = await server.connection(1)
    await server.connection(2)
    assert first.closed_at == close_to(first.opened_at + 10)


async def test_a_closed_connection_reconnects_resubscribes_and_resyncs(
    feed: FeedClient, server: FakeServer, quotes: Quotes
) -> None:
    log = StatusLog(feed)
    updates = []
    feed.add_listener(updates.append)
    await feed.subscribe("005930", book=True)
    feed.start()
    first = await server.connection(1)
    first.push(trades(trade_record(accumulated=1000)))
    await first.delivered()
    first.drop(1011, "server restart")
    lost = await log.reach("reconnecting")
    delay = seeded_delays(7, 1)[0]
    assert lost.detail == f"closed 1011; retry in {delay:.1f} s"
    await feed.subscribe("000660")  # asked while disconnected
    second = await server.connection(2)
    assert second.opened_at == close_to(first.closed_at + delay)
    assert second.registrations() == [
        ("1", "H0STCNT0", "005930"),
        ("1", "H0STASP0", "005930"),
        ("1", "H0STCNT0", "000660"),
    ]
    assert [code for code, _ in quotes.calls] == ["000660", "005930"]
    assert all(at == second.opened_at for _, at in quotes.calls)
    assert [(u.code, u.source, u.volume) for u in updates] == [
        ("005930", "feed", 1000),
        ("000660", "rest", 5000),
        ("005930", "rest", 5000),
    ]
    # Trades made while disconnected are the reconnect's to repair, not a gap.
    second.push(trades(trade_record(accumulated=6000)))
    await second.delivered()
    assert feed.latest("005930") == PriceUpdate(
        "005930", 71900, 400, 0.56, 6000, at=now(), source="feed", traded_at="093354"
    )
    metrics = feed.metrics()
    assert (metrics["feed_reconnects"], metrics["feed_gaps"], metrics["feed_resyncs"]) == (
        1.0,
        0.0,
        2.0,
    )
    assert feed.status().reconnects == 1
    assert log.states == ["stopped", "connecting", "live", "reconnecting", "live"]


async def test_no_resync_after_reconnect_when_disabled(
    make_feed: Callable[..., FeedClient], server: FakeServer, quotes: Quotes
) -> None:
    feed = make_feed(resync_on_reconnect=False)
    await feed.subscribe("005930")
    feed.start()
    (await server.connection(1)).drop()
    await server.connection(2)
    assert quotes.calls == []


async def test_refused_connects_back_off_exponentially_reproducibly_from_the_seed(
    feed: FeedClient, server: FakeServer
) -> None:
    log = StatusLog(feed)
    server.failures = [FeedUnavailable("could not connect: refused")] * 6
    started = now()
    feed.start()
    await server.connection(1)  # the 7th attempt
    gaps = [b - a for a, b in zip(server.attempts, server.attempts[1:], strict=False)]
    expected = seeded_delays(7, 6)
    assert gaps == close_to(expected)
    # base 1 s doubling to the 8 s cap, each jittered into [50 %, 100 %]:
    assert all(0.5 * c <= g <= c for g, c in zip(gaps, [1, 2, 4, 8, 8, 8], strict=True))
    assert server.attempts[0] == started
    assert log.states == ["connecting", "live"]  # never live before: still "connecting"
    metrics = feed.metrics()
    assert (metrics["feed_connect_attempts"], metrics["feed_connect_failures"]) == (7.0, 6.0)
    assert metrics["feed_reconnects"] == 0.0
    assert log.seen[1].detail == f"could not connect: refused; retry in {expected[0]:.1f} s"


async def test_another_seed_gives_another_schedule(
    make_feed: Callable[..., FeedClient], server: FakeServer
) -> None:
    server.failures = [FeedUnavailable("refused")] * 3
    make_feed(seed=8).start()
    await server.connection(1)
    gaps = [b - a for a, b in zip(server.attempts, server.attempts[1:], strict=False)]
    assert gaps == close_to(seeded_delays(8, 3))
    assert gaps != close_to(seeded_delays(7, 3))


async def test_the_backoff_starts_over_once_a_connection_proved_itself(
    feed: FeedClient, server: FakeServer
) -> None:
    await feed.subscribe("005930")
    server.failures = [FeedUnavailable("refused")] * 3
    feed.start()
    first = await server.connection(1)  # acked: a working connection
    first.drop()
    await server.connection(2)
    draws = seeded_delays(7, 4)
    # The fourth delay is the first of a new series: base × the fourth draw, not 8 s × it.
    fourth = draws[3] / 8.0
    assert server.attempts[4] - first.closed_at == close_to(fourth)


async def test_a_refused_session_is_not_retried_in_a_hot_loop(
    feed: FeedClient, server: FakeServer, approvals: Approvals
) -> None:
    log = StatusLog(feed)
    server.refuse[("H0STCNT0", "005930")] = ("OPSP8996", "ALREADY IN USE appkey")
    await feed.subscribe("005930")
    feed.start()
    await server.connection(5)
    opened = [c.opened_at for c in server.connections]
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    assert gaps == [close_to(delay) for delay in seeded_delays(7, 4)]
    assert feed.metrics()["feed_sessions_refused"] == 5.0
    assert approvals.calls == 1  # the key is fine: another session holds the appkey
    refused = await log.reach("reconnecting")
    assert refused.detail.startswith(
        "the server refused the session: OPSP8996 ALREADY IN USE appkey (KIS allows one "
        "realtime session per appkey"
    )


async def test_a_refused_subscription_is_reported_and_asked_again_only_on_reconnect(
    feed: FeedClient, server: FakeServer, approvals: Approvals
) -> None:
    server.refuse[("H0STCNT0", "000660")] = ("OPSP0008", "MAX SUBSCRIBE OVER")
    await feed.subscribe("005930")
    await feed.subscribe("000660")
    feed.start()
    first = await server.connection(1)
    status = feed.status()
    assert (status.state, status.detail) == (
        "live",
        "000660 H0STCNT0 refused by the server: OPSP0008 MAX SUBSCRIBE OVER",
    )
    assert status.refused == (("000660", "OPSP0008 MAX SUBSCRIBE OVER"),)
    metrics = feed.metrics()
    assert metrics["feed_subscriptions_rejected"] == 1.0
    assert (metrics["feed_subscriptions"], metrics["feed_subscriptions_active"]) == (2.0, 1.0)
    for _ in range(4):  # a while later, heartbeats only: nothing is asked again
        await asyncio.sleep(50)
        first.push(pingpong())
        await first.delivered()
    assert len(first.registrations()) == 2
    first.drop()
    second = await server.connection(2)
    assert second.registrations() == [("1", "H0STCNT0", "005930"), ("1", "H0STCNT0", "000660")]
    assert feed.metrics()["feed_subscriptions_rejected"] == 2.0
    assert approvals.calls == 1
    assert "approval-key" not in feed.status().detail


async def test_already_subscribed_counts_as_subscribed(
    feed: FeedClient, server: FakeServer, approvals: Approvals
) -> None:
    server.refuse[("H0STCNT0", "005930")] = ("OPSP0002", "ALREADY IN SUBSCRIBE")
    await feed.subscribe("005930")
    feed.start()
    await server.connection(1)
    metrics = feed.metrics()
    assert (metrics["feed_subscriptions_active"], metrics["feed_subscriptions_rejected"]) == (
        1.0,
        0.0,
    )
    assert feed.status().detail == ""
    assert approvals.calls == 1


async def test_an_unknown_refusal_gets_a_new_approval_key_for_the_next_connection(
    feed: FeedClient, server: FakeServer, approvals: Approvals
) -> None:
    server.refuse[("H0STCNT0", "005930")] = ("OPSP0011", "invalid approval : NOT FOUND")
    await feed.subscribe("005930")
    feed.start()
    first = await server.connection(1)
    assert feed.status().detail == (
        "005930 H0STCNT0 refused by the server: OPSP0011 invalid approval : NOT FOUND"
    )
    del server.refuse[("H0STCNT0", "005930")]
    first.drop()
    second = await server.connection(2)
    assert approvals.calls == 2
    assert second.messages() == [subscription("approval-key-2", "H0STCNT0", "005930")]
    assert feed.status().detail == ""


async def test_an_error_ack_for_nothing_subscribed_is_shown_as_a_notice(
    feed: FeedClient, server: FakeServer
) -> None:
    feed.start()
    connection = await server.connection(1)
    connection.push(ack("", "", "OPSP9999", "JSON PARSING ERROR", rt_cd="9"))
    await connection.delivered()
    assert feed.status().detail == "the server answered ? ?: OPSP9999 JSON PARSING ERROR"
    assert feed.metrics()["feed_subscriptions_rejected"] == 1.0


async def test_no_approval_key_is_a_failed_attempt_retried_after_backoff(
    feed: FeedClient, server: FakeServer, approvals: Approvals
) -> None:
    log = StatusLog(feed)
    approvals.errors = [
        BrokerUnavailable(
            "POST /oauth2/Approval: the broker is unavailable: no answer within 10.0 s",
            endpoint="POST /oauth2/Approval",
        )
    ]
    started = now()
    feed.start()
    await server.connection(1)
    delay = seeded_delays(7, 1)[0]
    assert server.attempts == [close_to(started + delay)]
    assert approvals.calls == 2
    assert log.seen[1].state == "connecting"
    assert log.seen[1].detail == (
        "no realtime approval key: POST /oauth2/Approval: the broker is unavailable: no answer "
        f"within 10.0 s; retry in {delay:.1f} s"
    )
    assert feed.metrics()["feed_connect_failures"] == 1.0


async def test_a_connect_that_hangs_times_out(feed: FeedClient, server: FakeServer) -> None:
    log = StatusLog(feed)
    server.hang = True
    started = now()
    feed.start()
    at, status = await log.first(lambda status: "no connection" in status.detail)
    delay = seeded_delays(7, 1)[0]
    assert at == close_to(started + 5.0)
    assert (status.state, status.detail) == (
        "connecting",
        f"no connection within 5.0 s; retry in {delay:.1f} s",
    )
    await server.attempt(2)
    assert server.attempts == [started, close_to(started + 5.0 + delay)]


async def test_subscriptions_beyond_the_limit_are_refused_before_sending(
    make_feed: Callable[..., FeedClient], server: FakeServer
) -> None:
    feed = make_feed(max_subscriptions=3)
    await feed.subscribe("005930")
    await feed.subscribe("000660", book=True)
    with pytest.raises(SubscriptionLimitExceeded) as refused:
        await feed.subscribe("035420")
    assert str(refused.value) == (
        "cannot subscribe 035420: it needs 1 more realtime registration(s) and 3 are allowed "
        "per appkey (KIS answers OPSP0008 MAX SUBSCRIBE OVER beyond that); nothing was sent "
        "— unsubscribe another code first, or raise max_subscriptions if the broker allows more"
    )
    assert feed.status().subscriptions == ("000660", "005930")
    await feed.unsubscribe("000660")
    await feed.subscribe("035420")
    feed.start()
    connection = await server.connection(1)
    assert connection.registrations() == [("1", "H0STCNT0", "005930"), ("1", "H0STCNT0", "035420")]


async def test_a_malformed_code_is_a_value_error(feed: FeedClient) -> None:
    with pytest.raises(ValueError, match="stock code must be 6 digits"):
        await feed.subscribe("5930")
    assert feed.status().subscriptions == ()


async def test_aclose_stops_every_task_and_closes_the_connection(
    feed: FeedClient, server: FakeServer, quotes: Quotes
) -> None:
    log = StatusLog(feed)
    quotes.delay = 30.0
    await feed.subscribe("005930")
    feed.start()
    connection = await server.connection(1)
    connection.push(trades(trade_record(accumulated=1000), trade_record(accumulated=2000)))
    await connection.delivered()  # the gap started a slow resync
    assert len(asyncio.all_tasks()) == 3  # this test, the client's runner, its resync
    await feed.aclose()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert connection.closed
    assert log.states[-1] == "stopped"
    assert feed.metrics()["feed_state"] == 4.0
    await feed.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="this feed client was closed"):
        feed.start()


async def test_async_with_starts_and_stops(
    make_feed: Callable[..., FeedClient], server: FakeServer
) -> None:
    async with make_feed() as feed:
        await server.connection(1)
        assert feed.status().state == "live"
    assert feed.status().state == "stopped"
    assert server.connections[0].closed


async def test_status_listeners_hear_changes_not_every_message(
    feed: FeedClient, server: FakeServer
) -> None:
    log = StatusLog(feed)
    feed.start()
    connection = await server.connection(1)
    seen = len(log.seen)
    connection.push(pingpong(), pingpong())
    await connection.delivered()
    assert len(log.seen) == seen
    await feed.subscribe("005930")
    await connection.delivered()
    assert log.seen[-1].subscriptions == ("005930",)


async def test_a_failing_status_listener_is_counted_and_harmless(
    feed: FeedClient, server: FakeServer
) -> None:
    def broken(status: FeedStatus) -> None:
        raise RuntimeError("dashboard bug")

    feed.add_status_listener(broken)
    feed.start()
    await server.connection(1)
    assert feed.status().state == "live"
    assert feed.metrics()["feed_listener_errors"] == 2.0  # connecting, live
