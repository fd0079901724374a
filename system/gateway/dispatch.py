"""What the gateway does with one message from a /ws client. No I/O: every answer is queued.

A message it cannot act on is answered with ``{"type":"error","code","message"}`` and
otherwise ignored; the connection stays open (a typo in a dashboard must not cost it its
prices).
"""

from __future__ import annotations

from system.broker.clock import loop_time
from system.gateway import protocol
from system.gateway.connections import ConnectionManager
from system.gateway.heartbeat import HeartbeatManager
from system.gateway.prices import PriceUpdateBroadcaster
from system.gateway.protocol import (
    SIGNALS,
    Ping,
    Pong,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    parse_client_message,
)
from system.gateway.signals import SignalBroadcaster


class MessageDispatcher:
    def __init__(
        self,
        manager: ConnectionManager,
        heartbeat: HeartbeatManager,
        prices: PriceUpdateBroadcaster,
        signals: SignalBroadcaster,
        *,
        max_message_bytes: int,
    ) -> None:
        self.manager = manager
        self.heartbeat = heartbeat
        self.prices = prices
        self.signals = signals
        self.max_message_bytes = max_message_bytes
        self.errors_sent = 0

    def handle(self, client_id: str, text: str) -> None:
        try:
            message = parse_client_message(text, self.max_message_bytes)
            self._act(client_id, message)
        except ProtocolError as exc:
            self.errors_sent += 1
            self.manager.send(client_id, protocol.error(exc.code, exc.message))

    def _act(self, client_id: str, message: protocol.ClientMessage) -> None:
        match message:
            case Subscribe(topic, by_ticker):
                new = self.manager.subscribe(client_id, topic)
                self.manager.send(client_id, protocol.subscribed(topic, by_ticker))
                # Re-subscribing (a page that lost track) gets the latest price again too.
                if topic == SIGNALS:
                    if new:
                        self.signals.replay(client_id)
                else:
                    self.prices.send_latest(client_id, topic)
            case Unsubscribe(topic, by_ticker):
                self.manager.unsubscribe(client_id, topic)
                self.manager.send(client_id, protocol.unsubscribed(topic, by_ticker))
            case Pong():
                self.heartbeat.record_pong(client_id)
            case Ping():
                self.manager.send(client_id, protocol.pong(loop_time()))
