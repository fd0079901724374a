"""HeartbeatManager: pings, pongs, liveness and closing the silent."""

from __future__ import annotations

import asyncio

import pytest

from system.broker.clock import loop_time
from system.gateway import ConnectionManager, HeartbeatManager
from tests.unit.gateway.fakes import FakeSocket, settle

pytestmark = pytest.mark.looptime


def parts(interval: float = 10, timeout: float = 30) -> tuple[ConnectionManager, HeartbeatManager]:
    manager = ConnectionManager()
    return manager, HeartbeatManager(manager, interval_s=interval, timeout_s=timeout)


async def test_ping_sends_to_all_connections() -> None:
    manager, heartbeat = parts()
    sockets = [FakeSocket() for _ in range(3)]
    for socket in sockets:
        manager.connect(socket)
    await asyncio.sleep(5)
    assert heartbeat.ping_all() == 3
    await settle()
    now = loop_time()
    assert [s.messages("ping") for s in sockets] == [[{"type": "ping", "ts": now}]] * 3
    assert heartbeat.pings_sent == 3


async def test_record_pong_updates_timestamp() -> None:
    manager, heartbeat = parts()
    client = manager.connect(FakeSocket())
    connected = loop_time()
    assert heartbeat.last_seen(client) == connected
    await asyncio.sleep(7)
    heartbeat.record_pong(client)
    assert heartbeat.last_seen(client) == connected + 7
    assert heartbeat.pongs_received == 1


async def test_is_client_alive_true_recent_pong() -> None:
    manager, heartbeat = parts(timeout=30)
    client = manager.connect(FakeSocket())
    await asyncio.sleep(25)
    heartbeat.record_pong(client)
    await asyncio.sleep(25)  # 50 s after connecting, 25 s after the pong
    assert heartbeat.is_alive(client) is True


async def test_is_client_alive_false_timeout() -> None:
    manager, heartbeat = parts(timeout=30)
    client = manager.connect(FakeSocket())
    start = loop_time()
    assert heartbeat.is_alive(client, now=start + 29.9) is True
    assert heartbeat.is_alive(client, now=start + 30) is False
    assert heartbeat.is_alive("c404") is False


async def test_cleanup_stale_connections() -> None:
    manager, heartbeat = parts(timeout=30)
    silent_socket, answering_socket = FakeSocket(), FakeSocket()
    silent, answering = manager.connect(silent_socket), manager.connect(answering_socket)
    for client in (silent, answering):
        manager.subscribe(client, "005930")
    await asyncio.sleep(20)
    heartbeat.record_pong(answering)
    await asyncio.sleep(10)
    assert await heartbeat.cleanup_stale() == [silent]
    assert silent_socket.closed == (1011, "no pong for 30 s: heartbeat timeout")
    assert answering_socket.closed is None
    assert list(manager.client_ids) == [answering]
    assert manager.subscribers("005930") == {answering}
    assert manager.totals.closed_stale == 1


async def test_the_loop_closes_a_client_that_never_pongs_and_keeps_one_that_does() -> None:
    manager, heartbeat = parts(interval=10, timeout=30)
    silent_socket, answering_socket = FakeSocket(), FakeSocket()
    silent, answering = manager.connect(silent_socket), manager.connect(answering_socket)

    async def answer() -> None:
        while True:
            await asyncio.sleep(1)
            if answering_socket.messages("ping")[len(answered) :]:
                answered.append(loop_time())
                heartbeat.record_pong(answering)

    answered: list[float] = []
    start = loop_time()
    loop = asyncio.create_task(heartbeat.run())
    pong = asyncio.create_task(answer())
    await asyncio.sleep(29)
    assert list(manager.client_ids) == [silent, answering]
    await asyncio.sleep(2)  # the round at 30 s finds the silent client 30 s old
    assert list(manager.client_ids) == [answering]
    assert silent_socket.closed == (1011, "no pong for 30 s: heartbeat timeout")
    await asyncio.sleep(60)
    assert list(manager.client_ids) == [answering]
    assert len(answering_socket.messages("ping")) == 9  # at 10, 20, ... 90 s
    loop.cancel()
    pong.cancel()
    assert loop_time() - start == 91


def test_the_timeout_must_exceed_the_interval() -> None:
    with pytest.raises(ValueError, match=r"pong timeout \(10 s\) must exceed the ping interval"):
        HeartbeatManager(ConnectionManager(), interval_s=10, timeout_s=10)
