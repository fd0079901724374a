"""``-k`` expressions, as pytest reads them: words joined by ``and``, ``or``, ``not``, parentheses.

A word matches when it is a case-insensitive substring of the scenario's name, one of its
tags or its file path: ``-k "storm and not real"``.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


class SelectionError(ValueError):
    """The ``-k`` expression can't be parsed; the message shows where."""


def matches(expression: str, haystack: str) -> bool:
    """Whether ``haystack`` (name, tags and path, joined) satisfies ``expression``."""
    tokens = [m.group(1) for m in _TOKEN.finditer(expression)]
    if not tokens:
        return True
    parser = _Parser(tokens, haystack.lower(), expression)
    result = parser.disjunction()
    if parser.position != len(tokens):
        raise SelectionError(
            f"-k {expression!r}: unexpected {tokens[parser.position]!r}; use words with "
            "and, or, not and parentheses"
        )
    return result


class _Parser:
    def __init__(self, tokens: list[str], haystack: str, expression: str) -> None:
        self.tokens = tokens
        self.haystack = haystack
        self.expression = expression
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise SelectionError(f"-k {self.expression!r} ends too early")
        self.position += 1
        return token

    def disjunction(self) -> bool:
        result = self.conjunction()
        while self._peek() == "or":
            self._take()
            result = self.conjunction() or result
        return result

    def conjunction(self) -> bool:
        result = self.negation()
        while self._peek() == "and":
            self._take()
            result = self.negation() and result
        return result

    def negation(self) -> bool:
        if self._peek() == "not":
            self._take()
            return not self.negation()
        token = self._take()
        if token == "(":
            result = self.disjunction()
            if self._take() != ")":
                raise SelectionError(f"-k {self.expression!r}: a '(' is never closed")
            return result
        if token in (")", "and", "or"):
            raise SelectionError(f"-k {self.expression!r}: unexpected {token!r}")
        return token.lower() in self.haystack
