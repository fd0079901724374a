"""The broker client's HTTP transport: httpx's own, with its connection pool on plain asyncio.

Why not httpx's default: its pool runs on anyio streams, and before every request it asks each
pooled connection whether the server has closed it (``is_readable``). anyio answers by building
the stream's whole attribute map, ``getpeername`` included, so at 18 connections that check
alone cost ~0.45 ms per request, more than the request itself on loopback (measured with
py-spy on the EGW00133 storm; the bench's time compression rose by about a quarter without
it). Here the answer is already in hand: the protocol below has seen the bytes or the end of
the stream the moment the loop delivered them.

Only the network layer changes. HTTP/1.1 framing, pooling, keep-alive expiry and the mapping
of errors to httpx's exceptions stay httpx's and httpcore's, so callers see exactly the
exceptions they saw before (``httpx.ConnectError``, ``httpx.ReadTimeout``, …).
"""

# httpcore's stream interface takes `timeout` arguments; they are honoured with asyncio.timeout.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore
import httpx

# Stop reading from the socket past this much unread data; the broker's answers are a few KB,
# so only a misbehaving peer ever reaches it.
_READ_HIGH_WATER = 256 * 1024


class _Wire(asyncio.Protocol):
    """One connection's bytes as the loop delivers them: an inbound buffer, whether the peer
    has finished, and write flow control. The loop calls these methods; `_Stream` waits on
    them."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.inbound = bytearray()
        self.ended = False  # the peer sent EOF or the connection is gone
        self.error: BaseException | None = None
        self._paused_reading = False
        self._paused_writing = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.inbound += data
        if len(self.inbound) > _READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._paused_reading = True
        _settle(self._readable)

    def eof_received(self) -> bool:
        self.ended = True
        _settle(self._readable)
        return False  # HTTP/1.1 has no use for a half-open connection: let it close

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        _settle(self._readable)
        _settle(self._writable)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        _settle(self._writable)

    async def readable(self) -> None:
        while not self.inbound and not self.ended:
            self._readable = asyncio.get_running_loop().create_future()
            try:
                await self._readable
            finally:
                self._readable = None

    async def drained(self) -> None:
        while self._paused_writing and not self.ended:
            self._writable = asyncio.get_running_loop().create_future()
            try:
                await self._writable
            finally:
                self._writable = None

    def take(self, max_bytes: int) -> bytes:
        chunk = bytes(self.inbound[:max_bytes])
        del self.inbound[:max_bytes]
        if self._paused_reading and len(self.inbound) <= _READ_HIGH_WATER // 4:
            self._paused_reading = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return chunk


def _settle(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, wire: _Wire, transport: asyncio.Transport) -> None:
        self._wire = wire
        self._transport = transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                await self._wire.readable()
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(f"no data within {timeout} s") from exc
        if self._wire.inbound:
            return self._wire.take(max_bytes)
        if self._wire.error is not None:
            raise httpcore.ReadError(str(self._wire.error)) from self._wire.error
        return b""  # a clean end of stream: httpcore decides what that means

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._wire.ended or self._transport.is_closing():
            raise httpcore.WriteError(f"the connection is closed ({self._wire.error or 'EOF'})")
        self._transport.write(buffer)
        try:
            async with asyncio.timeout(timeout):
                await self._wire.drained()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(f"the peer took no data within {timeout} s") from exc

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                secured = await loop.start_tls(
                    self._transport, self._wire, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout} s") from exc
        except OSError as exc:  # ssl.SSLError included
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if secured is None:  # only when the transport closed under the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._wire.transport = secured
        return _Stream(self._wire, self._wire.transport)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle keep-alive connection with anything to read, data or EOF, is one the
            # server has given up on; httpcore then opens a fresh one.
            return bool(self._wire.inbound) or self._wire.ended
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's transports and protocols."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, wire = await loop.create_connection(
                    _Wire, host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(
                f"no connection to {host}:{port} within {timeout} s"
            ) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = cast(socket.socket, transport.get_extra_info("socket"))
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(wire, transport)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class BrokerTransport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport` whose pool connects through `AsyncioBackend`."""

    def __init__(self, verify: ssl.SSLContext, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, limits=limits)
        # httpx 0.28 takes no network backend (encode/httpx#3749 proposes one), so the pool it
        # built is swapped for the same pool on ours;
        # tests/unit/broker/test_transport.py fails if this stops taking effect.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )
