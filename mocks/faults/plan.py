"""The active rules of one mock and the decision they make for each request, feed event or
proxied connection."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from mocks.faults.feed import FeedAction, FeedEvent, FeedFaultRule
from mocks.faults.model import Delay, FaultAction, FaultRule
from mocks.faults.proxy import Direction, ProxyAction, ProxyEvent, ProxyFaultRule

# A mock holds HTTP rules (broker), feed rules (feed) or proxy rules (TCP proxy); one plan
# decides for any of them.
AnyRule = FaultRule | FeedFaultRule | ProxyFaultRule


@dataclass(frozen=True)
class Request:
    """What the fault model may look at: no sockets, no framework objects."""

    method: str
    path: str
    tr_id: str | None = None
    kind: str = "other"  # what the request is, in Squall's terms (mocks.vocabulary)


@dataclass(frozen=True)
class Decision:
    """A rule fired: apply ``action``; ``delay`` is the drawn delay for Delay actions."""

    rule_id: str
    action: FaultAction | FeedAction | ProxyAction
    delay: float = 0.0

    @property
    def kind(self) -> str:
        return self.action.kind

    @property
    def label(self) -> str:
        """How journals name the fault: "<rule id>:<kind>"."""
        return f"{self.rule_id}:{self.kind}"


@dataclass(frozen=True)
class ProxyDecision(Decision):
    """A proxy rule in force on a connection; ``direction`` is the stream its ``where``
    names (None: both)."""

    direction: Direction | None = None


@dataclass
class _Active:
    rule: AnyRule
    rule_id: str
    matched: int = 0  # requests (or feed events) in scope and in window, faulted or not
    applied: int = 0
    # Proxy rules only: each connection that met the rule -> whether it was put on it.
    met: dict[int, bool] = field(default_factory=dict)


@dataclass
class FaultPlan:
    """Rules in the order they were added; the first that fires decides.

    The RNG is seeded once per plan and drawn from only when a probability or a random
    delay is consulted, so a seeded scenario faults the same requests on every run.

    Proxy rules are decided per connection (``in_force``), with draws from RNGs derived
    from the seed, the rule and the connection (``derived_rng``): on real sockets, the
    interleaving of chunks across connections differs run to run, and must not change
    which connections a seed faults.
    """

    seed: int = 0
    _rules: list[_Active] = field(default_factory=list)
    _rng: random.Random = field(init=False)
    _next_id: int = 1
    _watchers: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"squall-faults:{self.seed}")

    def add(self, rule: AnyRule, now: float) -> AnyRule:
        """Add ``rule``, pinning relative windows to ``now``; returns the rule as stored."""
        rule_id = rule.id or f"rule-{self._next_id}"
        self._next_id += 1
        if any(active.rule_id == rule_id for active in self._rules):
            raise ValueError(f"a fault rule with id {rule_id!r} already exists; remove it first")
        stored = rule.model_copy(update={"id": rule_id, "when": rule.when.resolved(now)})
        self._rules.append(_Active(stored, rule_id))
        self._changed()
        return stored

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [active for active in self._rules if active.rule_id != rule_id]
        if len(self._rules) != before:
            self._changed()
        return len(self._rules) != before

    def clear(self) -> None:
        self._rules.clear()
        self._changed()

    def reset(self) -> None:
        """Forget rules and reseed, as at start: a reset mock replays the same faults."""
        self._rules.clear()
        self._next_id = 1
        self._rng = random.Random(f"squall-faults:{self.seed}")
        self._changed()

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever rules are added or removed: the proxy applies a new
        cut or reset to open connections at once, without traffic to trigger it."""
        self._watchers.append(callback)

    def _changed(self) -> None:
        for callback in self._watchers:
            callback()

    def derived_rng(self, stream: str) -> random.Random:
        """An RNG of its own for one stream of draws (a proxy connection's direction),
        seeded from the plan's seed: draws on one stream never shift another's."""
        return random.Random(f"squall-faults:{self.seed}:{stream}")

    def rules(self) -> list[dict[str, object]]:
        return [
            {
                **active.rule.model_dump(mode="json", by_alias=True, exclude_none=True),
                "matched": active.matched,
                "applied": active.applied,
            }
            for active in self._rules
        ]

    def decide(self, subject: Request | FeedEvent | ProxyEvent, now: float) -> Decision | None:
        if isinstance(subject, ProxyEvent):
            # Several proxy rules act at once (latency one way, bandwidth the other); the
            # proxy asks in_force for all of them, this answers with the first.
            covering = (
                decision
                for decision in self.in_force(subject, now)
                if _covers(self._rule(decision.rule_id), subject)
            )
            return next(covering, None)
        for active in self._rules:
            rule = active.rule
            if not _covers(rule, subject):
                continue
            when = rule.when
            if not when.in_window(now):
                continue
            active.matched += 1
            if when.first is not None and active.matched > when.first:
                continue
            if when.every is not None and active.matched % when.every:
                continue
            if when.probability is not None and self._rng.random() >= when.probability:
                continue
            active.applied += 1
            delay = rule.what.sample(self._rng) if isinstance(rule.what, Delay) else 0.0
            return Decision(active.rule_id, rule.what, delay)
        return None

    def in_force(self, event: ProxyEvent, now: float) -> list[ProxyDecision]:
        """Every proxy rule in force on ``event.connection`` now, in the order added, whatever
        stream or event it acts on (the proxy sorts that out).

        A connection meets each rule once, at its first event inside the rule's window: then
        first/every count it and probability draws for it, and the answer sticks. A connect
        meets only rules that reach new connections (not cut), any later event only rules
        that reach open ones (not refuse); a rule passes the others by without counting them.
        """
        decisions = []
        for active in self._rules:
            rule = active.rule
            if not isinstance(rule, ProxyFaultRule) or not rule.where.selects(event.connection):
                continue
            if not rule.when.in_window(now):
                continue
            chosen = active.met.get(event.connection)
            if chosen is None:
                chosen = self._meet(active, rule, event)
            if chosen:
                decisions.append(
                    ProxyDecision(active.rule_id, rule.what, direction=rule.where.direction)
                )
        return decisions

    def _meet(self, active: _Active, rule: ProxyFaultRule, event: ProxyEvent) -> bool:
        reach = "new" if event.kind == "connect" else "open"
        chosen = False
        if reach in rule.what.reaches:
            active.matched += 1
            when = rule.when
            chosen = (
                (when.first is None or active.matched <= when.first)
                and (when.every is None or active.matched % when.every == 0)
                and (
                    when.probability is None
                    or self.derived_rng(f"{active.rule_id}:{event.connection}").random()
                    < when.probability
                )
            )
            if chosen:
                active.applied += 1
        active.met[event.connection] = chosen
        return chosen

    def forget(self, connection: int) -> None:
        """A proxied connection ended: drop what the rules remember of it."""
        for active in self._rules:
            active.met.pop(connection, None)

    def next_boundary(self, now: float) -> float | None:
        """The next clock reading after ``now`` at which a proxy rule's window opens or
        closes: the proxy looks at its open connections then."""
        edges = [
            edge
            for active in self._rules
            if isinstance(active.rule, ProxyFaultRule)
            for edge in (active.rule.when.from_, active.rule.when.until)
            if edge is not None and edge > now
        ]
        return min(edges, default=None)

    def _rule(self, rule_id: str) -> AnyRule:
        return next(active.rule for active in self._rules if active.rule_id == rule_id)


def _covers(rule: AnyRule, subject: Request | FeedEvent | ProxyEvent) -> bool:
    """HTTP rules see requests, feed rules feed events, proxy rules proxy events; none sees
    another's."""
    if isinstance(rule, FaultRule):
        return isinstance(subject, Request) and rule.where.matches(
            subject.method, subject.path, subject.tr_id, subject.kind
        )
    if isinstance(rule, ProxyFaultRule):
        return isinstance(subject, ProxyEvent) and rule.covers(subject)
    return isinstance(subject, FeedEvent) and rule.covers(subject)
