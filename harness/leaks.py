"""A run's secrets, and where they must never show up.

A scenario's run holds secrets the way a production deployment does: the appsecret the
system signs in with, the access tokens and approval keys the broker issues, the gateway's
operator token, the database password. None may appear in what the run leaves behind for
people to read: log lines, the mocks' journals, the verdicts and timeline of its result,
and the report files made from them. ``Secrets`` finds them in text, by kind and count,
and never repeats one: a finding names the kind ("an access token") and the place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Shorter strings are not searched for: a four-character "secret" would be found by chance
# in any report. Every real secret here is far longer (tokens are hundreds of characters).
MIN_SECRET_CHARS = 12


@dataclass
class Secrets:
    """Secret values by what they are (``"access token"``, ``"database password"``...)."""

    by_kind: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, values: Iterable[str | None]) -> None:
        kept = {value for value in values if value and len(value) >= MIN_SECRET_CHARS}
        if kept:
            self.by_kind.setdefault(kind, set()).update(kept)

    def update(self, other: Secrets) -> None:
        for kind, values in other.by_kind.items():
            self.add(kind, values)

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def kinds(self) -> str:
        """What is searched for, for a verdict: kinds and counts, never values."""
        return ", ".join(f"{kind} ×{len(values)}" for kind, values in sorted(self.by_kind.items()))

    def found_in(self, text: str) -> dict[str, int]:
        """How many times secrets of each kind occur in ``text``."""
        found: dict[str, int] = {}
        for kind, values in self.by_kind.items():
            count = sum(text.count(value) for value in values)
            if count:
                found[kind] = count
        return found

    def leaks(self, places: Mapping[str, str]) -> list[str]:
        """One line per place (a name and its text) that holds a secret: "the journal holds
        an access token (3 times)"."""
        return [
            f"{place} holds {kind} ({count} time(s))"
            for place, text in places.items()
            for kind, count in sorted(self.found_in(text).items())
        ]

    def leaks_in_files(self, paths: Iterable[Path]) -> list[str]:
        """``path:line: holds <kind>`` for every line of the files that holds a secret (a
        file that was not written is skipped)."""
        found: list[str] = []
        for path in paths:
            if not path.exists():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if not self.found_in(text):
                continue  # the usual case: one pass over the file, not one per line
            for number, line in enumerate(text.splitlines(), start=1):
                for kind in sorted(self.found_in(line)):
                    found.append(f"{path}:{number}: holds {kind}")
        return found


# Every secret of every run in this process, for the report files written after the runs
# (``squall run``'s and the pytest plugin's). Held in memory only: writing them down anywhere
# would be the leak this exists to catch.
SEEN = Secrets()
