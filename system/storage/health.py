"""How well the system can reach its database right now, and why: ``StorageHealth``.

``HealthMonitor`` holds no connections and reads no clock (websockets' sans-I/O style): the
pool manager tells it what happened, at which loop time, and it answers with the verdict.
The rules, worst first:

**unhealthy** — the database cannot be reached: the last connection attempt or probe
failed to connect (refused, timed out, the server shutting down). This holds until a
connection succeeds again; the pool manager probes with backoff meanwhile. Also before
``start()`` and after ``close()``.

**degraded** — the database answers, but not well:
  - the pool is saturated: callers are waiting for a connection, or
  - an operation failed within the last ``error_window_s`` (a lost connection, a timed-out
    query, an idle connection that failed validation) — including the outage just ended.

**healthy** — none of the above.

A SQL error (a constraint violation, a syntax error) is not a failure here: the server was
reachable and answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from system.health import HealthState

# The system's three health states (``system.health``), under the name storage has used.
StorageState = HealthState


@dataclass(frozen=True)
class PoolStats:
    """The pool's occupancy at one moment.

    ``total`` connections are open; ``active`` of them are handed out, ``idle`` are free;
    ``waiting`` callers queue for one because ``max_size`` are in use.
    """

    total: int
    active: int
    idle: int
    waiting: int
    max_size: int

    def describe(self) -> str:
        """``5 total, 5 active, 12 waiting``: the part of messages that shows the pool."""
        return f"{self.total} total, {self.active} active, {self.waiting} waiting"


@dataclass(frozen=True)
class StorageHealth:
    """A verdict, why (empty when healthy), and since when (loop time) it has held."""

    state: StorageState
    reason: str
    since: float


class HealthMonitor:
    """The rules in the module docstring, fed with events; every method takes loop time.

    Each event method returns the new ``StorageHealth`` when the *state* changed (so the
    caller can tell whoever watches), else ``None``; ``health`` is always current as of
    the last call. Call ``refresh(now)`` at ``next_change_at()``: a degraded verdict
    caused by an old failure expires without any event.
    """

    def __init__(self, *, error_window_s: float, now: float) -> None:
        if error_window_s <= 0:
            raise ValueError(f"HealthMonitor needs error_window_s > 0, got {error_window_s}")
        self.error_window_s = error_window_s
        self._lifecycle: str | None = "the pool is not started"
        self._unreachable: str | None = None
        self._last_failure: tuple[float, str] | None = None  # (loop time, what)
        self._waiting = 0
        self._health = StorageHealth("unhealthy", self._lifecycle, now)

    @property
    def health(self) -> StorageHealth:
        return self._health

    @property
    def server_unreachable(self) -> bool:
        """The last connection attempt failed to reach the server, and none has worked since."""
        return self.unreachable_because is not None

    @property
    def unreachable_because(self) -> str | None:
        """How the last attempt to reach the server failed, while it is taken to be down."""
        return self._unreachable if self._lifecycle is None else None

    def started(self, now: float) -> StorageHealth | None:
        """The pool opened its first connections."""
        self._lifecycle = None
        self._unreachable = None
        return self._judge(now)

    def closed(self, now: float) -> StorageHealth | None:
        """The pool was closed; nothing can be done with it any more."""
        self._lifecycle = "the pool is closed"
        return self._judge(now)

    def succeeded(self, now: float) -> StorageHealth | None:
        """A connection was opened, a probe or an operation worked: the server is reachable."""
        self._unreachable = None
        return self._judge(now)

    def failed(self, now: float, what: str) -> StorageHealth | None:
        """An operation failed although the server may be reachable (``what`` says how)."""
        self._last_failure = (now, what)
        return self._judge(now)

    def unreachable(self, now: float, what: str) -> StorageHealth | None:
        """Connecting failed: refused, timed out, or the server is shutting down."""
        self._unreachable = what
        self._last_failure = (now, what)
        return self._judge(now)

    def saturation(self, now: float, waiting: int) -> StorageHealth | None:
        """``waiting`` callers now queue for a connection (0: the pool has room)."""
        self._waiting = waiting
        return self._judge(now)

    def refresh(self, now: float) -> StorageHealth | None:
        """Re-judge at ``now``: an old failure may have left the window."""
        return self._judge(now)

    def next_change_at(self) -> float | None:
        """When ``refresh`` may change the verdict without any event (None: not by itself)."""
        if self._health.state != "degraded" or self._waiting or self._last_failure is None:
            return None
        return self._last_failure[0] + self.error_window_s

    def _judge(self, now: float) -> StorageHealth | None:
        state, reason = self._verdict(now)
        changed = state != self._health.state
        since = now if changed else self._health.since
        self._health = StorageHealth(state, reason, since)
        return self._health if changed else None

    def _verdict(self, now: float) -> tuple[StorageState, str]:
        if self._lifecycle is not None:
            return "unhealthy", self._lifecycle
        if self._unreachable is not None:
            return "unhealthy", f"cannot connect to the database: {self._unreachable}"
        if self._waiting:
            callers = "caller is" if self._waiting == 1 else "callers are"
            return "degraded", f"pool saturated: {self._waiting} {callers} waiting for a connection"
        if self._last_failure is not None:
            at, what = self._last_failure
            # The same sum as ``next_change_at``: at that moment the failure has left.
            if now < at + self.error_window_s:
                return "degraded", f"{what} {now - at:.1f} s ago"
        return "healthy", ""
