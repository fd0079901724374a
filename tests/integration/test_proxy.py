"""The TCP fault proxy on real loopback sockets: an echo server behind it, a raw client in
front, and every fault kind seen from the client's side.

Servers start inside each test so they share its loop. Timing tests run on real time with
generous tolerances; the looptime test shows a 10 s latency passing instantly on virtual
time. The CLI tests run ``squall mock proxy`` as a user does.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mocks.control_client import ProxyControl
from mocks.faults import ProxyFaultRule
from mocks.proxy import ProxyConfig, RunningProxy, serve_proxy

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Echo:
    """An upstream that sends back whatever it reads and closes when its client does."""

    def __init__(self) -> None:
        self.accepted = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()


@asynccontextmanager
async def echo_server() -> AsyncIterator[Echo]:
    echo = Echo()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    echo.port = server.sockets[0].getsockname()[1]
    try:
        yield echo
    finally:
        server.close()
        echo.close_all()
        await server.wait_closed()
        await asyncio.sleep(0)  # let the handlers see their closes


@asynccontextmanager
async def proxied(seed: int = 0, **settings: Any) -> AsyncIterator[tuple[RunningProxy, Echo]]:
    async with echo_server() as echo:
        config = ProxyConfig(
            upstream_host="127.0.0.1", upstream_port=echo.port, seed=seed, **settings
        )
        async with serve_proxy(config) as proxy:
            yield proxy, echo


def add(proxy: RunningProxy, **fields: Any) -> ProxyFaultRule:
    rule = ProxyFaultRule.model_validate(fields)
    stored = proxy.control.faults.add(rule, proxy.control.clock.now())
    assert isinstance(stored, ProxyFaultRule)
    return stored


async def dial(proxy: RunningProxy) -> Stream:
    return await asyncio.open_connection(proxy.host, proxy.port)


async def round_trip(stream: Stream, data: bytes = b"ping", within: float = 5) -> bytes:
    reader, writer = stream
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), within)


async def fate(proxy: RunningProxy) -> str:
    """Connect, send, and say what happened: echo, reset or eof."""
    try:
        stream = await dial(proxy)
        try:
            return "echo" if await round_trip(stream) == b"ping" else "garbled"
        finally:
            stream[1].close()
    except asyncio.IncompleteReadError:
        return "eof"
    except ConnectionError:
        return "reset"


async def settle(proxy: RunningProxy, kind: str = "disconnect", count: int = 1) -> None:
    """Wait until the journal has ``count`` entries of ``kind`` (closes land a moment later)."""
    for _ in range(200):
        if len(proxy.control.journal.entries(kind=kind)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {count} {kind} entries: {proxy.control.journal.entries()}")


def close_entries(proxy: RunningProxy) -> list[tuple[int, str | None, str | None]]:
    return [
        (e.connection, e.closed_by, e.how) for e in proxy.control.journal.entries(kind="disconnect")
    ]


# ---- plain forwarding


async def test_bytes_go_both_ways_and_the_journal_keeps_opens_closes_and_byte_counts() -> None:
    async with proxied() as (proxy, echo):
        reader, writer = await dial(proxy)
        assert await round_trip((reader, writer), b"hello proxy") == b"hello proxy"
        [listed] = proxy.connections()
        assert listed["connection"] == 1
        assert (listed["upstream_bytes"], listed["downstream_bytes"]) == (11, 11)
        assert listed["upstream_connected"]
        # TCP_NODELAY on both legs: small writes aren't held for the peer's delayed ACK.
        [connection] = proxy.proxy._connections.values()
        for transport in connection.transports.values():
            assert transport is not None
            sock = transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.write_eof()  # the client closes; the echo closes in turn
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await settle(proxy)
        [opened] = proxy.control.journal.entries(kind="connect")
        [closed] = proxy.control.journal.entries(kind="disconnect")
        assert opened.connection == closed.connection == 1
        assert (closed.closed_by, closed.how) == ("client", "fin")
        assert (closed.upstream_bytes, closed.downstream_bytes) == (11, 11)
        assert closed.at >= opened.at
        assert echo.accepted == 1
        assert proxy.connections() == []


async def test_the_control_plane_over_http_adds_lists_and_removes_rules() -> None:
    async with proxied() as (proxy, _), ProxyControl(proxy.control_url) as control:
        stream = await dial(proxy)
        await round_trip(stream)
        stored = await control.add_fault(
            {"id": "slow", "what": {"kind": "latency", "seconds": 0.2}, "where": {"connection": 1}}
        )
        assert stored.id == "slow"
        started = time.monotonic()
        await round_trip(stream)
        assert time.monotonic() - started >= 0.4  # both directions
        [listed] = await control.faults()
        assert (listed["id"], listed["matched"], listed["applied"]) == ("slow", 1, 1)
        assert [c["connection"] for c in await control.connections()] == [1]
        faults = await control.journal(kind="fault", fault="slow")
        assert {(e.connection, e.direction) for e in faults} == {(1, "upstream"), (1, "downstream")}
        await control.remove_fault("slow")
        started = time.monotonic()
        await round_trip(stream)
        assert time.monotonic() - started < 0.2
        assert (await control.config())["upstream_port"] == proxy.proxy.config.upstream_port
        stream[1].close()


# ---- one fault kind at a time


async def test_latency_delays_each_direction_by_at_least_its_seconds() -> None:
    async with proxied() as (proxy, _):
        add(proxy, what={"kind": "latency", "seconds": 0.3}, where={"direction": "upstream"})
        add(
            proxy,
            what={"kind": "latency", "seconds": 0.2, "jitter": 0.1},
            where={"direction": "downstream"},
        )
        stream = await dial(proxy)
        for _ in range(3):
            started = time.monotonic()
            assert await round_trip(stream) == b"ping"
            elapsed = time.monotonic() - started
            assert 0.4 <= elapsed < 1.5
        stream[1].close()


async def test_bandwidth_holds_throughput_to_the_rate() -> None:
    rate, size = 100_000, 150_000
    async with proxied() as (proxy, _):
        add(
            proxy,
            what={"kind": "bandwidth", "bytes_per_second": rate},
            where={"direction": "downstream"},
        )
        reader, writer = await dial(proxy)
        started = time.monotonic()
        writer.write(b"b" * size)
        got = await asyncio.wait_for(reader.readexactly(size), 10)
        elapsed = time.monotonic() - started
        assert len(got) == size
        assert size / rate * 0.9 <= elapsed <= size / rate * 1.5
        writer.close()


async def test_blackhole_leaves_the_peer_waiting_until_the_rule_goes() -> None:
    async with proxied() as (proxy, echo):
        reader, writer = await dial(proxy)
        await round_trip((reader, writer))
        rule = add(proxy, what={"kind": "blackhole"}, where={"direction": "upstream"})
        writer.write(b"anyone there?")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(13), 0.5)
        assert [c["upstream_bytes"] for c in proxy.connections()] == [4]  # nothing got through
        assert rule.id is not None
        proxy.control.faults.remove(rule.id)  # the partition heals: the held bytes arrive
        assert await asyncio.wait_for(reader.readexactly(13), 5) == b"anyone there?"
        assert echo.accepted == 1
        writer.close()


async def test_reset_aborts_open_connections_and_new_ones_with_an_rst() -> None:
    async with proxied() as (proxy, echo):
        reader, writer = await dial(proxy)
        await round_trip((reader, writer))
        add(proxy, id="boom", what={"kind": "reset"})
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        assert await fate(proxy) == "reset"
        await settle(proxy, count=2)
        assert close_entries(proxy) == [(1, "proxy", "reset"), (2, "proxy", "reset")]
        assert [e.fault for e in proxy.control.journal.entries(kind="fault")] == ["boom:reset"] * 2
        assert echo.accepted == 1  # a connection reset at connect never reaches the upstream


async def test_close_after_forwards_exactly_n_bytes_then_eof() -> None:
    async with proxied() as (proxy, _):
        add(proxy, what={"kind": "close-after", "bytes": 10}, where={"direction": "downstream"})
        reader, writer = await dial(proxy)
        writer.write(b"0123456789abcdefghijklmno")
        got = await asyncio.wait_for(reader.read(), 5)  # read() returns at EOF
        assert got == b"0123456789"
        writer.close()
        await settle(proxy)
        [(_, by, how)] = close_entries(proxy)
        assert (by, how) == ("proxy", "fin")
        [closed] = proxy.control.journal.entries(kind="disconnect")
        assert closed.downstream_bytes == 10


async def test_slow_close_delivers_the_eof_late() -> None:
    async with proxied() as (proxy, _):
        add(proxy, what={"kind": "slow-close", "seconds": 0.6}, where={"direction": "downstream"})
        reader, writer = await dial(proxy)
        assert await round_trip((reader, writer)) == b"ping"
        started = time.monotonic()
        writer.write_eof()  # passed on at once; the echo's close comes back 0.6 s late
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert time.monotonic() - started >= 0.6
        writer.close()
        await settle(proxy)
        assert close_entries(proxy) == [(1, "client", "fin")]


async def test_refuse_turns_new_connections_away_and_leaves_open_ones_alone() -> None:
    async with proxied() as (proxy, echo):
        stream = await dial(proxy)
        await round_trip(stream)
        rule = add(proxy, what={"kind": "refuse"})
        assert await fate(proxy) == "reset"
        assert await fate(proxy) == "reset"
        assert await round_trip(stream, b"still here") == b"still here"
        assert echo.accepted == 1  # refused connections never dial the upstream
        assert rule.id is not None
        proxy.control.faults.remove(rule.id)
        assert await fate(proxy) == "echo"
        await settle(proxy, count=3)
        assert close_entries(proxy)[:2] == [(2, "proxy", "refused"), (3, "proxy", "refused")]
        stream[1].close()


async def test_cut_kills_open_connections_while_a_new_one_works() -> None:
    async with proxied() as (proxy, _):
        old = [await dial(proxy) for _ in range(2)]
        for stream in old:
            await round_trip(stream)
        add(proxy, what={"kind": "cut"})
        for reader, writer in old:
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(100), 5)
            writer.close()
        assert await fate(proxy) == "echo"
        await settle(proxy, count=3)
        assert close_entries(proxy)[:2] == [(1, "proxy", "cut"), (2, "proxy", "cut")]


async def test_a_window_that_opens_later_cuts_without_any_traffic() -> None:
    async with proxied() as (proxy, _):
        reader, writer = await dial(proxy)
        await round_trip((reader, writer))
        now = proxy.control.clock.now()
        add(proxy, what={"kind": "cut"}, when={"from": now + 0.3})
        started = time.monotonic()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), 5)
        assert time.monotonic() - started >= 0.25
        writer.close()


async def test_the_same_seed_faults_the_same_connections() -> None:
    async def run(seed: int) -> list[int]:
        async with proxied(seed=seed) as (proxy, _):
            add(proxy, what={"kind": "reset"}, when={"probability": 0.5})
            outcomes = [await fate(proxy) for _ in range(16)]
        return [n for n, outcome in enumerate(outcomes, start=1) if outcome == "reset"]

    first = await run(11)
    assert first == await run(11)
    assert 0 < len(first) < 16
    assert first != await run(12)


async def test_an_unreachable_upstream_closes_the_client_and_is_journaled() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead_port = spare.getsockname()[1]  # bound, never listening: refused
        config = ProxyConfig(upstream_host="127.0.0.1", upstream_port=dead_port)
        async with serve_proxy(config) as proxy:
            assert await fate(proxy) in ("reset", "eof")
            await settle(proxy)
            [closed] = proxy.control.journal.entries(kind="disconnect")
            assert (closed.closed_by, closed.how) == ("proxy", "unreachable")
            assert closed.detail is not None
            assert f"127.0.0.1:{dead_port}" in closed.detail
            assert await fate(proxy) in ("reset", "eof")  # the proxy is still up


async def test_shutdown_closes_every_connection() -> None:
    async with echo_server() as echo:
        config = ProxyConfig(upstream_host="127.0.0.1", upstream_port=echo.port)
        async with serve_proxy(config) as proxy:
            reader, writer = await dial(proxy)
            await round_trip((reader, writer))
            journal = proxy.control.journal
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert [(e.closed_by, e.how) for e in journal.entries(kind="disconnect")] == [
            ("proxy", "shutdown")
        ]
        writer.close()


async def test_a_full_blackhole_stops_reading_the_sender_then_everything_arrives() -> None:
    size = 24 << 20
    async with proxied(buffer_bytes=64 << 10) as (proxy, _):
        reader, writer = await dial(proxy)
        rule = add(proxy, what={"kind": "blackhole"}, where={"direction": "upstream"})
        writer.write(b"x" * size)
        with pytest.raises(TimeoutError):  # the proxy stopped reading: the client is stuck
            await asyncio.wait_for(writer.drain(), 1.0)
        [connection] = proxy.proxy._connections.values()
        assert connection.link.held_bytes("upstream") < (64 << 10) + (512 << 10)
        assert rule.id is not None
        proxy.control.faults.remove(rule.id)
        reading = asyncio.create_task(reader.readexactly(size))
        await asyncio.wait_for(writer.drain(), 30)
        assert len(await asyncio.wait_for(reading, 30)) == size
        writer.close()


# ---- virtual time


@pytest.mark.looptime
async def test_a_10_s_latency_passes_instantly_on_virtual_time() -> None:
    loop = asyncio.get_running_loop()
    async with proxied() as (proxy, _):
        add(proxy, what={"kind": "latency", "seconds": 10})
        stream = await dial(proxy)
        started, wall = loop.time(), time.monotonic()
        assert await round_trip(stream, within=60) == b"ping"
        assert loop.time() - started >= 20  # 10 s each way, on the loop's clock
        assert time.monotonic() - wall < 5
        stream[1].close()


# ---- the command line


async def read_line(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), 30)).decode().strip()


async def test_the_cli_proxies_prints_its_addresses_and_stops_on_ctrl_c(squall_exe: str) -> None:
    async with echo_server() as echo:
        process = await asyncio.create_subprocess_exec(
            squall_exe,
            "mock",
            "proxy",
            "--listen",
            "0",
            "--upstream",
            f"127.0.0.1:{echo.port}",
            "--seed",
            "3",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            address = await read_line(process.stdout)
            control_url = await read_line(process.stdout)
            host, _, port = address.rpartition(":")
            assert host == "127.0.0.1"
            assert control_url.startswith("http://127.0.0.1:")
            reader, writer = await asyncio.open_connection(host, int(port))
            assert await round_trip((reader, writer), b"through the cli") == b"through the cli"
            async with ProxyControl(control_url) as control:
                assert (await control.health())["mock"] == "proxy"
                assert [c["connection"] for c in await control.connections()] == [1]
            writer.close()
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr_bytes = await asyncio.wait_for(process.communicate(), 15)
        stderr = stderr_bytes.decode()
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert "stopped" in stderr
        assert f"127.0.0.1:{echo.port}" in stderr


# A taken --listen or --control-port: tests/integration/test_cli.py, with every server.


@pytest.mark.parametrize("upstream", ["5432", "localhost:http", "::1:5432", "db:0"])
def test_the_cli_rejects_a_malformed_upstream_with_exit_2(squall_exe: str, upstream: str) -> None:
    result = subprocess.run(
        [squall_exe, "mock", "proxy", "--listen", "0", "--upstream", upstream],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "invalid --upstream" in result.stderr
    assert "Traceback" not in result.stderr
