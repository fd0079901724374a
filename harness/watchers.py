"""The ``watch`` workload: dashboard clients on the gateway's ``/ws``, as a browser tab is.

Each client connects, subscribes its tickers, answers every ping, and records each price
update it receives: when (scenario seconds), which ticker, its source and staleness, and
its *lag*, the time from the system taking the price in (the update's ``at``, on the same
loop clock) to the client reading it. A client whose connection ends reconnects after a
second and subscribes again, as the dashboard page does.

A ``slow`` client is a frozen tab: its socket's receive buffer is tiny and, once
subscribed, it reads nothing more, so the gateway's queue for it fills up. The gateway must
not let that hold up anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from harness.result import TickSeen
from harness.scenario.model import Step, WatchLoad
from harness.workload import History

RECONNECT_AFTER_S = 1.0
# Small enough that a few hundred price updates fill it; the kernel doubles the value.
SLOW_RECEIVE_BUFFER = 2048


class Watchers:
    """Runs the watch steps of one scenario against one gateway."""

    def __init__(self, ws_url: str, history: History, end: float) -> None:
        self.ws_url = ws_url
        self.history = history
        self.end = end

    async def run(self, step: Step) -> None:
        """Keep ``step``'s clients connected until the step ends."""
        load = step.watch
        assert load is not None
        stop = min(step.end or self.end, self.end)
        clients = [
            asyncio.create_task(self._client(step.label, number, load))
            for number in range(1, load.clients + 1)
        ]
        try:
            await asyncio.sleep(max(0.0, stop - self.history.now()))
        finally:
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)

    async def _client(self, label: str, number: int, load: WatchLoad) -> None:
        while True:
            # Whatever ended the connection, a dashboard comes back (it is not evidence:
            # the gateway's own metrics count the clients it closed).
            with contextlib.suppress(OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                async with await self._connect(load) as ws:
                    for ticker in load.tickers:
                        await ws.send(json.dumps({"type": "subscribe", "ticker": ticker}))
                    if load.slow:
                        await ws.wait_closed()
                    else:
                        await self._read(ws, label, number)
            await asyncio.sleep(RECONNECT_AFTER_S)

    async def _connect(self, load: WatchLoad) -> ClientConnection:
        sock: socket.socket | None = None
        if load.slow:
            # The buffer is set before connecting: the window is agreed in the handshake.
            parts = urlsplit(self.ws_url)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RECEIVE_BUFFER)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            try:
                await loop.sock_connect(sock, (parts.hostname or "127.0.0.1", parts.port or 80))
            except BaseException:  # refused while the gateway is down: the client retries
                sock.close()
                raise
        # No protocol-level pings: the gateway's JSON heartbeat is the keepalive, and a
        # slow client must not be kept alive (or killed) by its own library. A slow client's
        # library stops reading the socket once one message waits, so the backlog stays in
        # the kernel and then in the gateway, as with a browser whose tab froze.
        return await connect(
            self.ws_url, sock=sock, ping_interval=None, max_queue=1 if load.slow else 1024
        )

    async def _read(self, ws: ClientConnection, label: str, number: int) -> None:
        loop = asyncio.get_running_loop()
        history = self.history
        async for raw in ws:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong", "ts": message.get("ts")}))
                elif kind == "price_update":
                    data = message["data"]
                    history.ticks.append(
                        TickSeen(
                            at=history.now(),
                            workload=label,
                            client=number,
                            ticker=str(message["ticker"]),
                            source=str(data["source"]),
                            stale=bool(data["stale"]),
                            lag=loop.time() - float(data["at"]),
                        )
                    )
