"""Smoke test of the proxy benchmark (``harness.bench_proxy``): the measurement functions and
the whole run at tiny sizes, on real processes and sockets, with results that could only be
this sane if the measurement works: every byte arrives, the echo is exact, a proxied path is
not faster than half of direct, the JSON and the table say what was measured. The socat
baseline is checked wherever socat is installed and skipped, saying why, where it is not.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from harness import bench_proxy
from harness.bench_proxy import Address, PathResult, ProxyResults
from harness.stats import percentile

ROUND_TRIPS = 200
WARM_UP = 20
STREAM = 4 * 2**20
NO_SOCAT = "socat is not installed (./scripts/system-deps socat, or apt-get install socat)"
needs_socat = pytest.mark.skipif(bench_proxy.socat_executable() is None, reason=NO_SOCAT)


@pytest.fixture(scope="module")
def target() -> Iterator[Address]:
    with bench_proxy.upstream() as address:
        yield address


@pytest.fixture(scope="module")
def squall(target: Address) -> Iterator[Address]:
    with bench_proxy.squall_proxy(target) as address:
        yield address


def p50(samples: list[int]) -> float:
    return percentile(samples, 0.5)


def test_latency_direct_and_through_the_squall_proxy(target: Address, squall: Address) -> None:
    assert squall != target
    direct = bench_proxy.measure_latency(target, ROUND_TRIPS, WARM_UP)
    proxied = bench_proxy.measure_latency(squall, ROUND_TRIPS, WARM_UP)
    for samples in (direct, proxied):
        assert len(samples) == ROUND_TRIPS
        assert min(samples) > 0
        assert p50(samples) < 50e6  # 50 ms: on loopback, a round trip this slow is a stall
    # Two more hops cannot make it much faster than direct.
    assert p50(proxied) >= p50(direct) * 0.5


def test_throughput_direct_and_through_the_squall_proxy(target: Address, squall: Address) -> None:
    for address in (target, squall):
        stream = bench_proxy.measure_throughput(address, STREAM)
        assert stream.sent == stream.received == STREAM
        assert stream.seconds > 0
        assert 1 < stream.mib_per_s < 1e6


@pytest.fixture
def liar() -> Iterator[Address]:
    """A server that speaks the upstream's protocol but lies: its echo flips a byte, its
    sink reports one byte fewer than it read."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                sock, _ = listener.accept()
                with sock:
                    if sock.recv(1) == bench_proxy.ECHO:
                        while data := sock.recv(65536):
                            sock.sendall(bytes([data[0] ^ 1]) + data[1:])
                        continue
                    length = int.from_bytes(sock.recv(8), "big")
                    sock.sendall(bench_proxy.READY)
                    count, tail = 0, b""
                    while count < length:
                        data = sock.recv(65536)
                        count += len(data)
                        tail = (tail + data)[-bench_proxy.TOKEN_BYTES :]
                    sock.sendall((count - 1).to_bytes(8, "big") + tail)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes accept() up: the thread ends
        listener.close()
        thread.join(5)
        assert not thread.is_alive()


def test_an_altered_echo_or_a_short_count_fails_the_measurement(liar: Address) -> None:
    with pytest.raises(RuntimeError, match="altered"):
        bench_proxy.measure_latency(liar, 10, 0)
    with pytest.raises(RuntimeError, match="the sink got"):
        bench_proxy.measure_throughput(liar, 2**20)


@needs_socat
def test_latency_and_throughput_through_socat(target: Address) -> None:
    with bench_proxy.socat_proxy(target) as socat:
        assert socat != target
        direct = bench_proxy.measure_latency(target, ROUND_TRIPS, WARM_UP)
        proxied = bench_proxy.measure_latency(socat, ROUND_TRIPS, WARM_UP)
        assert len(proxied) == ROUND_TRIPS
        assert min(proxied) > 0
        assert p50(proxied) >= p50(direct) * 0.5
        stream = bench_proxy.measure_throughput(socat, STREAM)
        assert stream.sent == stream.received == STREAM
        assert stream.mib_per_s > 1


def check(path: PathResult) -> None:
    assert path.round_trips == ROUND_TRIPS
    assert 0 < path.p50_us <= path.p99_us <= path.max_us
    assert len(path.runs_mib_per_s) == 1
    assert path.round_p50s_us == [path.p50_us]  # one round: its p50 is the path's
    assert path.mib_per_s == path.runs_mib_per_s[0] > 1


def test_the_whole_run_table_and_json(tmp_path: Path) -> None:
    results = bench_proxy.run(ROUND_TRIPS, WARM_UP, STREAM, rounds=1)
    check(results.direct)
    check(results.squall)
    assert results.squall.p50_us >= results.direct.p50_us * 0.5
    if bench_proxy.socat_executable() is None:
        assert results.socat is None
        assert results.socat_skipped is not None
    else:
        assert results.socat is not None
        check(results.socat)
        assert results.vs_socat(results.socat) == (1.0, 1.0) or math.isnan(
            results.vs_socat(results.socat)[0]  # socat added nothing measurable
        )
    shown = _printed(results)
    assert "Squall proxy" in shown
    assert "direct" in shown
    data = json.loads(bench_proxy.write_results(results, tmp_path / "proxy.json").read_text())
    assert [row["path"] for row in data["paths"]] == [p.path for p in results.paths]
    squall = data["paths"][1]
    assert squall["added_p50_us"] == pytest.approx(results.squall.p50_us - results.direct.p50_us)
    assert data["method"]["stream_bytes"] == STREAM


def test_without_socat_the_baseline_is_skipped_not_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_proxy, "socat_executable", lambda: None)
    results = bench_proxy.run(ROUND_TRIPS, WARM_UP, STREAM, rounds=1)
    assert results.socat is None
    assert math.isnan(results.vs_socat(results.squall)[1])
    shown = _printed(results)
    assert "socat baseline skipped" in shown
    assert "./scripts/system-deps socat" in shown


def _printed(results: ProxyResults) -> str:
    out = StringIO()
    bench_proxy.print_results(Console(file=out, width=200), results)
    return out.getvalue()
