"""Load shapes: how many users over time. ``from_env()`` picks one by ``SQUALL_LOAD_SHAPE``.

- ``ramp`` — from none to the peak in even steps over the first 60 % of the run, then held:
  where does latency bend?
- ``spike`` — a fifth of the peak, the full peak suddenly for the middle 30 %, then back:
  does the system shed the burst and recover?
- ``soak`` — half the peak within the first 10 %, held to the end: does anything leak or
  drift over a long run?

``SQUALL_LOAD_USERS`` is the peak (default 20) and ``SQUALL_LOAD_DURATION_S`` the run's
length (default 60); the run stops at the end of the shape. ``plan(shape, users, duration)``
is the pure schedule, so the shapes are tested without Locust (nor its gevent patching).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from locust import LoadTestShape

# (users, spawn rate per second) at a second of the run; None once it is over.
Step = tuple[int, float] | None
Plan = Callable[[float], Step]

SHAPES = ("ramp", "spike", "soak")
_RAMP_STEPS = 5


class LoadShapeError(ValueError):
    """A shape setting is wrong; the text names the variable and the valid values."""


def plan(shape: str, users: int, duration_s: float) -> Plan:
    """The schedule of ``shape`` for a peak of ``users`` over ``duration_s`` seconds."""
    if shape not in SHAPES:
        raise LoadShapeError(
            f"SQUALL_LOAD_SHAPE={shape!r} is not a load shape: use one of {', '.join(SHAPES)}"
        )
    if users < 1 or duration_s <= 0:
        raise LoadShapeError("a load shape needs at least 1 user and a positive duration")
    fast = float(max(users, 1))  # users started per second when a shape jumps

    def ramp(t: float) -> Step:
        if t >= duration_s:
            return None
        rise = 0.6 * duration_s
        step = min(_RAMP_STEPS, math.floor(t / rise * _RAMP_STEPS) + 1)
        return max(1, round(users * step / _RAMP_STEPS)), fast

    def spike(t: float) -> Step:
        if t >= duration_s:
            return None
        base = max(1, users // 5)
        return (users, fast) if 0.35 * duration_s <= t < 0.65 * duration_s else (base, fast)

    def soak(t: float) -> Step:
        if t >= duration_s:
            return None
        return max(1, users // 2), max(1.0, users / 2 / max(0.1 * duration_s, 1.0))

    return {"ramp": ramp, "spike": spike, "soak": soak}[shape]


def settings(environ: Mapping[str, str] | None = None) -> tuple[str, int, float] | None:
    """(shape, peak users, duration) from the environment; None without SQUALL_LOAD_SHAPE."""
    env = os.environ if environ is None else environ
    shape = env.get("SQUALL_LOAD_SHAPE", "").strip()
    if not shape:
        return None
    return shape, _number(env, "SQUALL_LOAD_USERS", 20), _number(env, "SQUALL_LOAD_DURATION_S", 60)


def _number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise LoadShapeError(f"{name}={raw!r} must be a whole number of at least 1")
    return int(raw)


def from_env(environ: Mapping[str, str] | None = None) -> type[LoadTestShape] | None:
    """The shape class the environment asks for (for the locustfile to expose), or None."""
    chosen = settings(environ)
    if chosen is None:
        return None
    shape, users, duration = chosen
    schedule = plan(shape, users, duration)
    # Imported here, not above: importing locust monkey-patches the whole process for gevent,
    # which the tests of the schedules above must not suffer.
    from locust import LoadTestShape

    class SquallShape(LoadTestShape):
        __doc__ = f"{shape}: peak {users} users over {duration} s"

        def tick(self) -> Step:
            return schedule(self.get_run_time())

    return SquallShape
