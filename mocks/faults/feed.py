"""Feed faults: the shared rule shape (*where* + *what* + *when*) for a realtime WebSocket feed.

A feed has no requests to fault, it has *events*: a connection being accepted, a client's
subscribe or unsubscribe, any other client message, a data frame or a PINGPONG about to go
out. A rule's ``where`` picks events by kind, tr_id, tr_key and connection; its ``when`` is
the same ``When`` as the HTTP rules' (window, first/every, seeded probability), counted
over the events the rule's action can act on; its ``what`` is one of the feed actions below.

Connection-level actions (close, reset, stall, slow-reader, restart) fire at whatever event
of the connection matches first, so a rule meant to fire once wants ``when: {first: 1}``:
without it, every later matching event fires it again (a stall re-armed at the first frame
after it ended, a restart after the server is back).

One rule per kind, as ``POST /_squall/faults`` takes them on the feed::

    {"what": {"kind": "close", "code": 4001, "reason": "maintenance"}, "when": {"first": 1}}
    {"what": {"kind": "reset"}, "where": {"connection": 2}, "when": {"first": 1}}
    {"what": {"kind": "stall", "seconds": 30}, "when": {"from": 60, "first": 1}}
    {"what": {"kind": "delay", "seconds": 3}, "where": {"tr_id": "H0STCNT0"}, "when": {"for": 10}}
    {"what": {"kind": "duplicate", "copies": 1}, "when": {"every": 20}}
    {"what": {"kind": "reorder"}, "where": {"tr_key": "005930"}, "when": {"first": 1}}
    {"what": {"kind": "gap"}, "when": {"probability": 0.05}}
    {"what": {"kind": "malformed"}, "when": {"first": 1}}
    {"what": {"kind": "reject", "code": "OPSP0008"}, "where": {"tr_key": "000660"}}
    {"what": {"kind": "restart", "seconds": 5}, "when": {"from": 120, "first": 1}}
    {"what": {"kind": "slow-reader", "seconds": 20}, "when": {"first": 1}}
    {"what": {"kind": "close", "code": 1001, "all_connections": true}, "when": {"first": 1}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field

from mocks.faults.model import Delay, RuleId, When, _Strict

FeedEventKind = Literal["connect", "subscribe", "unsubscribe", "message", "frame", "pingpong"]
FEED_EVENT_KINDS: frozenset[str] = frozenset(get_args(FeedEventKind))
_FRAMES = frozenset({"frame"})


@dataclass(frozen=True)
class FeedEvent:
    """What a feed rule may look at: no sockets, no framework objects."""

    kind: FeedEventKind
    connection: int
    tr_id: str | None = None
    tr_key: str | None = None


class FeedWhere(_Strict):
    """Which events a rule targets. Empty fields match everything.

    ``tr_id`` compares case-insensitively (H0STCNT0, H0STASP0); ``tr_key`` is the six-digit
    code; ``connection`` is the feed's connection number (1, 2, ... in the journal).
    """

    event: FeedEventKind | None = None
    tr_id: str | None = None
    tr_key: str | None = None
    connection: int | None = Field(default=None, ge=1)

    def matches(self, event: FeedEvent) -> bool:
        if self.event is not None and self.event != event.kind:
            return False
        if self.connection is not None and self.connection != event.connection:
            return False
        if self.tr_key is not None and self.tr_key != event.tr_key:
            return False
        return self.tr_id is None or (
            event.tr_id is not None and self.tr_id.upper() == event.tr_id.upper()
        )


class _ConnectionAction(_Strict):
    """Acts on a whole connection, at any event of it (or on every connection at once)."""

    events: ClassVar[frozenset[str]] = FEED_EVENT_KINDS
    all_connections: bool = False


class FeedClose(_ConnectionAction):
    """Close the WebSocket with ``code`` (and ``reason``): a clean close handshake."""

    kind: Literal["close"] = "close"
    code: int = Field(default=1000, ge=1000, le=4999)
    reason: str = Field(default="", max_length=123)  # a close frame carries 123 bytes at most


class FeedReset(_ConnectionAction):
    """Abort the TCP connection with an RST: the client sees 'connection reset by peer'."""

    kind: Literal["reset"] = "reset"


class Stall(_ConnectionAction):
    """Half-open: send nothing at all (frames, acks, PINGPONG, WebSocket pongs) and read
    nothing, for ``seconds`` or, without it, until the connection is dropped by the mock.
    The socket stays open. Frames of the stalled steps are never sent: a gap on resume.
    As on a real half-open connection the server doesn't see the client leave, so the
    stalled session keeps its app key: a client that reconnects meanwhile gets OPSP8996
    until the stall ends."""

    kind: Literal["stall"] = "stall"
    seconds: float | None = Field(default=None, gt=0)


class SlowReader(_ConnectionAction):
    """The mock stops reading the client for ``seconds``: its PINGPONG echoes, subscribe
    requests and WebSocket pings wait in the socket buffers and are handled, in order, when
    reading resumes. Frames keep flowing out meanwhile."""

    kind: Literal["slow-reader"] = "slow-reader"
    seconds: float = Field(gt=0)


class Restart(_Strict):
    """The server goes down: every connection (WebSocket and HTTP, the control plane's too)
    is cut without a close frame, new connections are refused for ``seconds``, then the
    server listens again on the same port."""

    events: ClassVar[frozenset[str]] = FEED_EVENT_KINDS
    kind: Literal["restart"] = "restart"
    seconds: float = Field(default=5.0, gt=0)


class Duplicate(_Strict):
    """Send the frame, then ``copies`` more identical copies right behind it."""

    events: ClassVar[frozenset[str]] = _FRAMES
    kind: Literal["duplicate"] = "duplicate"
    copies: int = Field(default=1, ge=1, le=100)


class Reorder(_Strict):
    """Hold the frame back and send it right after the next frame of the same tr_id and
    tr_key: the client sees step s+1 before step s."""

    events: ClassVar[frozenset[str]] = _FRAMES
    kind: Literal["reorder"] = "reorder"


class Gap(_Strict):
    """Never send the frame: its records are lost, a gap in ACML_VOL."""

    events: ClassVar[frozenset[str]] = _FRAMES
    kind: Literal["gap"] = "gap"


class Garbled(_Strict):
    """Send ``text`` instead of the frame; by default the frame cut in half (an intact
    header, a record count the fields don't fill)."""

    events: ClassVar[frozenset[str]] = _FRAMES
    kind: Literal["malformed"] = "malformed"
    text: str | None = Field(default=None, max_length=65_536)


class Reject(_Strict):
    """Answer a subscribe request with an error ack instead of subscribing.

    ``code`` is an OPSP code (default OPSP9009, the mock's own "SUBSCRIBE REJECTED");
    ``message`` overrides its msg1.
    """

    events: ClassVar[frozenset[str]] = frozenset({"subscribe"})
    kind: Literal["reject"] = "reject"
    code: str = Field(default="OPSP9009", pattern=r"^[A-Z0-9]{4,12}$")
    message: str | None = Field(default=None, max_length=200)


class FrameDelay(Delay):
    """Hold the frame ``seconds`` (or a drawn delay) before sending it. Everything behind it
    on the connection waits too, in order, as on a TCP stream: head-of-line blocking."""

    events: ClassVar[frozenset[str]] = _FRAMES


FeedAction = Annotated[
    FeedClose
    | FeedReset
    | Stall
    | SlowReader
    | Restart
    | FrameDelay
    | Duplicate
    | Reorder
    | Gap
    | Garbled
    | Reject,
    Field(discriminator="kind"),
]


class FeedFaultRule(_Strict):
    """A named feed fault: which events it strikes, what it does, when it is active."""

    id: RuleId = None
    where: FeedWhere = FeedWhere()
    what: FeedAction
    when: When = When()

    def covers(self, event: FeedEvent) -> bool:
        """Whether ``event`` is one this rule's action can act on and ``where`` selects."""
        return event.kind in self.what.events and self.where.matches(event)
