"""The TCP fault proxy's part of ``nox -s bench``: the latency it adds (p50/p99) and its
throughput, each beside direct loopback and beside socat, all measured in the same run.

**Three paths, one client.** An upstream on loopback, reached (a) directly, (b) through the
Squall proxy with no fault rules, (c) through ``socat TCP-LISTEN:P,bind=127.0.0.1,reuseaddr,
fork TCP:127.0.0.1:UP``. The client code is the same for the three; only the address
differs. socat keeps its defaults, so it copies at most 8 KiB per read (``-b 8192``): that,
more than the wire, bounds its throughput (with ``-b 262144`` it streamed 2-3× faster on
the two-core machine this was written on); the printed notes say so.

**Processes.** Every party has a process of its own, so no path shares an interpreter or an
event loop with the client or the upstream, and the Squall proxy is in the position socat
(a C program in its own process) is in:

- the upstream: an asyncio ``Protocol`` server (TCP_NODELAY, as the proxy's legs have) in a
  subprocess of this interpreter, which prints its port and serves until its stdin closes.
  A connection's first byte says what it is: ``E`` echoes every later byte; ``S`` and an
  8-byte length sink that many bytes, answering ``R`` once ready (so timing starts after
  the connection, and a proxy's dial to the upstream, is set up) and, after the last byte,
  the count received and the last 16 bytes;
- the Squall proxy: ``squall mock proxy --listen 0 --upstream 127.0.0.1:UP`` as a user runs
  it, a subprocess whose first stdout line is its address. In the client's process it would
  share the client's interpreter (and, with an asyncio client, its loop): the client's work
  would be charged to the proxy and the proxy's to the client, which socat never pays;
- socat: a subprocess, started once for all connections (it forks one child per connection);
- the client: this process, with plain blocking sockets (TCP_NODELAY, the garbage collector
  off while timing): the least client overhead Python allows, the same for every path.

**Latency.** On one fresh connection per path and round: ``WARM_UP`` untimed round trips,
then ``ROUND_TRIPS`` sequential ones, each ``MESSAGE_BYTES`` bytes (a counter and random
filler) sent and read back and compared, timed from before ``sendall`` to the last byte read
(``perf_counter_ns``). p50 and p99 are nearest-rank percentiles over all rounds' samples of
a path. *Added* latency is the path's percentile minus direct's (a difference of
percentiles, not a percentile of differences: the samples are not paired); the ratio to
socat divides the added p50s.

**Throughput.** On one fresh connection per path and round, ``STREAM_BYTES`` from the client
to the sink in ``CHUNK_BYTES`` writes, timed from the sink's ``R`` to its answer, so bytes
still in flight count. The count must equal what was sent and the last 16 bytes (a random
token) must match, or the run fails. The proxy's two directions run the same code
(``mocks.proxy.server``: one ``_Leg`` protocol per socket), so one direction is measured.
MiB/s is the best of the rounds (noise only ever slows a run); every run is in the JSON.
While streaming, the client, the proxy and the upstream are all busy: with fewer than three
cores the proxied paths share cores that direct does not need, the Squall proxy and socat
alike; the core count is printed.

**Rounds** alternate the paths, ``ROUNDS`` of each, the order rotated each round, so slow
spells of a shared machine fall on all of them. On a small virtual machine, loopback latency
as a whole moves with where the scheduler puts the processes (a wake-up on the same core is
several times cheaper than one on another): direct's p50 has been seen at 20 µs in one run
and 70 µs in the next, every path moving with it. So the absolute figures move from run to
run; the added latencies and ratios within one run are what compare, and each round's p50
is printed (and kept in the JSON) to show the spread. No fault rules are set on the proxy:
this is the cost of being in the path at all.

Results go to ``build/bench/proxy.json``; ``python -m harness.bench --only proxy`` runs this
part alone. Without socat the baseline is skipped with a line saying how to install it
(``nox -s bench`` installs it); the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.ports import free_port
from harness.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
ROUND_TRIPS = 5_000  # timed round trips per path and round
WARM_UP = 500  # untimed round trips first, on the same connection
MESSAGE_BYTES = 64
STREAM_BYTES = 256 * 2**20  # per path and round
CHUNK_BYTES = 256 * 2**10
ROUNDS = 5
TOKEN_BYTES = 16  # the stream's last bytes, random per run, echoed back by the sink
START_TIMEOUT_S = 30.0
IO_TIMEOUT_S = 60.0
INSTALL_SOCAT = (
    "install it with `./scripts/system-deps socat` (as root) or `sudo apt-get install socat`; "
    "`nox -s bench` installs it"
)

ECHO = b"E"
SINK = b"S"
READY = b"R"
_DONE = b"done"
_LENGTH = struct.Struct(">Q")

Address = tuple[str, int]


# -- the upstream: echo and sink, in a process of its own ------------------------------------


class _Upstream(asyncio.Protocol):
    """One connection to the upstream: ``E`` echoes, ``S`` + length sinks (see the module)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._mode = b""
        self._header = b""
        self._expected = 0
        self._count = 0
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if self._mode == ECHO:
            transport.write(data)
            return
        if self._mode == SINK:
            self._sink(data)
            return
        if self._mode == _DONE:
            return  # bytes past the announced length: the count already said so
        self._header += data
        if self._header[:1] == ECHO:
            self._mode, rest = ECHO, self._header[1:]
            self._header = b""
            if rest:
                transport.write(rest)
        elif self._header[:1] == SINK and len(self._header) >= 1 + _LENGTH.size:
            self._mode = SINK
            (self._expected,) = _LENGTH.unpack_from(self._header, 1)
            rest, self._header = self._header[1 + _LENGTH.size :], b""
            transport.write(READY)
            if rest:
                self._sink(rest)
        elif self._header[:1] not in (b"", SINK):
            transport.close()  # not a bench client

    def _sink(self, data: bytes) -> None:
        self._count += len(data)
        self._tail = data[-TOKEN_BYTES:] if len(data) >= TOKEN_BYTES else self._tail + data
        self._tail = self._tail[-TOKEN_BYTES:]
        if self._count >= self._expected and self._transport is not None:
            self._transport.write(_LENGTH.pack(self._count) + self._tail)
            self._mode = _DONE

    def eof_received(self) -> bool:
        return False  # close


async def _serve_upstream() -> None:
    from mocks.server import bind  # IPPROTO_TCP, so accepted sockets get TCP_NODELAY too

    sock = bind("127.0.0.1", 0)
    server = await asyncio.get_running_loop().create_server(_Upstream, sock=sock, backlog=64)
    print(sock.getsockname()[1], flush=True)
    await asyncio.to_thread(sys.stdin.buffer.read)  # until the bench closes stdin (or goes)
    server.close()


def upstream_main() -> None:
    """The upstream's process: prints its port, serves until its stdin closes."""
    asyncio.run(_serve_upstream())


def _first_line(process: subprocess.Popen[bytes], what: str, errors: IO[bytes]) -> str:
    """The first line ``process`` prints, within ``START_TIMEOUT_S``."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
    line = process.stdout.readline().decode().strip() if ready else ""
    if not line:
        raise RuntimeError(
            f"{what} printed nothing within {START_TIMEOUT_S:g} s "
            f"(exit code {process.poll()}): {_said(errors)}"
        )
    return line


@contextlib.contextmanager
def upstream() -> Iterator[Address]:
    """The echo and sink server on loopback, in a process of its own; yields its address."""
    command = [sys.executable, "-c", "from harness.bench_proxy import upstream_main as m; m()"]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors
        )
        try:
            yield ("127.0.0.1", int(_first_line(process, "the upstream", errors)))
        finally:
            assert process.stdin is not None
            with contextlib.suppress(OSError):
                process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the proxies -----------------------------------------------------------------------------


def _squall_command() -> list[str]:
    """The ``squall`` console script beside this interpreter, else the CLI through it."""
    script = Path(sys.executable).parent / "squall"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from harness.cli import main; main()"]


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _said(errors: IO[bytes]) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace").strip()[-2000:]


@contextlib.contextmanager
def squall_proxy(target: Address) -> Iterator[Address]:
    """``squall mock proxy --listen 0 --upstream HOST:PORT`` in a subprocess, no fault rules;
    yields the address it printed on its first stdout line."""
    from mocks.proxy import format_address, parse_address

    command = [
        *_squall_command(),
        *("mock", "proxy", "--listen", "0", "--upstream", format_address(*target)),
    ]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        try:
            line = _first_line(process, f"`{' '.join(command)}`", errors)
            yield parse_address(line)
        finally:
            _stop(process, signal.SIGINT)  # what Ctrl-C does: the proxy closes its connections


def socat_executable() -> str | None:
    return shutil.which("socat")


def socat_version() -> str | None:
    exe = socat_executable()
    if exe is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("socat version"):
                return line.split(" on ")[0].removeprefix("socat version ").strip()
    return "unknown version"


class SocatMissing(RuntimeError):
    """socat is not installed: the baseline is skipped, never the run."""


def _accepting(address: Address, process: subprocess.Popen[bytes]) -> bool:
    """True once ``address`` accepts connections; False if ``process`` exited first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=1):
            return True  # the probe sends nothing: the upstream closes it
        time.sleep(0.01)
    return False


@contextlib.contextmanager
def socat_proxy(target: Address) -> Iterator[Address]:
    """``socat TCP-LISTEN:P,bind=127.0.0.1,reuseaddr,fork TCP:HOST:UP`` in a subprocess;
    raises ``SocatMissing`` when socat is not installed."""
    exe = socat_executable()
    if exe is None:
        raise SocatMissing(f"socat is not installed; {INSTALL_SOCAT}")
    said = ""
    for _ in range(5):  # the free port may be taken between finding it and socat binding it
        port = free_port()
        command = [exe, f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"]
        command.append(f"TCP:{target[0]}:{target[1]}")
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
            )
            try:
                if _accepting(("127.0.0.1", port), process):
                    yield ("127.0.0.1", port)
                    return
                said = _said(errors)
            finally:
                _stop(process, signal.SIGTERM)
    raise RuntimeError(f"socat did not start listening: {said}")


# -- the client ----------------------------------------------------------------------------------


def _connect(address: Address) -> socket.socket:
    sock = socket.create_connection(address, timeout=IO_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError(f"the connection closed after {got} of {len(view)} bytes")
        got += n


@contextlib.contextmanager
def _gc_off() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def measure_latency(address: Address, round_trips: int, warm_up: int = WARM_UP) -> list[int]:
    """Nanoseconds of each of ``round_trips`` sequential echo round trips of
    ``MESSAGE_BYTES`` bytes on one connection, after ``warm_up`` untimed ones. Raises if an
    answer is not the bytes sent."""
    filler = os.urandom(MESSAGE_BYTES - _LENGTH.size)
    answer = bytearray(MESSAGE_BYTES)
    view = memoryview(answer)
    samples: list[int] = []
    clock = time.perf_counter_ns
    with _connect(address) as sock, _gc_off():
        sock.sendall(ECHO)
        for n in range(warm_up + round_trips):
            message = _LENGTH.pack(n) + filler
            started = clock()
            sock.sendall(message)
            _read_exactly(sock, view)
            elapsed = clock() - started
            if answer != message:
                raise RuntimeError(f"round trip {n} came back altered through {address}")
            if n >= warm_up:
                samples.append(elapsed)
    return samples


@dataclass(frozen=True)
class Stream:
    sent: int
    received: int  # as counted by the sink
    seconds: float

    @property
    def mib_per_s(self) -> float:
        return self.sent / 2**20 / self.seconds


def measure_throughput(address: Address, total: int) -> Stream:
    """Stream ``total`` bytes to the sink through ``address`` on one connection; raises if
    the sink did not get exactly those bytes (count and the last ``TOKEN_BYTES``)."""
    if total < TOKEN_BYTES:
        raise ValueError(f"stream at least {TOKEN_BYTES} bytes")
    chunk = memoryview(os.urandom(CHUNK_BYTES))
    token = os.urandom(TOKEN_BYTES)
    answer = bytearray(_LENGTH.size + TOKEN_BYTES)
    ready = bytearray(len(READY))
    with _connect(address) as sock, _gc_off():
        sock.sendall(SINK + _LENGTH.pack(total))
        _read_exactly(sock, memoryview(ready))
        if ready != READY:
            raise RuntimeError(f"the sink answered {bytes(ready)!r} through {address}")
        started = time.perf_counter()
        left = total - TOKEN_BYTES
        while left > 0:
            piece = chunk[: min(left, CHUNK_BYTES)]
            sock.sendall(piece)
            left -= len(piece)
        sock.sendall(token)
        _read_exactly(sock, memoryview(answer))
        seconds = time.perf_counter() - started
    (received,) = _LENGTH.unpack_from(answer)
    if received != total or answer[_LENGTH.size :] != token:
        raise RuntimeError(
            f"the sink got {received:,} bytes of {total:,} through {address}"
            + ("" if answer[_LENGTH.size :] == token else ", and not the last ones sent")
        )
    return Stream(total, received, seconds)


# -- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathResult:
    path: str
    round_trips: int
    p50_us: float
    p99_us: float
    max_us: float
    mib_per_s: float  # best of the runs
    runs_mib_per_s: list[float] = field(default_factory=list)
    round_p50s_us: list[float] = field(default_factory=list)  # each round's own p50


def _path_result(path: str, rounds: list[list[int]], streams: list[Stream]) -> PathResult:
    samples = [sample for round_ in rounds for sample in round_]
    return PathResult(
        path,
        len(samples),
        percentile(samples, 0.50) / 1e3,
        percentile(samples, 0.99) / 1e3,
        max(samples) / 1e3,
        max(s.mib_per_s for s in streams),
        [s.mib_per_s for s in streams],
        [percentile(round_, 0.50) / 1e3 for round_ in rounds],
    )


@dataclass(frozen=True)
class ProxyResults:
    direct: PathResult
    squall: PathResult
    socat: PathResult | None
    socat_skipped: str | None  # why the socat baseline is missing, with how to install it
    socat_version: str | None
    round_trips: int
    warm_up: int
    stream_bytes: int
    rounds: int
    cpus: int
    wall_s: float

    @property
    def paths(self) -> list[PathResult]:
        return [p for p in (self.direct, self.squall, self.socat) if p is not None]

    def added_us(self, path: PathResult) -> tuple[float, float]:
        """(p50, p99) of ``path`` minus direct's, µs."""
        return path.p50_us - self.direct.p50_us, path.p99_us - self.direct.p99_us

    def vs_socat(self, path: PathResult) -> tuple[float, float]:
        """(added p50 ÷ socat's added p50, MiB/s ÷ socat's MiB/s); NaN without socat."""
        if self.socat is None:
            return math.nan, math.nan
        added, socat_added = self.added_us(path)[0], self.added_us(self.socat)[0]
        return (
            added / socat_added if socat_added > 0 else math.nan,
            path.mib_per_s / self.socat.mib_per_s,
        )


def run(
    round_trips: int = ROUND_TRIPS,
    warm_up: int = WARM_UP,
    stream_bytes: int = STREAM_BYTES,
    rounds: int = ROUNDS,
) -> ProxyResults:
    """Every path, ``rounds`` alternating rounds of latency and then throughput."""
    started = time.perf_counter()
    skipped: str | None = None
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(upstream())
        addresses = {"direct": target, "Squall proxy": stack.enter_context(squall_proxy(target))}
        try:
            addresses["socat"] = stack.enter_context(socat_proxy(target))
        except SocatMissing as exc:
            skipped = str(exc)
        samples: dict[str, list[list[int]]] = {name: [] for name in addresses}
        streams: dict[str, list[Stream]] = {name: [] for name in addresses}
        names = list(addresses)
        for number in range(rounds):
            order = names[number % len(names) :] + names[: number % len(names)]
            for name in order:
                samples[name].append(measure_latency(addresses[name], round_trips, warm_up))
            for name in order:
                streams[name].append(measure_throughput(addresses[name], stream_bytes))
    results = {name: _path_result(name, samples[name], streams[name]) for name in names}
    return ProxyResults(
        results["direct"],
        results["Squall proxy"],
        results.get("socat"),
        skipped,
        socat_version() if skipped is None else None,
        round_trips,
        warm_up,
        stream_bytes,
        rounds,
        os.cpu_count() or 1,
        time.perf_counter() - started,
    )


# -- report ------------------------------------------------------------------------------------


def _ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}×"


def print_results(console: Console, results: ProxyResults) -> None:
    table = Table(title="Squall TCP fault proxy beside direct loopback and socat, same run")
    for column in (
        "path",
        "p50 µs",
        "p99 µs",
        "added p50 µs",
        "added p99 µs",
        "MiB/s",
        "added p50 ÷ socat's",
        "MiB/s ÷ socat's",
    ):
        table.add_column(column, justify="left" if column == "path" else "right")
    for path in results.paths:
        added_p50, added_p99 = results.added_us(path)
        latency_ratio, throughput_ratio = results.vs_socat(path)
        direct = path is results.direct
        table.add_row(
            path.path,
            f"{path.p50_us:.1f}",
            f"{path.p99_us:.1f}",
            "—" if direct else f"{added_p50:+.1f}",
            "—" if direct else f"{added_p99:+.1f}",
            f"{path.mib_per_s:,.0f}",
            "—" if direct else _ratio(latency_ratio),
            _ratio(throughput_ratio),
        )
    console.print(table)
    console.print(
        f"Latency: {results.rounds} × {results.round_trips:,} sequential {MESSAGE_BYTES}-byte "
        f"echo round trips per path, one connection per round after {results.warm_up} "
        "untimed; added = the path's percentile minus direct's. "
        f"Throughput: {results.stream_bytes / 2**20:,.0f} MiB client → sink on one "
        f"connection, best of {results.rounds} (all runs in the JSON). The upstream, the "
        "Squall proxy (`squall mock proxy`, no fault rules) and socat each run in a process "
        f"of their own; rounds alternate the paths; {results.cpus} CPU core(s)."
    )
    if results.socat is not None:
        console.print(
            f"socat {results.socat_version} runs with its defaults, as `socat "
            "TCP-LISTEN:P,reuseaddr,fork TCP:127.0.0.1:UP`: it copies at most 8 KiB per read "
            "(its -b 8192), which bounds its throughput more than the wire does."
        )
    else:
        console.print(
            f"[yellow]socat baseline skipped:[/yellow] {escape(results.socat_skipped or '')}"
        )
    spread = ", ".join(
        f"{p.path} {min(p.round_p50s_us):.0f}–{max(p.round_p50s_us):.0f}" for p in results.paths
    )
    console.print(
        f"p50 by round (µs): {spread}. Where the scheduler puts the processes on the cores "
        "moves loopback latency as a whole, on every path alike: compare paths within a run."
    )
    console.print(f"The proxy benchmarks took {results.wall_s:.0f} s.")


def write_results(results: ProxyResults, path: Path | None = None) -> Path:
    if path is None:
        path = ROOT / "build" / "bench" / "proxy.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for result in results.paths:
        added_p50, added_p99 = results.added_us(result)
        latency_ratio, throughput_ratio = results.vs_socat(result)
        rows.append(
            {
                **asdict(result),
                "added_p50_us": added_p50,
                "added_p99_us": added_p99,
                "added_p50_vs_socat": (
                    None if result is results.direct or math.isnan(latency_ratio) else latency_ratio
                ),
                "throughput_vs_socat": None if math.isnan(throughput_ratio) else throughput_ratio,
            }
        )
    data = {
        "paths": rows,
        "socat_version": results.socat_version,
        "socat_skipped": results.socat_skipped,
        "method": {
            "round_trips_per_round": results.round_trips,
            "warm_up": results.warm_up,
            "message_bytes": MESSAGE_BYTES,
            "stream_bytes": results.stream_bytes,
            "chunk_bytes": CHUNK_BYTES,
            "rounds": results.rounds,
            "cpus": results.cpus,
        },
        "wall_s": results.wall_s,
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def main(console: Console) -> None:
    results = run()
    print_results(console, results)
    console.print(f"wrote {write_results(results)}")
