"""The scenario language: what a QA engineer writes, as strict pydantic models.

A scenario is a *timeline* of steps (faults, actions, workloads) at given seconds, and what
must hold over what happened: *expectations*, a *steady state* before the first fault and
after the last, and *invariants* over the whole history. A *start-up* scenario (``start``)
has no timeline: it starts one server as its user would, into a condition that must make it
refuse (a taken port, a database it cannot use), and judges how it exits and what it says.
Every model forbids unknown keys, so a typo is an error that names the valid keys, never a
silently ignored line.

The reference for every key, with examples, is ``docs/scenarios.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from mocks.broker import codes as broker_codes
from mocks.broker.config import Api, Profile
from mocks.broker.kiwoom import codes as kiwoom_codes
from mocks.faults.feed import FeedAction, FeedWhere
from mocks.faults.model import Error, FaultAction, When, Where
from mocks.faults.proxy import (
    Bandwidth,
    Blackhole,
    CloseAfter,
    Cut,
    Latency,
    ProxyReset,
    ProxyWhere,
    Refuse,
    SlowClose,
)
from mocks.fx import PAIR_NAMES as FX_PAIRS
from mocks.market_events import KRX_VI_SECONDS as VI_SECONDS
from mocks.vocabulary import MEANINGS, RequestKind
from mocks.webhook import WebhookAction
from system.broker.errors import BrokerError
from system.gateway.metrics import metric_names as gateway_metric_names
from system.market import metric_names as feed_metric_names
from system.market import rate_metric_names
from system.service import metric_names as service_metric_names
from system.storage import metric_names as storage_metric_names
from system.trading.alerts import metric_names as alert_metric_names
from system.trading.desk import metric_names as desk_metric_names
from system.trading.risk import Reason

Part = Literal["broker", "feed", "gateway", "database", "trading", "alerts", "redis"]
Invariant = Literal[
    "orders-not-duplicated",
    "unknown-orders-reconciled",
    "ticks-match-market",
    "writes-not-lost",
    "groups-not-half-written",
    "secrets-not-printed",
    "orders-placed-once",
    "orders-not-lost",
    "limits-never-exceeded",
    "no-orders-while-halted",
]
INVARIANTS: tuple[str, ...] = get_args(Invariant)
# Invariants about the realtime feed; "all" includes them only when the feed is needed.
FEED_INVARIANTS = ("ticks-match-market",)
# Invariants over what the system stored; "all" includes them only with the database.
DATABASE_INVARIANTS = ("writes-not-lost", "groups-not-half-written")
# What a start-up scenario checks: what the started server printed. Every other scenario
# checks it too, over its logs, journals and results.
START_INVARIANTS = ("secrets-not-printed",)
# History checks of the trading desk's run; "all" includes them only with ``trading``.
TRADING_INVARIANTS = (
    "orders-placed-once",
    "orders-not-lost",
    "limits-never-exceeded",
    "no-orders-while-halted",
)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}$"
_CODE = r"^[0-9]{6}$"


def metric_names() -> tuple[str, ...]:
    """Every metric a scenario can read: the trading service's, the feed client's, the rate
    feed client's, the gateway's, the storage's, the trading desk's and its alert
    notifier's, as the harness samples them once a simulated second."""
    return (
        *service_metric_names(),
        *feed_metric_names(),
        *rate_metric_names(),
        *gateway_metric_names(),
        *storage_metric_names(),
        *desk_metric_names(),
        *alert_metric_names(),
    )


class _Strict(BaseModel):
    # No number in a scenario is infinite or NaN: YAML's .inf and .nan are refused with a
    # position, not carried into the clock's arithmetic.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class Misplaced(ValueError):
    """A problem a whole-scenario check found at ``loc`` (keys and indexes, as pydantic
    gives them), so the loader can point at the line instead of the top of the file."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# --- the stack ---------------------------------------------------------------------------


class BrokerSettings(_Strict):
    """The mock broker's rules for this scenario (defaults: KIS as documented)."""

    profile: Profile = "real"
    requests_per_second: int | None = Field(
        default=None, ge=1, description="Per-second budget (default: real 18, paper 1)."
    )
    token_interval_s: float = Field(
        default=60.0, ge=0, description="Seconds between token issuances (EGW00133 inside)."
    )
    token_ttl_s: int = Field(default=86_400, ge=1, description="Token lifetime in seconds.")
    token_reuse_s: float = Field(
        default=6 * 3600,
        ge=0,
        description="A repeat token request inside this returns the same token.",
    )
    gateway_error_status: int = Field(
        default=500, ge=200, le=599, description="HTTP status of EGW gateway errors."
    )


class MockFeedSettings(_Strict):
    """The mock realtime feed's rules for this scenario (defaults: KIS as documented)."""

    ping_interval_s: float = Field(
        default=100.0, gt=0, description="Seconds between PINGPONG heartbeats on a connection."
    )
    records_per_frame: int = Field(
        default=1, ge=1, le=999, description="Records (one per second) per data frame."
    )
    max_subscriptions: int = Field(
        default=41, ge=1, description="Registrations per session before OPSP0008."
    )
    appkey_release_s: float = Field(
        default=0.0, ge=0, description="How long a dropped session still holds its app key."
    )


class SystemSettings(_Strict):
    """Overrides of the system's own settings, e.g. to prove a scenario catches a broken client.

    ``client`` takes ``KisSettings`` policy fields (token_cooldown_s, timeout_s, read_retries,
    requests_per_second, ...); ``service`` takes ``ServiceSettings`` fields (quote_deadline_s,
    on_unknown_order, ...); ``feed`` takes ``FeedSettings`` fields (stall_after_s,
    backoff_base_s, resync_on_reconnect, books, ...); ``gateway`` takes ``GatewaySettings``
    fields (heartbeat_interval_s, client_queue_size, ...); ``storage`` takes
    ``StorageSettings`` fields; ``trading`` takes ``TradingSettings`` fields (mode,
    detectors, capital_per_trade, daily_loss_limit, ...); ``alerts`` takes ``AlertSettings``
    fields (max_attempts, backoff_base_s, timeout_s, ...). They are checked against the
    system's settings when the run starts, and ``squall validate`` checks them too.
    """

    client: dict[str, Any] = Field(default_factory=dict)
    service: dict[str, Any] = Field(default_factory=dict)
    feed: dict[str, Any] = Field(default_factory=dict)
    gateway: dict[str, Any] = Field(default_factory=dict)
    storage: dict[str, Any] = Field(default_factory=dict)
    trading: dict[str, Any] = Field(default_factory=dict)
    alerts: dict[str, Any] = Field(default_factory=dict)


# --- a start-up ----------------------------------------------------------------------------

Command = Literal["system", "mock broker", "mock feed", "mock proxy"]
# The options that pick each command's ports: what ``taken`` may name.
PORT_OPTIONS: dict[str, tuple[str, ...]] = {
    "system": ("--port",),
    "mock broker": ("--port",),
    "mock feed": ("--port",),
    "mock proxy": ("--listen", "--control-port"),
}
DatabaseProblem = Literal[
    "wrong-password", "unknown-database", "nothing-listening", "not-answering"
]


class StartUp(_Strict):
    """One server started as its user starts it (its ``squall`` command, in a process of
    its own) into a condition that must make it refuse, exactly one of:

    - ``taken``: the port this option picks (``--port``; the proxy's ``--listen`` or
      ``--control-port``) is already held by another process;
    - ``database`` (the system only): the database URL it is given has a wrong password,
      names a database that does not exist, points where nothing listens, or at a server
      that accepts the connection and never answers.

    The system gets the mock broker and feed (started by the harness) and any
    ``system.storage`` overrides as the ``SQUALL_DB_*``/``SQUALL_STORAGE_*`` variables.
    """

    command: Command
    taken: Literal["--port", "--listen", "--control-port"] | None = None
    database: DatabaseProblem | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> StartUp:
        if (self.taken is None) == (self.database is None):
            raise ValueError(
                "a start-up needs exactly one condition: 'taken' (a port option) or 'database'"
            )
        if self.taken is not None and self.taken not in PORT_OPTIONS[self.command]:
            raise Misplaced(
                ("taken",),
                f"'{self.command}' has no {self.taken} option; its ports are picked by "
                f"{', '.join(PORT_OPTIONS[self.command])}",
            )
        if self.database is not None and self.command != "system":
            raise Misplaced(("database",), "only the system uses a database; use 'system'")
        return self

    @property
    def label(self) -> str:
        condition = f"{self.taken} taken" if self.taken else f"database {self.database}"
        return f"squall {self.command} ({condition})"


# --- the timeline ------------------------------------------------------------------------


# How often a fault fires, the same keys for every target.
First = Annotated[int | None, Field(ge=1, description="Fault only the first N matches.")]
Every = Annotated[int | None, Field(ge=1, description="Fault every Nth match.")]
Probability = Annotated[
    float | None, Field(ge=0, le=1, description="Fault each match with this probability (seeded).")
]


class FaultSpec(_Strict):
    """A fault rule on the broker: which requests (``match``), what happens (``do``), how often."""

    target: Literal["broker"] = "broker"
    match: Where = Where()
    do: FaultAction
    first: First = None
    every: Every = None
    probability: Probability = None


class FeedFaultSpec(_Strict):
    """A fault rule on the realtime feed: which events (``match``: connect, subscribe,
    frame, ...), what happens (``do``: close, reset, stall, gap, ...), how often.

    Connection-level kinds (close, reset, stall, slow-reader, restart) fire at every
    matching event; ``first: 1`` makes one fire once.
    """

    target: Literal["feed"]
    match: FeedWhere = FeedWhere()
    do: FeedAction
    first: First = None
    every: Every = None
    probability: Probability = None


class Outage(_Strict):
    """The database is gone, as its clients see a crashed or partitioned server: the open
    connections are cut when the step starts, and new ones are refused until it ends."""

    kind: Literal["outage"] = "outage"


DatabaseAction = Annotated[
    Outage | Latency | Bandwidth | Blackhole | ProxyReset | CloseAfter | SlowClose | Refuse | Cut,
    Field(discriminator="kind"),
]


class DatabaseFaultSpec(_Strict):
    """A fault on the network path to PostgreSQL, through the TCP fault proxy the stack puts
    in front of it: which connections and direction (``match``), what happens (``do``:
    outage, latency, bandwidth, blackhole, reset, close-after, slow-close, refuse, cut),
    how often (``first``/``every``/``probability`` count connections, drawn per connection
    from the seed)."""

    target: Literal["database"]
    match: ProxyWhere = ProxyWhere()
    do: DatabaseAction
    first: First = None
    every: Every = None
    probability: Probability = None

    @model_validator(mode="after")
    def _match_fits(self) -> DatabaseFaultSpec:
        whole = (Outage, ProxyReset, Refuse, Cut)
        if isinstance(self.do, Outage) and self.match != ProxyWhere():
            raise ValueError(
                "an outage takes the whole database away, every connection both ways; "
                "leave 'match' out"
            )
        if isinstance(self.do, whole) and self.match.direction is not None:
            raise ValueError(
                f"'{self.do.kind}' acts on whole connections, both directions at once; "
                "leave 'match.direction' out"
            )
        return self


class AlertsFaultSpec(_Strict):
    """A fault on the alert webhook, the receiver standing for the operator's chat or pager
    (``do``: outage, error, hang). It holds for every alert POSTed while the step lasts: a
    receiver that is down is down for every alert, so it takes no match, first, every or
    probability."""

    target: Literal["alerts"]
    do: WebhookAction


class RedisOutage(_Strict):
    """Redis is gone: the server is shut down when the step starts (every connection to it
    closes) and started again, empty, on the same port when it ends."""

    kind: Literal["outage"] = "outage"


class RedisFaultSpec(_Strict):
    """A fault on the Redis the gateway shares signals through (``do``: outage). The
    server is a real ``redis-server``, stopped and started for real, so it takes no match,
    first, every or probability."""

    target: Literal["redis"]
    do: RedisOutage


def _fault_target(value: Any) -> str | None:
    # The tag names carry brackets so the loader reads them as union members, not keys.
    # None (not a mapping, nor a fault already built) makes pydantic say it wanted one.
    if isinstance(value, dict):
        target = value.get("target", "broker")
    elif isinstance(value, BaseModel):
        target = getattr(value, "target", "broker")
    else:
        return None
    return f"target[{target}]"


AnyFault = Annotated[
    Annotated[FaultSpec, Tag("target[broker]")]
    | Annotated[FeedFaultSpec, Tag("target[feed]")]
    | Annotated[DatabaseFaultSpec, Tag("target[database]")]
    | Annotated[AlertsFaultSpec, Tag("target[alerts]")]
    | Annotated[RedisFaultSpec, Tag("target[redis]")],
    Discriminator(
        _fault_target,
        custom_error_type="invalid_target",
        custom_error_message="'target' must be broker, feed, database, alerts or redis",
    ),
]


class QuoteLoad(_Strict):
    """Quote requests to the system: a ``burst`` of N at once, or a steady ``rate`` per second."""

    burst: int | None = Field(default=None, ge=1, le=100_000)
    rate: float | None = Field(default=None, gt=0, le=10_000)
    codes: list[Annotated[str, Field(pattern=_CODE)]] | None = Field(
        default=None, description="6-digit KRX codes, used in turn (default: every listing)."
    )

    @model_validator(mode="after")
    def _one_shape(self) -> QuoteLoad:
        if (self.burst is None) == (self.rate is None):
            raise ValueError("quotes need exactly one of 'burst' (N at once) or 'rate' (per s)")
        return self


class OrderLoad(_Strict):
    """Cash orders to the system at ``rate`` per second (or a ``burst`` of N at once).

    Each order gets a unique client order id and a unique quantity, so every order the
    broker booked can be traced back to the one call that asked for it.
    """

    burst: int | None = Field(default=None, ge=1, le=10_000)
    rate: float | None = Field(default=None, gt=0, le=100)
    side: Literal["buy", "sell"] = "buy"
    type: Literal["market", "limit"] = "market"
    codes: list[Annotated[str, Field(pattern=_CODE)]] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> OrderLoad:
        if (self.burst is None) == (self.rate is None):
            raise ValueError("orders need exactly one of 'burst' (N at once) or 'rate' (per s)")
        return self


class WatchLoad(_Strict):
    """Dashboard clients on the gateway's ``/ws``: each subscribes ``tickers`` and records
    every price update it receives (and when), answering the gateway's pings.

    ``slow: true`` makes them frozen browser tabs: a tiny receive buffer, and nothing read
    once subscribed, so the gateway's queue for them fills up.
    """

    clients: int = Field(default=1, ge=1, le=2000)
    tickers: list[Annotated[str, Field(pattern=_CODE)]] = Field(min_length=1, max_length=100)
    slow: bool = False


class ApiLoad(_Strict):
    """HTTP GETs to the system's gateway (``path``, e.g. ``/api/orders?limit=20``): a
    ``burst`` of N at once, or a steady ``rate`` per second. Each call is ``ok`` (200),
    ``refused`` (503 with Retry-After: the system said when to come back) or ``failed``
    (anything else, including a 503 without Retry-After)."""

    burst: int | None = Field(default=None, ge=1, le=10_000)
    rate: float | None = Field(default=None, gt=0, le=1_000)
    path: str = Field(default="/api/orders?limit=20", pattern=r"^/[^\s]*$")

    @model_validator(mode="after")
    def _one_shape(self) -> ApiLoad:
        if (self.burst is None) == (self.rate is None):
            raise ValueError("api calls need exactly one of 'burst' (N at once) or 'rate' (per s)")
        return self


LOAD_SHAPES = ("constant", "ramp", "spike", "soak")
# What a load phase's users ask, as system-call operations (the load tier's request types:
# GET /health, GET /api/quotes/[code], WS connect, WS ping round trip).
LOAD_OPERATIONS = ("health", "quote", "ws-connect", "ws-ping")


class LoadPhase(_Strict):
    """A crowd of users on the system's gateway for the step's length, doing what the load
    tier's Locust users do (``load/locustfile.py``), on the scenario's clock.

    ``rest`` users ask ``GET /api/quotes/{code}`` and ``GET /health`` (quotes twice as
    often), one request at a time, waiting ``think`` seconds (drawn between its two values)
    before each. ``dashboard`` users hold the page's WebSocket, subscribed to a ticker and
    to signals, answer the gateway's pings, and time a ping round trip after each think.
    Users are given ``kinds`` in turn. ``shape`` says how many are on at each second:
    ``constant`` (all of them), ``ramp``, ``spike`` or ``soak`` (``load/shapes.py``).

    Each request is a system call of the step's workload: operation ``quote``, ``health``,
    ``ws-connect`` or ``ws-ping``, ``ok`` or an outcome saying what went wrong (``refused``:
    a 503 with Retry-After; ``HTTP500``; ``TimeoutError``, ...).
    """

    users: int = Field(ge=1, le=2000)
    shape: Literal["constant", "ramp", "spike", "soak"] = "constant"
    kinds: list[Literal["rest", "dashboard"]] = Field(default=["rest"], min_length=1)
    think: list[float] = Field(
        default=[0.5, 1.5],
        min_length=2,
        max_length=2,
        description="Seconds a user waits before each request: [low, high].",
    )
    codes: list[Annotated[str, Field(pattern=_CODE)]] | None = Field(
        default=None, description="The tickers users quote and watch (default 005930, 000660)."
    )

    @model_validator(mode="after")
    def _think_range(self) -> LoadPhase:
        low, high = self.think
        if not 0 < low <= high:
            raise ValueError("'think' is [low, high] seconds with 0 < low <= high, e.g. [0.5, 1.5]")
        return self


class MarketMove(_Strict):
    """A market event on the timeline, in the simulated market itself (not a fault of a
    part): ``gap`` (the price path jumps by ``pct`` percent from the step's ``at`` on),
    ``limit-up``/``limit-down`` (the price pinned at the day's limit, the book one-sided,
    orders at the limit resting unfilled), ``vi`` (a volatility interruption: no trades,
    the price frozen, market orders refused; 120 s unless the step says ``for``), each of a
    stock ``code``; ``mispricing`` (an FX ``pair`` quoted ``pct`` percent off the cross rate
    of the others). A limit or a mispricing lasts for the step's ``for``/``until``, or to
    the end."""

    kind: Literal["gap", "limit-up", "limit-down", "vi", "mispricing"]
    code: str | None = Field(default=None, pattern=_CODE)
    pair: str | None = Field(default=None, json_schema_extra={"enum": list(FX_PAIRS)})
    pct: float | None = Field(default=None, gt=-100, le=100)

    @model_validator(mode="after")
    def _pct_for_gaps(self) -> MarketMove:
        moves = ("gap", "mispricing")
        if self.kind == "gap" and not self.pct:
            raise ValueError("a gap needs 'pct': the jump in percent, e.g. -8 (not 0)")
        if self.kind == "mispricing" and not self.pct:
            raise ValueError("a mispricing needs 'pct': off the cross rate, e.g. 1.5 (not 0)")
        if self.kind not in moves and self.pct is not None:
            raise ValueError(
                f"'{self.kind}' takes no 'pct'; only a gap or a mispricing moves by a percentage"
            )
        if self.kind == "mispricing":
            if self.code is not None or self.pair is None:
                raise ValueError("a mispricing moves an FX pair: give 'pair' (not 'code')")
            if self.pair not in FX_PAIRS:
                raise ValueError(
                    f"pair {self.pair!r} is not listed on the simulated FX venue; listed: "
                    + ", ".join(FX_PAIRS)
                )
        elif self.code is None or self.pair is not None:
            raise ValueError(f"a {self.kind} moves a stock: give 'code' (not 'pair')")
        return self


Action = Literal["expire-tokens", "press-kill-switch", "release-kill-switch"]
# Actions on the trading desk, which need it in 'needs'.
DESK_ACTIONS = ("press-kill-switch", "release-kill-switch")
STEP_KINDS = ("fault", "action", "quotes", "orders", "watch", "api", "load", "market")


class Step(_Strict):
    """One entry of the timeline: at ``at`` seconds, exactly one of fault/action/quotes/orders.

    ``until`` or ``for`` ends a fault or a rate workload; without them it lasts to the end.
    """

    name: str | None = Field(default=None, pattern=_NAME)
    at: float = Field(ge=0)
    until: float | None = Field(default=None, gt=0)
    for_: float | None = Field(default=None, alias="for", gt=0)
    fault: AnyFault | None = None
    action: Action | None = None
    quotes: QuoteLoad | None = None
    orders: OrderLoad | None = None
    watch: WatchLoad | None = None
    api: ApiLoad | None = None
    load: LoadPhase | None = None
    market: MarketMove | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a timeline step needs exactly one of {', '.join(STEP_KINDS)}; "
                f"got {', '.join(given) if given else 'none'}"
            )
        if self.until is not None and self.for_ is not None:
            raise ValueError("give either 'until' or 'for', not both")
        if self.until is not None and self.until <= self.at:
            raise ValueError(f"'until' ({self.until:g}) must be later than 'at' ({self.at:g})")
        if self.action is not None and (self.until is not None or self.for_ is not None):
            raise ValueError("an action happens once at 'at'; it takes no 'until' or 'for'")
        load = self.quotes or self.orders or self.api
        if load is not None and load.burst is not None and self.end is not None:
            raise ValueError("a burst starts at once at 'at'; it takes no 'until' or 'for'")
        if self.market is not None:
            # The simulated market moves in whole seconds: one price step each.
            if self.at != int(self.at) or (self.end is not None and self.end != int(self.end)):
                raise ValueError("a market event starts and ends on whole seconds")
            if self.market.kind == "gap" and self.end is not None:
                raise ValueError("a gap happens at 'at' and stays; it takes no 'until' or 'for'")
            if self.market.kind == "vi" and self.until is not None:
                raise ValueError("a VI lasts 'for' seconds (120 by default); give 'for'")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)

    @property
    def end(self) -> float | None:
        """When the step stops (None: at the end of the scenario, or once for an action)."""
        if self.until is not None:
            return self.until
        if self.for_ is not None:
            return self.at + self.for_
        return None

    def over_at(self, duration: float) -> float:
        """When the step is over: its end; its start for an action or a burst; else the end
        of the scenario (``duration``)."""
        if self.end is not None:
            return self.end
        load = self.quotes or self.orders or self.api
        if self.action is not None or (load is not None and load.burst is not None):
            return self.at
        if self.market is not None and self.market.kind == "gap":
            return self.at
        if self.market is not None and self.market.kind == "vi":
            return self.at + VI_SECONDS
        return duration

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}@{self.at:g}s"

    def when(self) -> When:
        """The fault's ``when`` on its mock's clock (which starts with the scenario)."""
        assert self.fault is not None
        fault = self.fault
        if isinstance(fault, AlertsFaultSpec | RedisFaultSpec):
            return When.model_validate({"from": self.at, "until": self.end})
        return When.model_validate(
            {
                "from": self.at,
                "until": self.end,
                "first": fault.first,
                "every": fault.every,
                "probability": fault.probability,
            }
        )


# --- what must hold ----------------------------------------------------------------------


class BrokerRequests(_Strict):
    """Requests the mock broker saw. Every given field must match.

    ``kind`` is what the request was, whichever the broker (token, quote, order, ...);
    ``code`` the broker's answer code (``EGW00201``, ``1700``; ``ok`` for a successful
    answer) or its meaning, whichever the broker (``budget-exceeded``, ``token-refused``,
    ``token-rate-limited``); ``status`` the HTTP status; ``faulted`` whether a fault rule
    fired on the request.
    """

    kind: RequestKind | None = Field(
        default=None, description="What the request was: token, quote, order, ..."
    )
    path: str | None = Field(default=None, description="Shell-style glob, e.g. /uapi/*.")
    method: str | None = None
    tr_id: str | None = None
    code: str | None = Field(
        default=None,
        description="The broker's code (EGW00201, 1700), ok, or a meaning "
        "(budget-exceeded, token-refused, token-rate-limited).",
    )
    status: int | None = Field(default=None, ge=100, le=599)
    faulted: bool | None = None


def _error_types(base: type[BaseException] = BrokerError) -> list[str]:
    """The names of ``base`` and every error type derived from it."""
    names = [base.__name__]
    for sub in base.__subclasses__():
        names += _error_types(sub)
    return sorted(set(names))


# The statuses a call through the gateway's HTTP API may end with besides 200.
HTTP_OUTCOMES = tuple(
    f"HTTP{status}" for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503, 504)
)
# refused: the system declined with a hint when to retry (HTTP 503 with Retry-After).
# timeout, closed, unreachable: a load phase's request got no answer in time, its
# connection ended, or the gateway could not be reached at all.
CALL_OUTCOMES = (
    "ok",
    "refused",
    "failed",
    "unfinished",
    "timeout",
    "closed",
    "unreachable",
    *HTTP_OUTCOMES,
    *_error_types(),
)


def _one_of(key: str, value: str | None, valid: tuple[str, ...], what: str) -> None:
    """Refuses a selector's ``value`` outside ``valid``, naming the valid ones. (A typo in a
    selector would count nothing, and "equals: 0" would pass for the wrong reason.)"""
    if value is not None and value not in valid:
        raise Misplaced((key,), f"unknown {what} {value!r}; valid ones: {', '.join(valid)}")


class SystemCalls(_Strict):
    """Calls the workloads made to the system. ``outcome`` is ``ok``, ``refused`` (an HTTP
    call answered 503 with Retry-After), ``failed`` (any other error), ``unfinished`` (still
    running at the end), an error type such as ``BrokerUnavailable`` (calls made in
    process), or, for calls through the gateway (``api``, ``load``), the status it answered
    (``HTTP503``), ``timeout``, ``closed`` (the connection ended) or ``unreachable``.
    ``operation`` is ``quote``, ``order`` or ``api``, or a load phase's ``quote``,
    ``health``, ``ws-connect`` or ``ws-ping``."""

    workload: str | None = None
    operation: Literal["quote", "order", "api", "health", "ws-connect", "ws-ping"] | None = None
    outcome: str | None = Field(default=None, json_schema_extra={"enum": list(CALL_OUTCOMES)})

    @model_validator(mode="after")
    def _known_outcome(self) -> SystemCalls:
        _one_of("outcome", self.outcome, CALL_OUTCOMES, "outcome")
        return self


class FeedEvents(_Strict):
    """Events the mock realtime feed journaled. Every given field must match.

    ``kind``: connect, disconnect, message, ack, frame, pingpong or fault. ``code`` is an
    ack's code (KIS's msg_cd OPSP0000, OPSP0008, ...; Kiwoom's return code) or what it means
    whichever the protocol (subscribed, unsubscribed, too-many), or a close code; ``outcome``
    a frame's fate (sent,
    duplicate, reordered, delayed, malformed, skipped) or a heartbeat's (sent, echoed).
    """

    kind: (
        Literal["connect", "disconnect", "message", "ack", "frame", "pingpong", "fault"] | None
    ) = None
    tr_id: str | None = None
    tr_key: str | None = Field(default=None, pattern=_CODE)
    code: str | None = None
    outcome: str | None = None
    connection: int | None = Field(default=None, ge=1)


class Ticks(_Strict):
    """Price updates the ``watch`` workloads' dashboard clients received from the gateway.

    ``source`` is ``feed`` (realtime) or ``rest`` (a REST quote: the fallback while the feed
    is down, or a resync); ``stale`` whether the gateway marked it so.
    """

    workload: str | None = None
    ticker: str | None = Field(default=None, pattern=_CODE)
    source: Literal["feed", "rest"] | None = None
    stale: bool | None = None


# What halts trading: the guards that halt, and a person's press of the kill switch.
HALT_REASONS: tuple[str, ...] = tuple(
    reason.value
    for reason in (
        Reason.DAILY_LOSS_LIMIT,
        Reason.CUMULATIVE_LOSS_LIMIT,
        Reason.CONSECUTIVE_FAILURES,
        Reason.SOURCE_LATENCY,
        Reason.MANUAL,
    )
)


class Halts(_Strict):
    """Times trading halted (the desk's kill switch engaged), counted when they began.

    ``reason`` is the halt's code (``daily-loss-limit``, ``consecutive-failures``, ``manual``,
    ...); ``automatic`` whether a guard halted (true) or a person (false).
    """

    reason: str | None = Field(default=None, json_schema_extra={"enum": list(HALT_REASONS)})
    automatic: bool | None = None

    @model_validator(mode="after")
    def _known_reason(self) -> Halts:
        _one_of("reason", self.reason, HALT_REASONS, "halt reason")
        return self


class AlertsReceived(_Strict):
    """Alerts the webhook receiver got: one per POST (a retried alert counts once per
    attempt that reached it). Every given field must match.

    ``category`` is the alert's (``halt``, ``release``); ``severity`` its level;
    ``outcome`` how the receiver answered: ``delivered`` (2xx: the operator has it),
    ``error`` (an error status, from an ``error`` fault), ``hung`` (never, under a ``hang``
    fault). During an ``outage`` nothing reaches it.
    """

    category: Literal["halt", "release"] | None = None
    severity: Literal["info", "warning", "critical"] | None = None
    outcome: Literal["delivered", "error", "hung"] | None = None


Health = Literal["healthy", "degraded", "unhealthy"]
# The measures of a start-up scenario, and only of one.
START_MEASURES = ("exit_status", "output")
MEASURES = (
    "broker_requests",
    "token_issuances",
    "system_calls",
    "feed_events",
    "ticks",
    "halts",
    "alerts_received",
    "success_ratio",
    "latency",
    "tick_lag",
    "metric",
    "health",
    *START_MEASURES,
)


class Expectation(_Strict):
    """One thing that must hold. Exactly one measure, a bound, and optionally a window.

    Measures:
      - ``broker_requests`` / ``token_issuances`` / ``system_calls``: counts;
      - ``feed_events``: a count of the mock feed's journal entries;
      - ``ticks``: a count of price updates dashboard clients received;
      - ``halts``: a count of trading halts (needs ``trading``);
      - ``alerts_received``: a count of alert POSTs the webhook receiver got (needs
        ``alerts``);
      - ``success_ratio``: the share of system calls that ended ok (0..1);
      - ``latency``: the slowest system call's seconds (``percentile`` for another rank);
      - ``tick_lag``: the largest delay, in seconds, from the system taking a price in to a
        dashboard client receiving it (``percentile`` for another rank);
      - ``metric``: a system metric's value at the end of the window;
      - ``health``: the system's health state; with ``within`` and ``after``, a deadline
        ("healthy again within 70 s of the fault ending"), else it must hold throughout;
      - ``exit_status`` (start-up scenarios): the status the started command exited with
        before the scenario's duration ran out;
      - ``output`` (start-up scenarios): how many times the command's output (stdout and
        stderr, runs of whitespace read as one space) says this text; ``{port}`` stands for
        the port the scenario took.
    Bounds: ``at_most``, ``at_least``, ``equals``. Window: ``from``/``until`` seconds, ``per``
    (the bound holds in every sliding window of that many seconds), or ``within`` seconds
    ``after`` a named step ends or ``since`` it started.
    """

    expect: str | None = Field(
        default=None, description="What this checks, in words; shown in reports."
    )
    broker_requests: BrokerRequests | None = None
    token_issuances: Literal[True] | None = None
    system_calls: SystemCalls | None = None
    success_ratio: SystemCalls | None = None
    latency: SystemCalls | None = None
    feed_events: FeedEvents | None = None
    ticks: Ticks | None = None
    tick_lag: Ticks | None = None
    halts: Halts | None = None
    alerts_received: AlertsReceived | None = None
    metric: str | None = Field(default=None, json_schema_extra={"enum": list(metric_names())})
    health: Health | None = None
    exit_status: int | None = Field(default=None, ge=0, le=255)
    output: str | None = Field(default=None, min_length=1)

    at_most: float | None = None
    at_least: float | None = None
    equals: float | None = None

    from_: float | None = Field(default=None, alias="from", ge=0)
    until: float | None = Field(default=None, gt=0)
    per: float | None = Field(default=None, gt=0)
    within: float | None = Field(default=None, gt=0)
    after: str | None = Field(default=None, description="A step's name: from when it ends.")
    since: str | None = Field(default=None, description="A step's name: from when it starts.")
    percentile: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> Expectation:
        given = [measure for measure in MEASURES if getattr(self, measure) is not None]
        if len(given) != 1:
            raise ValueError(
                f"an expectation needs exactly one measure of {', '.join(MEASURES)}; "
                f"got {', '.join(given) if given else 'none'}"
            )
        bounds = [b for b in ("at_most", "at_least", "equals") if getattr(self, b) is not None]
        if self.health is not None:
            if bounds:
                raise ValueError("a health expectation takes no bound: it names the state")
        elif self.exit_status is not None:
            if bounds:
                raise ValueError("an exit_status expectation takes no bound: it names the status")
        elif not bounds:
            raise ValueError(f"'{given[0]}' needs a bound: at_most, at_least or equals")
        if self.equals is not None and len(bounds) > 1:
            raise ValueError("'equals' cannot be combined with at_most or at_least")
        anchors = [key for key in ("after", "since") if getattr(self, key) is not None]
        if len(anchors) > 1:
            raise ValueError("give either 'after' (a step's end) or 'since' (its start), not both")
        if (self.within is None) != (not anchors):
            raise ValueError(
                "'within' goes with 'after' or 'since': within N seconds after a step ends "
                "or since it started"
            )
        if anchors and (self.from_ is not None or self.until is not None):
            raise ValueError("'within' sets the window; it takes no 'from' or 'until'")
        if self.within is not None and given[0] not in ("health", *COUNTS):
            raise ValueError("'within' applies to health and to counts (requests, calls, events)")
        if self.per is not None and given[0] not in COUNTS:
            raise ValueError(f"'per' applies to counts: {', '.join(COUNTS)}")
        if self.percentile is not None and self.latency is None and self.tick_lag is None:
            raise ValueError("'percentile' applies to latency and tick_lag only")
        if self.from_ is not None and self.until is not None and self.until <= self.from_:
            raise ValueError("'until' must be later than 'from'")
        if given[0] in START_MEASURES and self.windowed:
            raise ValueError(
                f"'{given[0]}' takes no window: a start-up is judged on its whole run, which "
                "the scenario's 'duration' bounds"
            )
        if self.metric is not None and self.metric not in metric_names():
            raise Misplaced(
                ("metric",),
                f"unknown metric {self.metric!r}; the system reports: {', '.join(metric_names())}",
            )
        return self

    @property
    def windowed(self) -> list[str]:
        """The window keys given (as written in YAML)."""
        keys: dict[str, object] = {
            "from": self.from_,
            "until": self.until,
            "per": self.per,
            "within": self.within,
            "after": self.after,
            "since": self.since,
        }
        return [key for key, value in keys.items() if value is not None]

    @property
    def measure(self) -> str:
        return next(measure for measure in MEASURES if getattr(self, measure) is not None)


# The measures that count events (and so take 'per' and 'within').
COUNTS = (
    "broker_requests",
    "token_issuances",
    "system_calls",
    "feed_events",
    "ticks",
    "halts",
    "alerts_received",
)


class SteadyState(_Strict):
    """What must hold before the first fault starts and again after the last one ends.

    ``settle`` seconds after the last fault are granted for recovery before the "after"
    window opens; the window then runs to the end of the scenario.
    """

    settle: float = Field(default=60.0, ge=0)
    expect: list[Expectation] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_windows(self) -> SteadyState:
        for index, expectation in enumerate(self.expect):
            if expectation.windowed:
                key = expectation.windowed[0]
                raise Misplaced(
                    ("expect", index, key),
                    f"'{key}' has no meaning in a steady state, whose windows are fixed: "
                    "before the first fault or action, and from 'settle' seconds after the "
                    "last one to the end; move the expectation to the top-level 'expect' to "
                    "give it a window of its own",
                )
        return self


def _default_parts() -> list[Part]:
    return ["broker"]


def _default_brokers() -> list[Api]:
    return ["kis"]


class Scenario(_Strict):
    """A scenario file. See docs/scenarios.md for every key, with examples."""

    name: str = Field(pattern=_NAME)
    summary: str = ""
    tags: list[str] = Field(default_factory=list)
    seed: int = 0
    clock: Literal["virtual", "real"] = "virtual"
    duration: float = Field(
        gt=0,
        le=24 * 3600,
        description="Simulated seconds the run lasts; for a start-up, the seconds the command "
        "gets to exit before it is stopped.",
    )
    needs: list[Part] = Field(default_factory=_default_parts)
    brokers: list[Api] = Field(
        default_factory=_default_brokers,
        min_length=1,
        description="The brokers the scenario runs against, each a run of its own: kis (KIS "
        "Open API), kiwoom (Kiwoom REST).",
    )
    broker: BrokerSettings = BrokerSettings()
    feed: MockFeedSettings = MockFeedSettings()
    system: SystemSettings = SystemSettings()
    start: StartUp | None = None
    timeline: list[Step] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)
    steady_state: SteadyState | None = None
    invariants: list[Invariant] | Literal["all", "none"] = "all"

    def _check_brokers(self) -> None:
        if len(set(self.brokers)) != len(self.brokers):
            raise Misplaced(("brokers",), "each broker once: the list names runs, not weights")

    @model_validator(mode="after")
    def _coherent(self) -> Scenario:
        names = [step.label for step in self.timeline]
        self._check_needs()
        self._check_brokers()
        self._check_start()
        for index, step in enumerate(self.timeline):
            if names.count(step.label) > 1:
                raise Misplaced(
                    ("timeline", index, "name"),
                    f"timeline step names must be unique; {step.label!r} is repeated",
                )
            if step.at >= self.duration:
                raise Misplaced(
                    ("timeline", index, "at"),
                    f"step {step.label!r} starts at {step.at:g}s, at or after the scenario's "
                    f"duration ({self.duration:g}s)",
                )
            if step.fault is not None and step.fault.target not in self.needs:
                raise Misplaced(
                    ("timeline", index, "fault", "target"),
                    f"step {step.label!r} targets {step.fault.target!r}, which 'needs' lacks",
                )
            if step.watch is not None and "gateway" not in self.needs:
                raise Misplaced(
                    ("timeline", index, "watch"),
                    f"step {step.label!r} watches the gateway's /ws; add gateway to 'needs'",
                )
            if step.action in DESK_ACTIONS and "trading" not in self.needs:
                raise Misplaced(
                    ("timeline", index, "action"),
                    f"step {step.label!r} acts on the trading desk; add trading to 'needs'",
                )
            if step.api is not None and "gateway" not in self.needs:
                raise Misplaced(
                    ("timeline", index, "api"),
                    f"step {step.label!r} calls the gateway's HTTP API; add gateway to 'needs'",
                )
            if step.load is not None and "gateway" not in self.needs:
                raise Misplaced(
                    ("timeline", index, "load"),
                    f"step {step.label!r} puts users on the gateway; add gateway to 'needs'",
                )
            if step.market is not None and step.market.pair and "feed" not in self.needs:
                raise Misplaced(
                    ("timeline", index, "market", "pair"),
                    f"step {step.label!r} misprices an FX pair, whose quotes the feed serves; "
                    "add feed to 'needs'",
                )
        workloads = {
            step.label for step in self.timeline if step.kind in ("quotes", "orders", "api", "load")
        }
        watchers = {step.label for step in self.timeline if step.watch is not None}
        codes = self.answer_codes
        located: list[tuple[tuple[str | int, ...], Expectation]] = [
            (("expect", i), e) for i, e in enumerate(self.expect)
        ]
        if self.steady_state is not None:
            located += [
                (("steady_state", "expect", i), e) for i, e in enumerate(self.steady_state.expect)
            ]
        for where, expectation in located:
            selector = expectation.broker_requests
            if selector is not None and selector.code is not None and selector.code not in codes:
                raise Misplaced(
                    (*where, "broker_requests", "code"),
                    f"unknown answer code {selector.code!r}: neither the broker nor this "
                    f"scenario's faults answer with it; valid ones: {', '.join(sorted(codes))}",
                )
            for key in ("after", "since"):
                anchor = getattr(expectation, key)
                if anchor is not None and anchor not in names:
                    raise Misplaced(
                        (*where, key),
                        f"'{key}: {anchor}' names no timeline step; "
                        f"the steps are: {', '.join(names) or 'none'}",
                    )
            calls = expectation.system_calls or expectation.success_ratio or expectation.latency
            if calls is not None and calls.workload is not None and calls.workload not in workloads:
                raise Misplaced(
                    (*where, expectation.measure, "workload"),
                    f"'workload: {calls.workload}' names no workload step; "
                    f"the workloads are: {', '.join(sorted(workloads)) or 'none'}",
                )
            ticks = expectation.ticks or expectation.tick_lag
            if ticks is not None and ticks.workload is not None and ticks.workload not in watchers:
                raise Misplaced(
                    (*where, expectation.measure, "workload"),
                    f"'workload: {ticks.workload}' names no watch step; "
                    f"the watch steps are: {', '.join(sorted(watchers)) or 'none'}",
                )
            if expectation.feed_events is not None and "feed" not in self.needs:
                raise Misplaced(
                    (*where, "feed_events"), "feed_events needs the feed; add feed to 'needs'"
                )
            if expectation.alerts_received is not None and "alerts" not in self.needs:
                raise Misplaced(
                    (*where, "alerts_received"),
                    "alerts_received counts what the alert webhook got; add alerts to 'needs'",
                )
            if expectation.halts is not None and "trading" not in self.needs:
                raise Misplaced(
                    (*where, "halts"), "halts needs the trading desk; add trading to 'needs'"
                )
            empty = self._empty_window(expectation)
            if empty is not None:
                raise Misplaced((*where, empty[0]), empty[1])
        if self.steady_state is not None and not self.disruptions:
            raise Misplaced(
                ("steady_state",),
                "'steady_state' needs at least one fault or action to be before and after",
            )
        if self.steady_state is not None:
            last = max(step.over_at(self.duration) for step in self.disruptions)
            if last + self.steady_state.settle >= self.duration:
                raise Misplaced(
                    ("steady_state", "settle"),
                    f"the steady state has no 'after' window: the last fault or action is "
                    f"over at {last:g}s, and settle ({self.steady_state.settle:g}s) reaches "
                    f"the duration ({self.duration:g}s); lengthen 'duration' or shorten "
                    "'settle'",
                )
        return self

    def _check_start(self) -> None:
        """A start-up scenario has no timeline, and only it has start-up measures."""
        located = [(("expect", i), e) for i, e in enumerate(self.expect)]
        if self.start is None:
            for where, expectation in located:
                if expectation.measure in START_MEASURES:
                    raise Misplaced(
                        (*where, expectation.measure),
                        f"'{expectation.measure}' judges a start-up; add 'start' to say what "
                        "is started, into which condition",
                    )
            return
        start = self.start
        for key in ("timeline", "steady_state"):
            if getattr(self, key):
                raise Misplaced(
                    (key,),
                    f"a start-up scenario has no '{key}': it starts one command and judges "
                    "how it exits and what it says",
                )
        for where, expectation in located:
            if expectation.measure not in START_MEASURES:
                raise Misplaced(
                    (*where, expectation.measure),
                    f"a start-up scenario is judged by {' and '.join(START_MEASURES)}; "
                    f"'{expectation.measure}' needs a timeline",
                )
        if self.clock != "real":
            raise Misplaced(
                ("clock",),
                "a start-up runs a process of its own, on real time; set 'clock: real'",
            )
        if start.database is not None and "database" not in self.needs:
            raise Misplaced(("start", "database"), "a database problem needs database in 'needs'")
        for section in ("client", "service", "feed", "gateway", "trading", "alerts"):
            if getattr(self.system, section):
                raise Misplaced(
                    ("system", section),
                    "a start-up takes only 'system.storage' overrides (passed to the command "
                    "as SQUALL_DB_*/SQUALL_STORAGE_* variables)",
                )
        if self.system.storage and start.command != "system":
            raise Misplaced(("system", "storage"), "only the system uses storage settings")

    def _check_needs(self) -> None:
        if "broker" not in self.needs:
            raise Misplaced(("needs",), "the system always needs the broker; add broker")
        if "gateway" in self.needs and "feed" not in self.needs:
            raise Misplaced(("needs",), "the gateway's prices come from the feed; add feed")
        if self.system.storage and "database" not in self.needs:
            raise Misplaced(
                ("system", "storage"), "storage settings need the database; add database"
            )
        if "trading" in self.needs and "feed" not in self.needs:
            raise Misplaced(("needs",), "the trading desk trades on the feed's prices; add feed")
        if self.system.trading and "trading" not in self.needs:
            raise Misplaced(
                ("system", "trading"), "trading settings need the desk; add trading to 'needs'"
            )
        if "redis" in self.needs and "gateway" not in self.needs:
            raise Misplaced(("needs",), "the gateway shares signals through Redis; add gateway")
        if "redis" in self.needs and self.clock != "real":
            raise Misplaced(
                ("clock",),
                "Redis is a process outside the loop, whose replies virtual time cannot wait "
                "for; set 'clock: real'",
            )
        if "alerts" in self.needs and "trading" not in self.needs:
            raise Misplaced(
                ("needs",), "the alert webhook hears from the trading desk; add trading"
            )
        if self.system.alerts and "alerts" not in self.needs:
            raise Misplaced(
                ("system", "alerts"), "alert settings need the webhook; add alerts to 'needs'"
            )
        if isinstance(self.invariants, list):
            for index, name in enumerate(self.invariants):
                if name in FEED_INVARIANTS and "feed" not in self.needs:
                    raise Misplaced(
                        ("invariants", index), f"{name!r} checks the feed; add feed to 'needs'"
                    )
                if name in DATABASE_INVARIANTS and "database" not in self.needs:
                    raise Misplaced(
                        ("invariants", index),
                        f"{name!r} checks what the system stored; add database to 'needs'",
                    )
                if name in TRADING_INVARIANTS and "trading" not in self.needs:
                    raise Misplaced(
                        ("invariants", index),
                        f"{name!r} checks the trading desk's history; add trading to 'needs'",
                    )
                if self.start is not None and name not in START_INVARIANTS:
                    raise Misplaced(
                        ("invariants", index),
                        f"{name!r} needs a timeline; a start-up scenario checks "
                        f"{', '.join(START_INVARIANTS)}",
                    )

    def _empty_window(self, expectation: Expectation) -> tuple[str, str] | None:
        """(key, why) when ``expectation``'s window could never contain anything."""
        duration = self.duration
        if expectation.from_ is not None and expectation.from_ >= duration:
            return "from", (
                f"'from: {expectation.from_:g}' is at or after the duration ({duration:g}s)"
            )
        if expectation.until is not None and expectation.until > duration:
            return "until", (
                f"'until: {expectation.until:g}' is after the duration ({duration:g}s); "
                "leave it out to mean the end"
            )
        if expectation.per is not None and expectation.per > duration:
            return "per", f"'per: {expectation.per:g}' is longer than the scenario ({duration:g}s)"
        if expectation.after is not None:
            step = next(s for s in self.timeline if s.label == expectation.after)
            if step.over_at(duration) >= duration:
                return "after", (
                    f"step {step.label!r} is only over when the scenario ends, so nothing "
                    "comes after it; give the step an 'until' or 'for'"
                )
        return None

    @property
    def answer_codes(self) -> set[str]:
        """Codes a broker answer can carry in this scenario: ``ok``, a meaning
        (``budget-exceeded``, ...), the codes of the brokers it runs against, and any a
        fault step answers with."""
        codes = {"ok", *MEANINGS}
        if "kis" in self.brokers:
            codes.update(
                broker_codes.GATEWAY_MESSAGES,
                broker_codes.BUSINESS_MESSAGES,
                broker_codes.OAUTH_MESSAGES,
            )
        if "kiwoom" in self.brokers:
            codes.update(str(code) for code in kiwoom_codes.MESSAGES)
        for step in self.faults:
            assert step.fault is not None
            action = step.fault.do
            if isinstance(action, Error):
                if action.code is not None:
                    codes.add(action.code)
                body = action.body or {}
                codes.update(str(body[key]) for key in ("msg_cd", "error_code") if key in body)
        return codes

    @property
    def faults(self) -> list[Step]:
        return [step for step in self.timeline if step.fault is not None]

    @property
    def disruptions(self) -> list[Step]:
        """Faults, actions and market events: what the steady state must hold before and
        after."""
        return [
            step
            for step in self.timeline
            if step.fault is not None or step.action or step.market is not None
        ]

    @property
    def market_moves(self) -> list[Step]:
        return [step for step in self.timeline if step.market is not None]

    @property
    def invariant_names(self) -> tuple[str, ...]:
        if self.invariants == "all":
            if self.start is not None:
                return START_INVARIANTS
            return tuple(
                name
                for name in INVARIANTS
                if (name not in FEED_INVARIANTS or "feed" in self.needs)
                and (name not in DATABASE_INVARIANTS or "database" in self.needs)
                and (name not in TRADING_INVARIANTS or "trading" in self.needs)
            )
        if self.invariants == "none":
            return ()
        return tuple(self.invariants)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
