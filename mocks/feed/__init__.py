"""The simulated KIS realtime feed: approval keys, subscribe/unsubscribe acks, pipe-delimited
H0STCNT0/H0STASP0 frames from the seeded market, PINGPONG, and scriptable feed faults.

Standalone (any UUID-shaped approval key)::

    async with serve_feed(FeedConfig(seed=7)) as server:
        ws_url = server.ws_url + "/tryitout"

Beside the mock broker in one process (only keys the broker issued)::

    broker = create_app(BrokerConfig(seed=7))
    feed = create_feed_app(FeedConfig(seed=7), approvals=broker.state.broker.tokens.approvals)
    async with serve(broker) as rest, serve(feed, ws_ping_interval=None) as realtime: ...
"""

from mocks.feed.app import WEBSOCKET_PATHS, create_feed_app, opening_bell, serve_feed
from mocks.feed.config import FeedConfig
from mocks.feed.state import ApprovalRegistry

__all__ = [
    "WEBSOCKET_PATHS",
    "ApprovalRegistry",
    "FeedConfig",
    "create_feed_app",
    "opening_bell",
    "serve_feed",
]
