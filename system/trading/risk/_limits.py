"""Checks on the guards' configuration, so a bad limit fails at start-up, not at a trade."""

from __future__ import annotations

import math


def positive_or_none(name: str, value: int | None) -> int | None:
    """``value`` if it is None (no limit) or a positive int, else ``ValueError``."""
    if value is None:
        return None
    return _positive(name, value, " (or None for no limit)")


def positive(name: str, value: int) -> int:
    """``value`` if it is a positive int, else ``ValueError``."""
    return _positive(name, value, "")


def _positive(name: str, value: int, alternative: str) -> int:
    # bool is an int; a limit of True is a configuration mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive whole number{alternative}; got {value!r}")
    return value


def non_negative(name: str, value: int) -> int:
    """``value`` if it is an int >= 0, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0; got {value!r}")
    return value


def positive_seconds_or_none(name: str, value: float | None) -> float | None:
    """``value`` if it is None or a finite number of seconds > 0, else ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0 (or None); got {value!r}")
    if math.isinf(value):
        raise ValueError(f"{name} must be finite; use None for no limit")
    return float(value)
