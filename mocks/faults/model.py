"""The shape of a fault rule, strict so a typo in a scenario is an error, not a silent no-op."""

from __future__ import annotations

import fnmatch
import math
import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mocks.vocabulary import RequestKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A rule's name, for the journal ("<rule id>:<kind>") and for removing it; every mock's
# rules take the same. None: the plan names it rule-1, rule-2, ...
RuleId = Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Where(_Strict):
    """Which requests a rule targets. Empty fields match everything.

    ``path`` is a shell-style glob (``/uapi/*/quotations/*``); method and tr_id compare
    case-insensitively, as the brokers' gateways treat them (tr_id is also Kiwoom's
    api-id). ``kind`` names what the request is whichever the broker (token, quote, order,
    order-inquiry, balance, ...: ``mocks.vocabulary``), so one rule fits both; a list of
    kinds matches any of them.
    """

    path: str | None = None
    method: str | None = None
    tr_id: str | None = None
    kind: RequestKind | list[RequestKind] | None = None

    def matches(self, method: str, path: str, tr_id: str | None, kind: str = "other") -> bool:
        if self.kind is not None and kind not in (
            (self.kind,) if isinstance(self.kind, str) else self.kind
        ):
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is not None and not fnmatch.fnmatchcase(path, self.path):
            return False
        return self.tr_id is None or (tr_id is not None and self.tr_id.upper() == tr_id.upper())


class Error(_Strict):
    """Answer with a broker error instead of forwarding the request.

    ``code`` picks the broker's body for that code (EGW00201, EGW00123, EGW00133, ...);
    ``body`` overrides it wholesale. ``status`` None means the broker's own status for the code.
    """

    kind: Literal["error"] = "error"
    code: str | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    message: str | None = None
    body: dict[str, Any] | None = None


class Delay(_Strict):
    """Hold the request, then let the broker answer it normally.

    ``seconds`` fixes the delay; ``low``/``high`` draw it uniformly; ``median``/``sigma``
    draw it log-normally (a long tail, like a congested gateway). Draws use the plan's RNG.
    """

    kind: Literal["delay"] = "delay"
    seconds: float | None = Field(default=None, ge=0)
    low: float | None = Field(default=None, ge=0)
    high: float | None = Field(default=None, ge=0)
    median: float | None = Field(default=None, gt=0)
    sigma: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_distribution(self) -> Delay:
        fixed = self.seconds is not None
        uniform = self.low is not None or self.high is not None
        lognormal = self.median is not None or self.sigma is not None
        if fixed + uniform + lognormal != 1:
            raise ValueError(
                "a delay needs exactly one of: seconds; low and high; median and sigma"
            )
        if uniform and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError("a uniform delay needs low <= high")
        if lognormal and (self.median is None or self.sigma is None):
            raise ValueError("a log-normal delay needs both median and sigma")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.seconds is not None:
            return self.seconds
        if self.low is not None and self.high is not None:
            return rng.uniform(self.low, self.high)
        assert self.median is not None
        assert self.sigma is not None
        return rng.lognormvariate(math.log(self.median), self.sigma)


class Hang(_Strict):
    """Never answer; hold the connection until the client gives up (or ``max_seconds``)."""

    kind: Literal["hang"] = "hang"
    max_seconds: float | None = Field(default=None, gt=0)


class Reset(_Strict):
    """Abort the TCP connection with an RST: the client sees 'connection reset by peer'."""

    kind: Literal["reset"] = "reset"


class Close(_Strict):
    """Close the connection cleanly without a response (curl: 'Empty reply from server')."""

    kind: Literal["close"] = "close"


class Drop(_Strict):
    """Let the broker act on the request, then never answer: the response is lost.

    The order is booked but the client hears nothing until it gives up (or ``max_seconds``
    pass and the connection is closed): the ambiguous outcome a trading client must settle
    by asking the broker, never by sending the order again.
    """

    kind: Literal["drop"] = "drop"
    max_seconds: float | None = Field(default=None, gt=0)


class Empty(_Strict):
    """Answer with a status and a zero-length body where JSON was due."""

    kind: Literal["empty"] = "empty"
    status: int = Field(default=200, ge=100, le=599)


class Malformed(_Strict):
    """Answer 200 with a body that claims to be JSON and isn't."""

    kind: Literal["malformed"] = "malformed"
    text: str = '{"rt_cd":"0","msg_cd":"MCA00000","output":{'


class Truncated(_Strict):
    """Declare the whole body's length, send part of it, then close the connection."""

    kind: Literal["truncated"] = "truncated"
    fraction: float = Field(default=0.5, ge=0, lt=1)


FaultAction = Annotated[
    Error | Delay | Hang | Drop | Reset | Close | Empty | Malformed | Truncated,
    Field(discriminator="kind"),
]


class When(_Strict):
    """When a matching request is faulted. All given conditions must hold.

    Times are seconds on the mock's clock (since it started or was last reset). ``for``
    is relative to ``from`` (or to the moment the rule is added). ``first`` faults the first
    N matching requests; ``every`` faults every Nth; ``probability`` draws from the plan's
    seeded RNG, so the same seed faults the same requests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: float | None = Field(default=None, alias="from", ge=0)
    until: float | None = Field(default=None, ge=0)
    for_: float | None = Field(default=None, alias="for", gt=0)
    first: int | None = Field(default=None, ge=1)
    every: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _window(self) -> When:
        if self.until is not None and self.for_ is not None:
            raise ValueError("give either 'until' or 'for', not both")
        if self.from_ is not None and self.until is not None and self.until <= self.from_:
            raise ValueError("'until' must be later than 'from'")
        return self

    def resolved(self, added_at: float) -> When:
        """Pin a relative window (``for``) to absolute clock readings."""
        if self.for_ is None:
            return self
        start = self.from_ if self.from_ is not None else added_at
        return self.model_copy(update={"from_": start, "until": start + self.for_, "for_": None})

    def in_window(self, now: float) -> bool:
        if self.from_ is not None and now < self.from_:
            return False
        return not (self.until is not None and now >= self.until)


class FaultRule(_Strict):
    """A named fault: where it strikes, what it does, when it is active."""

    id: RuleId = None
    where: Where = Where()
    what: FaultAction
    when: When = When()
