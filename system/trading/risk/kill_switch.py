"""``KillSwitch``: one switch that stops every order, engaged by a person or by a guard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from system.trading.risk.verdict import ALLOWED, Guard, Halt, Reason, Verdict, refused_while_halted


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    """One change of the switch, for the audit trail: who did what, when, and which halt.

    ``halt`` is the halt that was engaged, or, for a release, the one that was released.
    """

    action: Literal["engaged", "released"]
    at: float
    by: str
    halt: Halt


class KillSwitch:
    """While engaged, every order is refused (``check``), whatever the other guards say.

    ``KillSwitch(halt)`` starts engaged, for a halt restored after a restart: a halt must
    outlive the process that saw it. ``history`` records each engage and release in order.
    """

    def __init__(self, halt: Halt | None = None) -> None:
        self._halt = halt
        self._history: list[SwitchEvent] = []

    @property
    def engaged(self) -> bool:
        return self._halt is not None

    @property
    def halt(self) -> Halt | None:
        """The halt in force, or None."""
        return self._halt

    @property
    def history(self) -> tuple[SwitchEvent, ...]:
        return tuple(self._history)

    def engage(self, reason: str, detail: str, *, at: float, automatic: bool, by: str) -> bool:
        """Stops trading for ``reason``; False (and nothing changes) if already engaged.

        Engaging twice keeps the first halt: it is the cause, and what follows (a loss
        limit breached by the trades still closing, a stop condition tripping) is its
        consequence. A release ends the halt whatever engaged it.
        """
        if self._halt is not None:
            return False
        self._halt = Halt(reason=reason, detail=detail, at=at, automatic=automatic)
        self._history.append(SwitchEvent(action="engaged", at=at, by=by, halt=self._halt))
        return True

    def release(self, *, at: float, by: str) -> bool:
        """Lets trading resume; False (and no history) if the switch was not engaged."""
        if self._halt is None:
            return False
        self._history.append(SwitchEvent(action="released", at=at, by=by, halt=self._halt))
        self._halt = None
        return True

    def check(self) -> Verdict:
        """Refuses everything while engaged."""
        if self._halt is None:
            return ALLOWED
        # The reason a caller matches on is the switch itself; the halt's own reason (which
        # guard or person engaged it) is in the detail.
        return refused_while_halted(Guard.KILL_SWITCH, self._halt, reason=Reason.KILL_SWITCH)

    def __repr__(self) -> str:
        return f"KillSwitch(halt={self._halt!r})"
