"""The TCP fault proxy on real sockets: asyncio protocols around ``mocks.proxy.toxics``.

Each accepted client connection gets its own connection to the upstream; bytes read on
either side go through the connection's ``Link`` with the rules in force, and the steps it
answers are carried out in order per direction, each at its time on the event loop's clock
(``call_later``), so a scenario on virtual time (looptime) runs a 10 s latency instantly.

Both legs have TCP_NODELAY: the listening socket comes from ``mocks.server.bind`` and the
upstream one is made with IPPROTO_TCP, which is what asyncio checks before setting it.
Without it every small write (a PostgreSQL query, a Redis command) would wait out the
peer's delayed ACK, a 40 ms latency nobody asked for.

Closes are passed on as half-closes (a FIN one way leaves the other way open), resets as
resets. When a direction's destination can't keep up, or a direction holds back more than
``ProxyConfig.buffer_bytes`` (delayed, paced, blackholed), the proxy stops reading its
source, as a full TCP window would stop the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI

from mocks.clock import MockClock
from mocks.faults import DIRECTIONS, Direction, ProxyDecision, ProxyEvent
from mocks.faults.proxy import ProxyEventKind
from mocks.journal import ProxyCloseHow, ProxyJournal, ProxySide
from mocks.proxy.config import ProxyConfig, format_address
from mocks.proxy.control import ProxyControlPlane, create_control_app
from mocks.proxy.toxics import Hangup, Link, Outcome, PassClose, Step, Write
from mocks.server import PortInUse, bind, serve
from mocks.wire import abort_with_rst

Side = Literal["client", "upstream"]
_SOURCE: dict[Direction, Side] = {"upstream": "client", "downstream": "upstream"}
_DESTINATION: dict[Direction, Side] = {"upstream": "upstream", "downstream": "client"}
_FROM = {side: direction for direction, side in _SOURCE.items()}  # a side's bytes go this way
_INTO = {side: direction for direction, side in _DESTINATION.items()}  # and arrive this way
_RESETS: frozenset[ProxyCloseHow] = frozenset({"reset", "cut", "refused", "unreachable"})


class ProxyPortInUse(PortInUse):
    """A port of the proxy is taken; the message names the option that picks another."""


class _Outbox:
    """One direction's steps, carried out in order, each when its time comes."""

    def __init__(self, connection: _Connection, direction: Direction) -> None:
        self._connection = connection
        self._clock = connection.clock
        self._direction = direction
        self._steps: deque[Step] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.pending_bytes = 0

    def push(self, step: Step) -> None:
        if not self._steps and step.at <= self._clock.now():
            self._connection.carry_out(step)  # nothing ahead of it, nothing to wait for
            return
        self._steps.append(step)
        if isinstance(step, Write):
            self.pending_bytes += len(step.data)
        if self._timer is None:
            self._arm()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._steps.clear()
        self.pending_bytes = 0

    def _arm(self) -> None:
        delay = self._steps[0].at - self._clock.now()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._due)

    def _due(self) -> None:
        self._timer = None
        # The head is due: its timer fired. The loop clock may read a hair earlier than its
        # time after the float round trip, so the head's time counts as now.
        now = max(self._clock.now(), self._steps[0].at)
        while self._steps and self._steps[0].at <= now:
            step = self._steps.popleft()
            if isinstance(step, Write):
                self.pending_bytes -= len(step.data)
            self._connection.carry_out(step)
            if self._connection.finished:
                return
        if self._steps:
            self._arm()
        self._connection.flow(self._direction)


class _Leg(asyncio.Protocol):
    """One socket of a proxied connection: the client's, or the one to the upstream."""

    def __init__(
        self, side: Side, proxy: FaultProxy, connection: _Connection | None = None
    ) -> None:
        self.side = side
        self._proxy = proxy
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._connection is None:
            self._connection = self._proxy.accept(transport)
        else:
            self._connection.upstream_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._connection is not None:
            self._connection.received(self.side, data)

    def eof_received(self) -> bool:
        if self._connection is not None:
            self._connection.ended(self.side)
        return True  # keep the other way open: a FIN is a half-close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connection is not None:
            self._connection.lost(self.side, exc)

    def pause_writing(self) -> None:
        if self._connection is not None:
            self._connection.hold(_SOURCE[_INTO[self.side]], "writing")

    def resume_writing(self) -> None:
        if self._connection is not None:
            self._connection.release(_SOURCE[_INTO[self.side]], "writing")


class _Connection:
    """A client connection, its upstream connection, and the fault logic between them."""

    def __init__(self, proxy: FaultProxy, number: int, client: asyncio.Transport) -> None:
        self.proxy = proxy
        self.number = number
        self.clock = proxy.plane.clock
        self.opened_at = self.clock.now()
        self.transports: dict[Side, asyncio.Transport | None] = {"client": client, "upstream": None}
        faults = proxy.plane.faults
        self.link = Link({d: faults.derived_rng(f"proxy:{number}:{d}") for d in DIRECTIONS})
        self.outboxes = {direction: _Outbox(self, direction) for direction in DIRECTIONS}
        self.forwarded: dict[Direction, int] = dict.fromkeys(DIRECTIONS, 0)
        self.finished = False
        self._closes_passed: set[Direction] = set()
        self._first_closer: Side | None = None
        self._holds: dict[Side, set[str]] = {"client": set(), "upstream": set()}
        self.dial: asyncio.Task[None] | None = None
        peer = client.get_extra_info("peername")
        self.client_address = format_address(*peer[:2]) if peer else None

    # ---- life cycle

    def start(self) -> None:
        self.proxy.journal.record(at=self.opened_at, connection=self.number, kind="connect")
        self._apply(self.link.open(self.opened_at, self._decisions("connect")))
        if self.finished:
            return
        self.hold("client", "dialling")  # nothing to forward the client's bytes to yet
        self.dial = asyncio.get_running_loop().create_task(self._dial_upstream())

    async def _dial_upstream(self) -> None:
        config = self.proxy.config
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Leg("upstream", self.proxy, self),
                    config.upstream_host,
                    config.upstream_port,
                    proto=socket.IPPROTO_TCP,
                ),
                config.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            reason = (
                f"no answer within {config.connect_timeout_s:g} s"
                if isinstance(exc, TimeoutError)
                else exc.strerror or str(exc)
            )
            self.hang_up("unreachable", "proxy", f"upstream {config.upstream}: {reason}")

    def upstream_made(self, transport: asyncio.Transport) -> None:
        if self.finished:  # the client left (or the proxy stopped) while dialling
            abort_with_rst(transport)
            return
        self.transports["upstream"] = transport
        if self._holds["upstream"]:
            transport.pause_reading()
        self.release("client", "dialling")

    def received(self, side: Side, data: bytes) -> None:
        direction = _FROM[side]
        now = self.clock.now()
        self._apply(self.link.receive(direction, data, now, self._decisions("data", direction)))
        self.flow(direction)

    def ended(self, side: Side) -> None:
        if self._first_closer is None:
            self._first_closer = side
        direction = _FROM[side]
        now = self.clock.now()
        self._apply(self.link.end(direction, now, self._decisions("close", direction)))

    def tick(self, now: float) -> None:
        self._apply(self.link.tick(now, self._decisions("tick", now=now)))
        for direction in DIRECTIONS:
            self.flow(direction)

    def lost(self, side: Side, exc: Exception | None) -> None:
        if not self.finished:
            self.hang_up("fin" if exc is None else "reset", side)

    def hang_up(
        self, how: ProxyCloseHow, by: ProxySide, detail: str | None = None, *, journal: bool = True
    ) -> None:
        """End both legs (RST for the resets, FIN otherwise) and journal how it ended."""
        if self.finished:
            return
        self.finished = True
        for outbox in self.outboxes.values():
            outbox.cancel()
        if self.dial is not None and self.dial is not asyncio.current_task():
            self.dial.cancel()
        for transport in self.transports.values():
            if transport is None or transport.is_closing():
                continue
            if how in _RESETS:
                abort_with_rst(transport)
            else:
                transport.close()
        if journal:
            self.proxy.journal.record(
                at=self.clock.now(),
                connection=self.number,
                kind="disconnect",
                closed_by=by,
                how=how,
                upstream_bytes=self.forwarded["upstream"],
                downstream_bytes=self.forwarded["downstream"],
                detail=detail,
            )
        self.proxy.forget(self)

    # ---- carrying out the link's steps

    def _decisions(
        self, kind: ProxyEventKind, direction: Direction | None = None, now: float | None = None
    ) -> list[ProxyDecision]:
        event = ProxyEvent(kind, self.number, direction)
        return self.proxy.plane.faults.in_force(event, self.clock.now() if now is None else now)

    def _apply(self, outcome: Outcome) -> None:
        for applied in outcome.applied:
            self.proxy.journal.record(
                at=self.clock.now(),
                connection=self.number,
                kind="fault",
                direction=applied.direction,
                fault=f"{applied.rule_id}:{applied.kind}",
            )
        for step in outcome.steps:
            if self.finished:
                return
            if isinstance(step, Hangup):
                if step.after is None:
                    self.hang_up(step.how, "proxy")
                else:  # a clean close behind the bytes already queued that way
                    self.outboxes[step.after].push(step)
            else:
                self.outboxes[step.direction].push(step)

    def carry_out(self, step: Step) -> None:
        if self.finished:
            return
        if isinstance(step, Hangup):
            self.hang_up(step.how, "proxy")
            return
        destination = self.transports[_DESTINATION[step.direction]]
        if destination is None or destination.is_closing():
            return
        if isinstance(step, Write):
            destination.write(step.data)
            self.forwarded[step.direction] += len(step.data)
        elif isinstance(step, PassClose):
            if destination.can_write_eof():
                try:
                    destination.write_eof()
                except OSError:
                    # The destination went away while the close was held back (latency,
                    # slow-close): nothing is left to pass the close to.
                    self.hang_up("fin", self._first_closer or "proxy")
                    return
            self._closes_passed.add(step.direction)
            if len(self._closes_passed) == len(DIRECTIONS):
                self.hang_up("fin", self._first_closer or "proxy")

    # ---- flow control: stop reading a side while what it sent can't go anywhere

    def flow(self, direction: Direction) -> None:
        backlog = self.outboxes[direction].pending_bytes + self.link.held_bytes(direction)
        limit = self.proxy.config.buffer_bytes
        if backlog > limit:
            self.hold(_SOURCE[direction], "backlog")
        elif backlog <= limit // 2:
            self.release(_SOURCE[direction], "backlog")

    def hold(self, side: Side, reason: str) -> None:
        holds = self._holds[side]
        if not holds:
            transport = self.transports[side]
            if transport is not None:
                transport.pause_reading()
        holds.add(reason)

    def release(self, side: Side, reason: str) -> None:
        holds = self._holds[side]
        if reason not in holds:
            return
        holds.discard(reason)
        transport = self.transports[side]
        if not holds and transport is not None and not self.finished:
            transport.resume_reading()

    def describe(self) -> dict[str, Any]:
        return {
            "connection": self.number,
            "opened_at": self.opened_at,
            "client": self.client_address,
            "upstream_connected": self.transports["upstream"] is not None,
            "upstream_bytes": self.forwarded["upstream"],
            "downstream_bytes": self.forwarded["downstream"],
        }


class FaultProxy:
    """The proxy's state: its open connections, numbered from 1, and the fault plan's clock
    of window openings and closings (a look at every connection at each)."""

    def __init__(self, config: ProxyConfig, plane: ProxyControlPlane) -> None:
        self.config = config
        self.plane = plane
        self._connections: dict[int, _Connection] = {}
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._sweep_timer: asyncio.TimerHandle | None = None
        plane.faults.watch(self._rules_changed)
        plane.on_reset(self._reset)

    @property
    def journal(self) -> ProxyJournal:
        return self.plane.journal

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Leg("client", self), sock=sock)
        self._arm_sweep(self.plane.clock.now())

    async def stop(self) -> None:
        """Stop listening and close every connection (FIN), journaled as a shutdown."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        connections = list(self._connections.values())
        for connection in connections:
            connection.hang_up("shutdown", "proxy")
        # Dials cut short by the shutdown: let them finish cancelling inside the loop.
        await asyncio.gather(*_dialling(connections), return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def accept(self, transport: asyncio.Transport) -> _Connection:
        connection = _Connection(self, next(self._numbers), transport)
        self._connections[connection.number] = connection
        connection.start()
        return connection

    def forget(self, connection: _Connection) -> None:
        if self._connections.get(connection.number) is connection:
            del self._connections[connection.number]
            self.plane.faults.forget(connection.number)

    def connections(self) -> list[dict[str, Any]]:
        """Open connections: number, when opened, client address, bytes forwarded each way."""
        return [connection.describe() for connection in self._connections.values()]

    def _rules_changed(self) -> None:
        if self._server is not None:  # a rule added before start waits for connections
            self._sweep(self.plane.clock.now())

    def _sweep(self, at: float) -> None:
        """Look at every open connection, in number order: the plan's rules or windows
        changed, so cuts, resets and blackholes act now rather than at the next byte."""
        now = max(self.plane.clock.now(), at)  # a timer due at ``at`` fired: it is ``at``
        for connection in list(self._connections.values()):
            connection.tick(now)
        self._arm_sweep(now)

    def _arm_sweep(self, now: float) -> None:
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        boundary = self.plane.faults.next_boundary(now)
        if boundary is not None and self._server is not None:
            delay = max(0.0, boundary - self.plane.clock.now())
            self._sweep_timer = asyncio.get_running_loop().call_later(delay, self._sweep, boundary)

    def _reset(self) -> None:
        """A reset proxy is a fresh one: open connections are dropped (RST, unjournaled, as
        the journal starts empty) and numbering starts again from 1."""
        for connection in list(self._connections.values()):
            connection.hang_up("reset", "proxy", journal=False)
        self._connections.clear()
        self._numbers = itertools.count(1)
        if self._server is not None:
            self._arm_sweep(self.plane.clock.now())


def _dialling(connections: list[_Connection]) -> list[asyncio.Task[None]]:
    return [c.dial for c in connections if c.dial is not None and not c.dial.done()]


@dataclass(frozen=True)
class RunningProxy:
    """A serving proxy: clients connect to ``host:port``; ``control_url`` is its control
    plane's origin (routes under ``/_squall``); ``control`` is that plane in process (its
    ``faults``, ``journal``, ``clock``)."""

    host: str
    port: int
    control_url: str
    control: ProxyControlPlane
    proxy: FaultProxy
    app: FastAPI

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    def connections(self) -> list[dict[str, Any]]:
        return self.proxy.connections()


@contextlib.asynccontextmanager
async def serve_proxy(
    config: ProxyConfig,
    *,
    control_port: int = 0,
    control_token: str | None = None,
    clock: MockClock | None = None,
) -> AsyncIterator[RunningProxy]:
    """Proxy ``config.listen_*`` to ``config.upstream_*`` until the block exits, with the
    control plane on ``control_port`` of the same host. Raises ``ProxyPortInUse`` (a
    ``PortInUse``) before anything serves when either port is taken."""
    sock = _bind(config.listen_host, config.listen_port, "--listen")
    try:
        plane = ProxyControlPlane(seed=config.seed, control_token=control_token, clock=clock)
        proxy = FaultProxy(config, plane)
        app = create_control_app(plane, proxy)
        async with contextlib.AsyncExitStack() as stack:
            try:
                control = await stack.enter_async_context(
                    serve(app, config.listen_host, control_port)
                )
            except PortInUse as exc:
                raise ProxyPortInUse(exc.host, exc.port, "--control-port") from None
            await proxy.start(sock)  # the control app's start-up started the plane's clock
            try:
                host, port = sock.getsockname()[:2]
                yield RunningProxy(host, port, control.url, plane, proxy, app)
            finally:
                await proxy.stop()
    finally:
        sock.close()


def _bind(host: str, port: int, option: str) -> socket.socket:
    try:
        return bind(host, port)
    except PortInUse as exc:
        raise ProxyPortInUse(exc.host, exc.port, option) from None
