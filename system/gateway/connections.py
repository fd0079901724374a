"""Who is connected to /ws, what each client subscribed to, and getting messages to them.

The manager never awaits a client: broadcasting puts an encoded message on each
subscriber's bounded ``Outbox`` and returns, and one writer task per client drains that
client's outbox into its socket. A client that reads slowly (or not at all) fills only its
own outbox; the others keep receiving at their own pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from system.broker.clock import loop_time
from system.gateway.outbox import Outbox
from system.gateway.protocol import check_topic, connected, encode

log = logging.getLogger(__name__)

# WebSocket close codes the gateway uses (RFC 6455 §7.4.1).
GOING_AWAY = 1001
INTERNAL_ERROR = 1011  # also what the websockets library sends on a keepalive timeout
TRY_AGAIN_LATER = 1013

TopicListener = Callable[[str, bool], None]


class ClientSocket(Protocol):
    """What the manager needs of a WebSocket (starlette's fits; tests pass a fake)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...

    def abort(self) -> None:
        """Drop the connection without a closing handshake (the last resort of ``close``)."""


@dataclass
class Client:
    """One connection's state; ``dropped``/``coalesced`` count its outbox's losses."""

    id: str
    socket: ClientSocket
    outbox: Outbox
    connected_at: float
    last_pong: float | None = None  # loop time; kept by HeartbeatManager
    topics: set[str] = field(default_factory=set)
    writer: asyncio.Task[None] | None = None
    # Loop time of the first drop since the outbox was last empty; None while keeping up.
    overflowing_since: float | None = None
    closing: bool = False

    @property
    def dropped(self) -> int:
        return self.outbox.dropped

    @property
    def coalesced(self) -> int:
        return self.outbox.coalesced


@dataclass
class ConnectionTotals:
    """Counters over the manager's whole life (clients that left included)."""

    connections: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    messages_coalesced: int = 0
    closed_saturated: int = 0
    closed_stale: int = 0
    send_failures: int = 0


class ConnectionManager:
    """Clients, their topics, and one bounded outbox and writer task per client.

    **Overflow policy.** Each client has an outbox of ``queue_size`` messages.

    1. Messages sent with a ``key`` are latest-wins: prices are keyed by ticker
       (``price:005930``), so while a client is behind, a newer price of a ticker replaces
       the queued one in its place (``messages_coalesced``; nothing is lost that the client
       still needed).
    2. When the outbox is still full, the oldest message is dropped to make room
       (``messages_dropped``, per client and in total).
    3. A client that keeps overflowing — it dropped messages and has not once emptied its
       outbox for ``saturation_close_s`` — is closed with code 1013 (try again later) and a
       reason saying so (``closed_saturated``). Reading faster or subscribing to fewer
       tickers is the cure; the dashboard reconnects by itself.

    Topics are ticker codes (``"005930"``) and the named topics of ``protocol.NAMED_TOPICS``.
    Topic listeners hear ``(topic, True)`` when a topic gets its first subscriber and
    ``(topic, False)`` when it loses its last one — the price broadcaster subscribes the
    feed from there.
    """

    def __init__(
        self,
        *,
        queue_size: int = 256,
        saturation_close_s: float = 10.0,
        close_timeout_s: float = 5.0,
    ) -> None:
        self.queue_size = queue_size
        self.saturation_close_s = saturation_close_s
        self.close_timeout_s = close_timeout_s
        self.totals = ConnectionTotals()
        self._clients: dict[str, Client] = {}
        self._topics: dict[str, set[str]] = {}
        self._ids = itertools.count(1)
        self._topic_listeners: list[TopicListener] = []
        self._closing: set[asyncio.Task[None]] = set()

    # -- connections ----------------------------------------------------------------------

    def connect(self, socket: ClientSocket, hello: Mapping[str, Any] | None = None) -> str:
        """Register an accepted socket and queue ``{"type":"connected","client_id":…}``
        (plus ``hello``'s fields); returns the client id."""
        client_id = f"c{next(self._ids)}"
        client = Client(client_id, socket, Outbox(self.queue_size), loop_time())
        self._clients[client_id] = client
        self.totals.connections += 1
        client.writer = asyncio.get_running_loop().create_task(
            self._write(client), name=f"gateway writer {client_id}"
        )
        self.send(client_id, connected(client_id, hello))
        return client_id

    def disconnect(self, client_id: str) -> None:
        """Forget a client: leave all its topics, stop its writer. Idempotent.

        For a client that went away; ``close`` is for the gateway sending it away.
        """
        client = self._clients.pop(client_id, None)
        if client is None:
            return
        for topic in sorted(client.topics):
            self._leave(client_id, topic)
        client.topics.clear()
        if client.writer is not None and client.writer is not asyncio.current_task():
            client.writer.cancel()

    async def close(self, client_id: str, code: int, reason: str) -> None:
        """Send a client away with ``code`` and ``reason``, then forget it.

        The client is forgotten first, so nothing more is queued for it. A close that does
        not complete within ``close_timeout_s`` — a client that does not read cannot take a
        close frame — aborts the connection instead.
        """
        client = self._clients.get(client_id)
        if client is None:
            return
        writer = client.writer
        self.disconnect(client_id)
        if writer is not None and writer is not asyncio.current_task():
            # Never two sends on one socket at a time: the writer must be gone before the
            # close frame goes out. (wait, not await: the writer's CancelledError is not ours.)
            await asyncio.wait({writer})
        try:
            async with asyncio.timeout(self.close_timeout_s):
                await client.socket.close(code, reason)
        except TimeoutError:
            log.warning(
                "gateway: client %s did not take its close frame within %.1f s; aborting",
                client_id,
                self.close_timeout_s,
            )
            client.socket.abort()
        except Exception as exc:  # already gone: nothing left to close
            log.debug("gateway: closing client %s failed: %r", client_id, exc)

    async def close_all(
        self, code: int = GOING_AWAY, reason: str = "gateway shutting down"
    ) -> None:
        """Close every client (and let closes already under way finish)."""
        await asyncio.gather(*(self.close(cid, code, reason) for cid in list(self._clients)))
        await asyncio.gather(*self._closing, return_exceptions=True)

    def client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    @property
    def client_ids(self) -> tuple[str, ...]:
        return tuple(self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    # -- topics ---------------------------------------------------------------------------

    def add_topic_listener(self, listener: TopicListener) -> None:
        self._topic_listeners.append(listener)

    def subscribe(self, client_id: str, topic: str) -> bool:
        """Add ``client_id`` to ``topic`` (a 6-digit ticker or a named topic); True if new.

        ``ProtocolError`` (``InvalidTicker`` for a malformed ticker) names the bad value and
        the expected form; ``KeyError`` for an unknown client.
        """
        check_topic(topic)
        client = self._clients[client_id]
        if topic in client.topics:
            return False
        client.topics.add(topic)
        members = self._topics.setdefault(topic, set())
        members.add(client_id)
        if len(members) == 1:
            self._notify(topic, True)
        return True

    def unsubscribe(self, client_id: str, topic: str) -> bool:
        """Remove ``client_id`` from ``topic``; True if it was subscribed."""
        client = self._clients.get(client_id)
        if client is None or topic not in client.topics:
            return False
        client.topics.discard(topic)
        self._leave(client_id, topic)
        return True

    def subscribers(self, topic: str) -> frozenset[str]:
        return frozenset(self._topics.get(topic, ()))

    def topics(self) -> dict[str, int]:
        """Every topic with subscribers, and how many."""
        return {topic: len(members) for topic, members in sorted(self._topics.items())}

    def _leave(self, client_id: str, topic: str) -> None:
        members = self._topics.get(topic)
        if members is None or client_id not in members:
            return
        members.discard(client_id)
        if not members:
            del self._topics[topic]
            self._notify(topic, False)

    def _notify(self, topic: str, active: bool) -> None:
        for listener in list(self._topic_listeners):
            try:
                listener(topic, active)
            except Exception:
                # A broken listener must not leave the topic table half-updated.
                log.exception("gateway: topic listener %r failed on %s", listener, topic)

    # -- sending --------------------------------------------------------------------------

    def send(self, client_id: str, message: Mapping[str, Any], key: str | None = None) -> bool:
        """Queue ``message`` for one client; False if it is not connected."""
        client = self._clients.get(client_id)
        if client is None:
            return False
        self._enqueue(client, encode(message), key)
        return True

    def broadcast(self, topic: str, message: Mapping[str, Any], key: str | None = None) -> int:
        """Queue ``message`` for ``topic``'s subscribers only; returns how many."""
        members = self._topics.get(topic)
        if not members:
            return 0
        text = encode(message)  # once, however many subscribers
        for client_id in list(members):
            self._enqueue(self._clients[client_id], text, key)
        return len(members)

    def broadcast_all(self, message: Mapping[str, Any], key: str | None = None) -> int:
        """Queue ``message`` for every connected client."""
        text = encode(message)
        clients = list(self._clients.values())
        for client in clients:
            self._enqueue(client, text, key)
        return len(clients)

    def _enqueue(self, client: Client, text: str, key: str | None) -> None:
        outcome = client.outbox.put(text, key)
        if outcome == "coalesced":
            self.totals.messages_coalesced += 1
        elif outcome == "dropped_oldest":
            self.totals.messages_dropped += 1
            now = loop_time()
            if client.overflowing_since is None:
                client.overflowing_since = now
            elif now - client.overflowing_since >= self.saturation_close_s and not client.closing:
                self._close_saturated(client, now - client.overflowing_since)

    def _close_saturated(self, client: Client, seconds: float) -> None:
        client.closing = True
        self.totals.closed_saturated += 1
        reason = (
            f"send queue overflowed for {seconds:.1f} s ({client.dropped} messages dropped): "
            "read faster or subscribe to fewer tickers"
        )
        log.warning("gateway: closing client %s: %s", client.id, reason)
        # The close frame's reason is limited to 123 bytes by RFC 6455.
        self._spawn(self.close(client.id, TRY_AGAIN_LATER, reason[:123]))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _write(self, client: Client) -> None:
        while True:
            text = await client.outbox.get()
            try:
                await client.socket.send_text(text)
            except Exception as exc:
                # Mostly the peer is gone (a reset, a close racing this send). When it is not
                # (a message that could not be encoded), a connection left open would never
                # be written to again: dropped, the client sees it and reconnects.
                self.totals.send_failures += 1
                log.debug("gateway: sending to %s failed: %r", client.id, exc)
                self.disconnect(client.id)
                with contextlib.suppress(Exception):
                    client.socket.abort()
                return
            self.totals.messages_sent += 1
            if not len(client.outbox):
                client.overflowing_since = None  # caught up
