"""TCP proxy faults: the shared rule shape (*where* + *what* + *when*) for raw byte streams.

A proxied connection has no requests or frames, only two byte streams: ``upstream``
(client → server) and ``downstream`` (server → client). A rule's ``where`` picks a direction
(or both) and optionally one connection by the proxy's number (1, 2, ... in its journal);
its ``when`` is the same ``When`` as every other rule's; its ``what`` is one of the actions
below, a "toxic" in Toxiproxy's words.

Rules are decided per connection, not per chunk of bytes: a connection *meets* each rule
once, at the first moment both exist and the rule's window is open: at connect for rules
already in force, otherwise when the window opens or the rule is added (open connections in
connection order). At that meeting ``first``/``every`` count connections and
``probability`` draws, so the same seed and the same order of connections fault the same
connections. From then on the rule acts on that connection whenever its window is open.

One rule per kind, as ``POST /_squall/faults`` takes them on the proxy::

    {"what": {"kind": "latency", "seconds": 0.2, "jitter": 0.05}}
    {"what": {"kind": "bandwidth", "bytes_per_second": 65536}, "where": {"direction": "downstream"}}
    {"what": {"kind": "blackhole"}, "where": {"direction": "upstream"}, "when": {"for": 30}}
    {"what": {"kind": "reset"}, "where": {"connection": 2}}
    {"what": {"kind": "close-after", "bytes": 1024}, "where": {"direction": "downstream"}}
    {"what": {"kind": "slow-close", "seconds": 5}}
    {"what": {"kind": "refuse"}, "when": {"for": 10}}
    {"what": {"kind": "cut"}, "when": {"from": 60}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, model_validator

from mocks.faults.model import RuleId, When, _Strict

Direction = Literal["upstream", "downstream"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

# ``tick`` is the proxy looking at an open connection without traffic on it: when a rule's
# window opens or closes, or the rules change, so cut, reset and blackhole act on time.
ProxyEventKind = Literal["connect", "data", "close", "tick"]
PROXY_EVENT_KINDS: frozenset[str] = frozenset(get_args(ProxyEventKind))

# Which connections an action can reach: "new" ones at their connect, "open" ones when the
# window opens (or the rule is added) while they are open.
Reach = Literal["new", "open"]
_ANY: frozenset[Reach] = frozenset({"new", "open"})


@dataclass(frozen=True)
class ProxyEvent:
    """What a proxy rule may look at: no sockets, no framework objects.

    ``direction`` is the stream the event is on (``data``: the chunk's, ``close``: the side
    that closed, upstream meaning the client); None for ``connect`` and ``tick``.
    """

    kind: ProxyEventKind
    connection: int
    direction: Direction | None = None


class ProxyWhere(_Strict):
    """Which streams a rule targets. Empty fields match everything.

    ``direction``: ``upstream`` (client → server bytes), ``downstream`` (server → client) or
    None for both; ``connection``: the proxy's 1-based connection number.
    """

    direction: Direction | None = None
    connection: int | None = Field(default=None, ge=1)

    def selects(self, connection: int) -> bool:
        return self.connection is None or self.connection == connection

    def toward(self, direction: Direction | None) -> bool:
        """Whether the rule acts on ``direction`` (None: an event of no direction)."""
        return self.direction is None or self.direction == direction


class _StreamAction(_Strict):
    """Acts on the bytes (and the close) of the direction(s) ``where`` names."""

    events: ClassVar[frozenset[str]] = frozenset({"data", "close"})
    reaches: ClassVar[frozenset[Reach]] = _ANY
    whole_connection: ClassVar[bool] = False


class Latency(_StreamAction):
    """Hold every chunk ``seconds`` before forwarding it, plus a uniform draw in
    [-``jitter``, +``jitter``] from the connection's seeded RNG (never below zero).

    Chunks keep their order, as on a TCP stream: a chunk drawn a shorter delay waits for
    the one before it. The close (FIN) travels the same path, so it is delayed too."""

    kind: Literal["latency"] = "latency"
    seconds: float = Field(ge=0, le=86_400)
    jitter: float = Field(default=0.0, ge=0, le=86_400)

    @model_validator(mode="after")
    def _something(self) -> Latency:
        if self.seconds == 0 and self.jitter == 0:
            raise ValueError("a latency of 0 s without jitter changes nothing; give seconds > 0")
        return self


class Bandwidth(_StreamAction):
    """Pace the bytes at ``bytes_per_second``: a chunk leaves in slices of a tenth of a
    second's worth, each when the link would have finished sending it. Several bandwidth
    rules on one stream: the narrowest wins."""

    events: ClassVar[frozenset[str]] = frozenset({"data"})
    kind: Literal["bandwidth"] = "bandwidth"
    bytes_per_second: int = Field(gt=0)


class Blackhole(_StreamAction):
    """Keep the connection open but forward nothing in the direction: the peer waits.

    Bytes (and a close) that arrive meanwhile are held, not dropped, and go through when
    the rule's window closes or the rule is removed, as TCP delivers them when a network
    partition heals; a stream with a hole in the middle is something no network makes."""

    kind: Literal["blackhole"] = "blackhole"


class CloseAfter(_StreamAction):
    """Forward ``bytes`` more bytes in the direction (counted from the moment the rule comes
    into force on the connection), then close both sides cleanly (FIN). A chunk that
    crosses the limit is split: its head is forwarded, the rest never is. With both
    directions, each counts on its own and the first to reach the limit closes."""

    events: ClassVar[frozenset[str]] = frozenset({"data"})
    kind: Literal["close-after"] = "close-after"
    bytes: int = Field(ge=0)


class SlowClose(_StreamAction):
    """When a side closes (FIN), hold the close ``seconds`` before passing it on: the peer
    keeps a half-dead connection. Resets are never delayed."""

    events: ClassVar[frozenset[str]] = frozenset({"close"})
    kind: Literal["slow-close"] = "slow-close"
    seconds: float = Field(gt=0, le=86_400)


class _ConnectionAction(_Strict):
    """Acts on whole connections, so ``where.direction`` means nothing to it."""

    events: ClassVar[frozenset[str]] = PROXY_EVENT_KINDS
    reaches: ClassVar[frozenset[Reach]] = _ANY
    whole_connection: ClassVar[bool] = True


class ProxyReset(_ConnectionAction):
    """Abort with an RST (SO_LINGER 0) on both sides: the client sees 'connection reset by
    peer'. New connections are reset right after they are accepted, before the upstream
    is dialled; open ones the moment the rule's window opens (or the rule is added)."""

    kind: Literal["reset"] = "reset"


class Refuse(_ConnectionAction):
    """Refuse new connections: accept, then reset at once, without dialling the upstream.

    A real 'connection refused' (ECONNREFUSED) needs nobody listening on the port, which
    would refuse every connection and free the port for anyone to take. Here the kernel has
    already completed the handshake, so the client's connect succeeds and its first read
    or write fails with ECONNRESET; asyncpg, psycopg and redis clients report that as a
    failed connection attempt. Open connections are untouched."""

    events: ClassVar[frozenset[str]] = frozenset({"connect"})
    reaches: ClassVar[frozenset[Reach]] = frozenset({"new"})
    kind: Literal["refuse"] = "refuse"


class Cut(_ConnectionAction):
    """Reset every connection open at the moment the rule's window opens (or the rule is
    added, without ``from``). Connections made afterwards are untouched: pair it with
    ``refuse`` for a server that goes away and stays away."""

    events: ClassVar[frozenset[str]] = frozenset({"data", "close", "tick"})
    reaches: ClassVar[frozenset[Reach]] = frozenset({"open"})
    kind: Literal["cut"] = "cut"


ProxyAction = Annotated[
    Latency | Bandwidth | Blackhole | ProxyReset | CloseAfter | SlowClose | Refuse | Cut,
    Field(discriminator="kind"),
]


class ProxyFaultRule(_Strict):
    """A named proxy fault: which connections and streams it strikes, what it does, when.

    In the plan's listing, ``matched`` counts the connections that met the rule in its
    window and ``applied`` those it was put on (after first/every/probability).
    """

    id: RuleId = None
    where: ProxyWhere = ProxyWhere()
    what: ProxyAction
    when: When = When()

    @model_validator(mode="after")
    def _direction_fits(self) -> ProxyFaultRule:
        if self.what.whole_connection and self.where.direction is not None:
            raise ValueError(
                f"a {self.what.kind} acts on whole connections, both directions at once; "
                "remove where.direction"
            )
        return self

    def covers(self, event: ProxyEvent) -> bool:
        """Whether ``event`` is one this rule's action can act on and ``where`` selects."""
        return (
            event.kind in self.what.events
            and self.where.selects(event.connection)
            and (event.direction is None or self.where.toward(event.direction))
        )
