"""What the fault rules do to one proxied connection: pure logic, no sockets, no asyncio.

A ``Link`` is told what happens on a connection (it opened, a chunk arrived in a direction,
a side closed, the proxy looked at it because rules or windows changed) together with the
rules in force on it (``FaultPlan.in_force``) and the clock reading, and answers with
steps for the I/O to carry out: write these bytes in this direction at this time, pass a
close on at that time, end the connection. Times are the mock clock's seconds; the I/O waits
for them on the event loop, so the same logic runs on real and on virtual time.

Within a direction nothing overtakes: every step is scheduled no earlier than the one
before it, as bytes and the FIN on one TCP stream arrive in order whatever the delays.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mocks.faults import (
    DIRECTIONS,
    Bandwidth,
    Blackhole,
    CloseAfter,
    Cut,
    Direction,
    Latency,
    ProxyDecision,
    ProxyReset,
    Refuse,
    SlowClose,
)

HangupHow = Literal["fin", "reset", "cut", "refused"]

# Bandwidth sends a chunk in slices of this fraction of a second's worth of bytes, so a
# slow link trickles (as Toxiproxy's does) instead of delivering a big chunk in one go.
SLICE_SECONDS = 0.1

_STREAM_ACTIONS = (Latency, Bandwidth, Blackhole, CloseAfter, SlowClose)


@dataclass(frozen=True)
class Write:
    """Write ``data`` to the destination of ``direction`` at ``at``."""

    direction: Direction
    at: float
    data: bytes


@dataclass(frozen=True)
class PassClose:
    """Pass a side's close (FIN) on at ``at``: half-close the destination of ``direction``."""

    direction: Direction
    at: float


@dataclass(frozen=True)
class Hangup:
    """End the connection on both sides: ``fin`` cleanly, the others with an RST.

    ``after`` names the direction whose earlier steps must be carried out first (a clean
    close behind the last forwarded bytes); None means now, whatever is still queued.
    """

    how: HangupHow
    at: float
    after: Direction | None = None


Step = Write | PassClose | Hangup


@dataclass(frozen=True)
class Applied:
    """A rule acted on the connection for the first time (in ``direction``): journal it."""

    rule_id: str
    kind: str
    direction: Direction | None = None


@dataclass
class Outcome:
    """What one call asks of the I/O, in order, and the faults that acted."""

    steps: list[Step] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)

    @property
    def hangup(self) -> Hangup | None:
        return next((step for step in self.steps if isinstance(step, Hangup)), None)


@dataclass
class _Pipe:
    """One direction's state."""

    direction: Direction
    rng: random.Random
    last_at: float = float("-inf")  # when the latest step was scheduled: none goes earlier
    busy_until: float = float("-inf")  # bandwidth: when the link finishes what it was given
    held: list[bytes] = field(default_factory=list)  # blackholed bytes, in order
    held_size: int = 0  # their total, asked after every chunk by the I/O's flow control
    held_close: bool = False  # a close that arrived while blackholed
    ended: bool = False  # the source side closed: no more bytes come
    taken: dict[str, int] = field(default_factory=dict)  # close-after rule -> bytes counted
    noted: set[str] = field(default_factory=set)  # rules journaled on this direction
    received: int = 0


class Link:
    """The fault logic of one proxied connection, both directions.

    ``rngs`` gives each direction its own seeded RNG (``FaultPlan.derived_rng``), so the
    jitter drawn for a chunk depends on that stream's chunks alone.
    """

    def __init__(self, rngs: Mapping[Direction, random.Random]) -> None:
        self._pipes = {direction: _Pipe(direction, rngs[direction]) for direction in DIRECTIONS}
        self.closed = False

    def held_bytes(self, direction: Direction) -> int:
        """Bytes a blackhole holds back in ``direction``, for the I/O's flow control."""
        return self._pipes[direction].held_size

    def received(self, direction: Direction) -> int:
        return self._pipes[direction].received

    def open(self, now: float, decisions: Sequence[ProxyDecision]) -> Outcome:
        """The connection was accepted: refuse or reset it now, or let it through."""
        out = Outcome()
        for decision in decisions:
            if isinstance(decision.action, Refuse | ProxyReset):
                how: HangupHow = "refused" if isinstance(decision.action, Refuse) else "reset"
                self._hang_up(out, decision, how, now)
                break
        return out

    def receive(
        self, direction: Direction, data: bytes, now: float, decisions: Sequence[ProxyDecision]
    ) -> Outcome:
        """A chunk arrived from the source side of ``direction``."""
        out = Outcome()
        if self._connection_faults(out, now, decisions):
            return out
        pipe = self._pipes[direction]
        if pipe.ended or not data:
            return out
        pipe.received += len(data)
        toxics = _toward(direction, decisions)
        if self._blackholed(out, pipe, toxics):
            pipe.held.append(data)
            pipe.held_size += len(data)
            return out
        if pipe.held:  # a blackhole ended since: what it held goes first
            data = self._take_held(pipe) + data
        self._forward(out, pipe, data, now, toxics)
        return out

    def end(self, direction: Direction, now: float, decisions: Sequence[ProxyDecision]) -> Outcome:
        """The source side of ``direction`` closed (FIN): pass the close on, in order."""
        out = Outcome()
        if self._connection_faults(out, now, decisions):
            return out
        pipe = self._pipes[direction]
        if pipe.ended:
            return out
        pipe.ended = True
        toxics = _toward(direction, decisions)
        if self._blackholed(out, pipe, toxics):
            pipe.held_close = True
            return out
        self._release(out, pipe, now, toxics)
        if not self.closed:
            self._pass_close(out, pipe, now, toxics)
        return out

    def tick(self, now: float, decisions: Sequence[ProxyDecision]) -> Outcome:
        """The proxy looks at the connection without traffic (a window opened or closed,
        rules changed): reset or cut it, or release what a lifted blackhole held."""
        out = Outcome()
        if self._connection_faults(out, now, decisions):
            return out
        for pipe in self._pipes.values():
            toxics = _toward(pipe.direction, decisions)
            if self._blackholed(out, pipe, toxics):
                continue
            self._release(out, pipe, now, toxics)
            if pipe.held_close and not self.closed:
                pipe.held_close = False
                self._pass_close(out, pipe, now, toxics)
        return out

    def _connection_faults(
        self, out: Outcome, now: float, decisions: Sequence[ProxyDecision]
    ) -> bool:
        """Reset or cut the connection if such a rule is in force; True if it is over."""
        if self.closed:
            return True
        for decision in decisions:
            if isinstance(decision.action, ProxyReset):
                self._hang_up(out, decision, "reset", now)
            elif isinstance(decision.action, Cut):
                self._hang_up(out, decision, "cut", now)
            if self.closed:
                return True
        return False

    def _hang_up(self, out: Outcome, decision: ProxyDecision, how: HangupHow, now: float) -> None:
        out.applied.append(Applied(decision.rule_id, decision.kind))
        out.steps.append(Hangup(how, now))
        self.closed = True

    def _blackholed(self, out: Outcome, pipe: _Pipe, toxics: list[ProxyDecision]) -> bool:
        holes = [decision for decision in toxics if isinstance(decision.action, Blackhole)]
        for decision in holes:
            self._note(out, pipe, decision)
        return bool(holes)

    def _release(self, out: Outcome, pipe: _Pipe, now: float, toxics: list[ProxyDecision]) -> None:
        if pipe.held:
            self._forward(out, pipe, self._take_held(pipe), now, toxics)

    def _forward(
        self, out: Outcome, pipe: _Pipe, data: bytes, now: float, toxics: list[ProxyDecision]
    ) -> None:
        """Schedule ``data`` through latency, then bandwidth; close-after cuts it short."""
        limiter: ProxyDecision | None = None
        left = len(data) + 1
        for decision in toxics:
            if isinstance(decision.action, CloseAfter):
                taken = pipe.taken.setdefault(decision.rule_id, 0)
                room = max(0, decision.action.bytes - taken)
                if room < left:
                    limiter, left = decision, room
        if limiter is not None and left <= len(data):
            data = data[:left]  # the head is forwarded, the rest never is
        for decision in toxics:
            if isinstance(decision.action, CloseAfter):
                pipe.taken[decision.rule_id] += len(data)
        if data:
            self._schedule(out, pipe, data, now, toxics)
        if limiter is not None and left <= len(data):
            self._note(out, pipe, limiter)
            out.steps.append(Hangup("fin", max(now, pipe.last_at), after=pipe.direction))
            self.closed = True

    def _schedule(
        self, out: Outcome, pipe: _Pipe, data: bytes, now: float, toxics: list[ProxyDecision]
    ) -> None:
        ready = max(now + self._latency(out, pipe, toxics, jitter=True), pipe.last_at)
        rates = [
            (decision, decision.action.bytes_per_second)
            for decision in toxics
            if isinstance(decision.action, Bandwidth)
        ]
        if not rates:
            out.steps.append(Write(pipe.direction, ready, data))
            pipe.last_at = ready
            return
        narrowest, rate = min(rates, key=lambda pair: pair[1])
        self._note(out, pipe, narrowest)
        size = max(1, int(rate * SLICE_SECONDS))
        sent = max(ready, pipe.busy_until)
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            sent += len(piece) / rate  # a slice arrives when its last byte is through
            out.steps.append(Write(pipe.direction, sent, piece))
        pipe.busy_until = pipe.last_at = sent

    def _latency(
        self, out: Outcome, pipe: _Pipe, toxics: list[ProxyDecision], *, jitter: bool
    ) -> float:
        delay = 0.0
        for decision in toxics:
            action = decision.action
            if isinstance(action, Latency):
                self._note(out, pipe, decision)
                drawn = pipe.rng.uniform(-action.jitter, action.jitter) if jitter else 0.0
                delay += max(0.0, action.seconds + drawn)
        return delay

    def _pass_close(
        self, out: Outcome, pipe: _Pipe, now: float, toxics: list[ProxyDecision]
    ) -> None:
        # A FIN takes the same delayed path as the bytes (without a jitter draw, so closing
        # doesn't shift the chunks' draws), then waits out any slow-close.
        at = max(now + self._latency(out, pipe, toxics, jitter=False), pipe.last_at)
        for decision in toxics:
            if isinstance(decision.action, SlowClose):
                self._note(out, pipe, decision)
                at += decision.action.seconds
        out.steps.append(PassClose(pipe.direction, at))
        pipe.last_at = at

    @staticmethod
    def _take_held(pipe: _Pipe) -> bytes:
        data = b"".join(pipe.held)
        pipe.held.clear()
        pipe.held_size = 0
        return data

    @staticmethod
    def _note(out: Outcome, pipe: _Pipe, decision: ProxyDecision) -> None:
        if decision.rule_id not in pipe.noted:
            pipe.noted.add(decision.rule_id)
            out.applied.append(Applied(decision.rule_id, decision.kind, pipe.direction))


def _toward(direction: Direction, decisions: Sequence[ProxyDecision]) -> list[ProxyDecision]:
    """The stream rules in force on ``direction``."""
    return [
        decision
        for decision in decisions
        if isinstance(decision.action, _STREAM_ACTIONS) and decision.direction in (None, direction)
    ]
