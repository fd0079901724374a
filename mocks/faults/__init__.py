"""One fault model for every mock: a rule is *where* + *what* + *when*.

The logic here is pure: deciding whether a request is faulted needs no sockets, only the
request's description, the mock's clock reading and the plan's seeded RNG. Applying a
decision to a wire (HTTP requests, WebSocket feed events; TCP streams later) is each mock's job.
"""

from mocks.faults.feed import (
    Duplicate,
    FeedAction,
    FeedClose,
    FeedEvent,
    FeedFaultRule,
    FeedReset,
    FeedWhere,
    FrameDelay,
    Gap,
    Garbled,
    Reject,
    Reorder,
    Restart,
    SlowReader,
    Stall,
)
from mocks.faults.model import (
    Close,
    Delay,
    Drop,
    Empty,
    Error,
    FaultAction,
    FaultRule,
    Hang,
    Malformed,
    Reset,
    Truncated,
    When,
    Where,
)
from mocks.faults.plan import Decision, FaultPlan, Request

__all__ = [
    "Close",
    "Decision",
    "Delay",
    "Drop",
    "Duplicate",
    "Empty",
    "Error",
    "FaultAction",
    "FaultPlan",
    "FaultRule",
    "FeedAction",
    "FeedClose",
    "FeedEvent",
    "FeedFaultRule",
    "FeedReset",
    "FeedWhere",
    "FrameDelay",
    "Gap",
    "Garbled",
    "Hang",
    "Malformed",
    "Reject",
    "Reorder",
    "Request",
    "Reset",
    "Restart",
    "SlowReader",
    "Stall",
    "Truncated",
    "When",
    "Where",
]
