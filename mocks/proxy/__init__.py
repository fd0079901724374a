"""The TCP fault proxy: the Toxiproxy idea, in process and scriptable, in front of
PostgreSQL, Redis or any TCP service.

Clients connect to the proxy instead of the service; every connection is forwarded to the
upstream through the fault rules in force (``mocks.faults.ProxyFaultRule``: latency and
jitter, bandwidth, blackhole, reset, close-after, slow-close, refuse, cut; per direction,
per connection, in windows, with seeded probabilities)::

    config = ProxyConfig(upstream_host="127.0.0.1", upstream_port=5432, seed=7)
    async with serve_proxy(config) as proxy:
        dsn = f"postgresql://app@{proxy.address}/app"
        async with ProxyControl(proxy.control_url) as control:
            await control.add_fault({"what": {"kind": "latency", "seconds": 0.2}})

The fault logic is pure (``mocks.proxy.toxics``), the sockets are in ``mocks.proxy.server``,
and the control plane (rules, journal, connections) is HTTP on a port of its own.
"""

from mocks.proxy.config import ProxyConfig, format_address, parse_address
from mocks.proxy.control import ProxyControlPlane, create_control_app
from mocks.proxy.server import FaultProxy, ProxyPortInUse, RunningProxy, serve_proxy
from mocks.proxy.toxics import Applied, Hangup, Link, Outcome, PassClose, Write

__all__ = [
    "Applied",
    "FaultProxy",
    "Hangup",
    "Link",
    "Outcome",
    "PassClose",
    "ProxyConfig",
    "ProxyControlPlane",
    "ProxyPortInUse",
    "RunningProxy",
    "Write",
    "create_control_app",
    "format_address",
    "parse_address",
    "serve_proxy",
]
