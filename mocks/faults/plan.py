"""The active rules of one mock and the decision they make for each request or feed event."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mocks.faults.feed import FeedAction, FeedEvent, FeedFaultRule
from mocks.faults.model import Delay, FaultAction, FaultRule

# A mock holds HTTP rules (broker) or feed rules (feed); one plan decides for either.
AnyRule = FaultRule | FeedFaultRule


@dataclass(frozen=True)
class Request:
    """What the fault model may look at: no sockets, no framework objects."""

    method: str
    path: str
    tr_id: str | None = None


@dataclass(frozen=True)
class Decision:
    """A rule fired: apply ``action``; ``delay`` is the drawn delay for Delay actions."""

    rule_id: str
    action: FaultAction | FeedAction
    delay: float = 0.0

    @property
    def kind(self) -> str:
        return self.action.kind


@dataclass
class _Active:
    rule: AnyRule
    rule_id: str
    matched: int = 0  # requests (or feed events) in scope and in window, faulted or not
    applied: int = 0


@dataclass
class FaultPlan:
    """Rules in the order they were added; the first that fires decides.

    The RNG is seeded once per plan and drawn from only when a probability or a random
    delay is consulted, so a seeded scenario faults the same requests on every run.
    """

    seed: int = 0
    _rules: list[_Active] = field(default_factory=list)
    _rng: random.Random = field(init=False)
    _next_id: int = 1

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
        return stored

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [active for active in self._rules if active.rule_id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        self._rules.clear()

    def reset(self) -> None:
        """Forget rules and reseed, as at start: a reset mock replays the same faults."""
        self._rules.clear()
        self._next_id = 1
        self._rng = random.Random(f"squall-faults:{self.seed}")

    def rules(self) -> list[dict[str, object]]:
        return [
            {
                **active.rule.model_dump(mode="json", by_alias=True, exclude_none=True),
                "matched": active.matched,
                "applied": active.applied,
            }
            for active in self._rules
        ]

    def decide(self, subject: Request | FeedEvent, now: float) -> Decision | None:
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


def _covers(rule: AnyRule, subject: Request | FeedEvent) -> bool:
    """HTTP rules see requests, feed rules see feed events; neither sees the other's."""
    if isinstance(rule, FaultRule):
        return isinstance(subject, Request) and rule.where.matches(
            subject.method, subject.path, subject.tr_id
        )
    return isinstance(subject, FeedEvent) and rule.covers(subject)
