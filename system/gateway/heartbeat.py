"""Application-level heartbeats on /ws: pings out, pongs in, silent clients closed.

Browsers cannot see WebSocket protocol pings, so the page could not tell a dead gateway
from a quiet market; JSON pings it can see. They are also the gateway's only keepalive
(``server.serve`` turns uvicorn's protocol pings off): one policy, set in
``GatewaySettings``.
"""

from __future__ import annotations

import asyncio
import logging

from system.broker.clock import loop_time
from system.gateway.connections import INTERNAL_ERROR, ConnectionManager
from system.gateway.protocol import ping

log = logging.getLogger(__name__)


class HeartbeatManager:
    """Pings every client each ``interval_s``; closes those silent for ``timeout_s``.

    A client is alive while its last pong — or its connection, before the first pong — is
    less than ``timeout_s`` old. A dead client is closed with code 1011 (as the websockets
    library does on a keepalive timeout) and removed from all its topics.
    """

    def __init__(self, manager: ConnectionManager, *, interval_s: float, timeout_s: float) -> None:
        if timeout_s <= interval_s:
            raise ValueError(
                f"the pong timeout ({timeout_s} s) must exceed the ping interval ({interval_s} s)"
            )
        self.manager = manager
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.pings_sent = 0
        self.pongs_received = 0

    def ping_all(self) -> int:
        """Queue ``{"type":"ping","ts":…}`` for every client; returns how many.

        Keyed, so a client that is behind holds one ping, not a backlog of them.
        """
        sent = self.manager.broadcast_all(ping(loop_time()), key="ping")
        self.pings_sent += sent
        return sent

    def record_pong(self, client_id: str, at: float | None = None) -> None:
        client = self.manager.client(client_id)
        if client is not None:
            client.last_pong = loop_time() if at is None else at
        self.pongs_received += 1

    def last_seen(self, client_id: str) -> float | None:
        """Loop time of the last pong, else of the connection; None for an unknown client."""
        client = self.manager.client(client_id)
        if client is None:
            return None
        return client.connected_at if client.last_pong is None else client.last_pong

    def is_alive(self, client_id: str, now: float | None = None) -> bool:
        seen = self.last_seen(client_id)
        if seen is None:
            return False
        return (loop_time() if now is None else now) - seen < self.timeout_s

    async def cleanup_stale(self) -> list[str]:
        """Close and forget every client that is not alive; returns their ids."""
        now = loop_time()
        stale = [cid for cid in self.manager.client_ids if not self.is_alive(cid, now)]
        for client_id in stale:
            seen = self.last_seen(client_id)
            silent = now - (now if seen is None else seen)
            log.info("gateway: client %s sent no pong for %.0f s; closing it", client_id, silent)
            self.manager.totals.closed_stale += 1
        await asyncio.gather(
            *(
                self.manager.close(
                    cid, INTERNAL_ERROR, f"no pong for {self.timeout_s:g} s: heartbeat timeout"
                )
                for cid in stale
            )
        )
        return stale

    async def run(self) -> None:
        """Every ``interval_s``: close the dead, then ping the living. Runs until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.cleanup_stale()
                self.ping_all()
            except Exception:
                # The heartbeat must outlive one bad round, or dead clients pile up.
                log.exception("gateway: heartbeat round failed")
