"""The system's HTTP and WebSocket face: ``/ws`` live prices and signals, ``/health``,
``/metrics``, the dashboard page, and the REST API (stored orders, the kill switch, and the
trading desk's orders, positions and P&L).

``create_gateway(service, feed, settings)`` builds the app; ``serve(app, host, port)``
serves it in the current event loop (``PortInUse`` when the port is taken). The parts —
``ConnectionManager``, ``HeartbeatManager``, ``PriceUpdateBroadcaster``,
``SignalBroadcaster`` — each work, and are tested, without sockets.
"""

from system.gateway.app import Gateway, create_gateway
from system.gateway.connections import ClientSocket, ConnectionManager
from system.gateway.health import BrokerService, GatewayHealth
from system.gateway.heartbeat import HeartbeatManager
from system.gateway.kill_switch import HaltState, KillSwitchControl
from system.gateway.prices import PriceUpdateBroadcaster
from system.gateway.protocol import InvalidTicker, ProtocolError, check_ticker
from system.gateway.server import GatewayServer, PortInUse, serve
from system.gateway.settings import GatewaySettings
from system.gateway.signals import SignalBroadcaster, to_jsonable
from system.gateway.trading import OrderHistory, TradingDesk

__all__ = [
    "BrokerService",
    "ClientSocket",
    "ConnectionManager",
    "Gateway",
    "GatewayHealth",
    "GatewayServer",
    "GatewaySettings",
    "HaltState",
    "HeartbeatManager",
    "InvalidTicker",
    "KillSwitchControl",
    "OrderHistory",
    "PortInUse",
    "PriceUpdateBroadcaster",
    "ProtocolError",
    "SignalBroadcaster",
    "TradingDesk",
    "check_ticker",
    "create_gateway",
    "serve",
    "to_jsonable",
]
