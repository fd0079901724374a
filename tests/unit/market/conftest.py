"""Shared pieces for the feed client's unit tests: wire messages, an in-memory server.

Like the broker tests, these speak the KIS realtime wire format directly (records written
out field by field here, JSON parsed with ``json``), so a mistake in the client's idea of
the protocol cannot hide in shared code. The in-memory ``FakeServer`` stands where the
network would: the client gets it through its ``connect`` seam, and nothing opens a socket.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from system.market import FeedClient, FeedConnectionClosed, FeedSettings, PriceUpdate

URL = "ws://feed.test:21000/tryitout"
# Every wait for the client gives up after this much virtual time, so a client that died or
# never does what a test waits for fails the test at once instead of hanging it.
WAIT_S = 600.0

# A realistic H0STCNT0 record, 46 fields in the documented order (MKSC_SHRN_ISCD,
# STCK_CNTG_HOUR, STCK_PRPR, PRDY_VRSS_SIGN, PRDY_VRSS, PRDY_CTRT, …, VI_STND_PRC).
TRADE_SAMPLE = (
    "005930^093354^71900^2^400^0.56^71823.83^71600^72400^71500^71900^71800^10^1000"
    "^219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^2^300^090820"
    "^5^-500^092619^2^400^20260302^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92"
    "^0^0^71900"
)
TRADE_FIELDS = TRADE_SAMPLE.split("^")
CODE, TIME, PRICE, SIGN, CHANGE, RATE, CNTG_VOL, ACML_VOL = 0, 1, 2, 3, 4, 5, 12, 13

# A realistic H0STASP0 record, 59 fields: code, BSOP_HOUR, HOUR_CLS_CODE, ASKP1..10,
# BIDP1..10, ASKP_RSQN1..10, BIDP_RSQN1..10, then 16 totals and expected-execution fields.
BOOK_FIELDS = [
    "005930",
    "093354",
    "0",
    *(str(71900 + 100 * i) for i in range(10)),
    *(str(71800 - 100 * i) for i in range(10)),
    *(str(1000 + i) for i in range(10)),
    *(str(2000 + i) for i in range(10)),
    *("500000", "600000", "0", "0", "0", "0", "0", "0", "3", "0.00", "1000", "0", "0"),
    *("0", "0", "0"),
]
ASKP1, BIDP1, ASKP_RSQN1, BIDP_RSQN1 = 3, 13, 23, 33


def trade_record(
    code: str = "005930", *, volume: int = 10, accumulated: int = 1000, **at: str
) -> str:
    """One H0STCNT0 record; ``at`` overrides fields by index name (``price="72000"``)."""
    fields = list(TRADE_FIELDS)
    fields[CODE], fields[CNTG_VOL], fields[ACML_VOL] = code, str(volume), str(accumulated)
    for name, value in at.items():
        fields[
            {"time": TIME, "price": PRICE, "sign": SIGN, "change": CHANGE, "rate": RATE}[name]
        ] = value
    return "^".join(fields)


def book_record(code: str = "005930", **overrides: str) -> str:
    """One H0STASP0 record; ``overrides`` set fields by index (``f3="0"``)."""
    fields = list(BOOK_FIELDS)
    fields[0] = code
    for name, value in overrides.items():
        fields[int(name[1:])] = value
    return "^".join(fields)


def frame(tr_id: str, *records: str, count: int | None = None, flag: str = "0") -> str:
    n = len(records) if count is None else count
    return f"{flag}|{tr_id}|{n:03d}|{'^'.join(records)}"


def trades(*records: str) -> str:
    return frame("H0STCNT0", *records)


def ack(
    tr_id: str,
    tr_key: str,
    msg_cd: str = "OPSP0000",
    msg1: str = "SUBSCRIBE SUCCESS",
    rt_cd: str = "0",
) -> str:
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if rt_cd == "0":
        body["output"] = {"iv": "0123456789abcdef", "key": "k" * 32}
    return json.dumps(
        {"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body},
        ensure_ascii=False,
    )


def pingpong(stamp: str = "20260302093000") -> str:
    return json.dumps({"header": {"tr_id": "PINGPONG", "datetime": stamp}})


def now() -> float:
    return asyncio.get_running_loop().time()


def close_to(expected: float) -> Any:
    """``expected`` as looptime keeps loop times: to the microsecond."""
    return pytest.approx(expected, abs=2e-6)


class FakeConnection:
    """One in-memory connection: the client's ``Connection``, the test's server side."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.inbox: asyncio.Queue[str | FeedConnectionClosed] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed = False
        self.closed_by_client = False
        self.reading = False
        self.opened_at = now()
        self.closed_at: float | None = None

    # -- the client's side --
    async def send(self, text: str) -> None:
        if self.closed:
            raise FeedConnectionClosed("closed", code=1006)
        self.sent.append(text)
        self.server.heard(self, text)

    async def recv(self) -> str:
        if self.closed and self.inbox.empty():
            raise FeedConnectionClosed("closed", code=1006)
        self.reading = True
        try:
            item = await self.inbox.get()
        finally:
            self.reading = False
        if isinstance(item, FeedConnectionClosed):
            self.closed = True
            raise item
        return item

    async def close(self) -> None:
        self.closed_by_client = True
        if not self.closed:
            self.closed = True
            self.closed_at = now()
            self.inbox.put_nowait(FeedConnectionClosed("closed by the client", code=1000))

    # -- the server's side --
    def push(self, *texts: str) -> None:
        for text in texts:
            self.inbox.put_nowait(text)

    def drop(self, code: int = 1011, reason: str = "going away") -> None:
        """The server closes the connection."""
        self.closed_at = now()
        self.inbox.put_nowait(FeedConnectionClosed(f"closed {code}", code=code, reason=reason))

    async def delivered(self) -> None:
        """Wait until the client has read and handled everything pushed so far (or has
        closed this connection)."""
        settled = 0
        for _ in range(1000):
            await asyncio.sleep(0)
            if (self.inbox.empty() and self.reading) or self.closed_by_client:
                settled += 1
                if settled == 5:  # and tasks the client started meanwhile have run too
                    return
            else:
                settled = 0
        raise AssertionError("the client did not come back to read the connection")

    def messages(self) -> list[dict[str, Any]]:
        """What the client sent, JSON-decoded (PINGPONG echoes included)."""
        return [json.loads(text) for text in self.sent]

    def registrations(self) -> list[tuple[str, str, str]]:
        """(tr_type, tr_id, tr_key) of each subscribe/unsubscribe the client sent."""
        return [
            (m["header"]["tr_type"], m["body"]["input"]["tr_id"], m["body"]["input"]["tr_key"])
            for m in self.messages()
            if "body" in m
        ]


class FakeServer:
    """Accepts connections for the client's ``connect`` seam and acks subscriptions.

    ``failures`` are raised by the next connect attempts, in order; ``refuse`` maps a
    (tr_id, code) to the (msg_cd, msg1) the server answers instead of OPSP0000.
    """

    def __init__(self) -> None:
        self.connections: list[FakeConnection] = []
        self.attempts: list[float] = []
        self.urls: list[str] = []
        self.failures: list[BaseException] = []
        self.hang = False
        self.refuse: dict[tuple[str, str], tuple[str, str]] = {}
        self.auto_ack = True
        self._changed = asyncio.Event()

    async def connect(self, url: str) -> FakeConnection:
        self.attempts.append(now())
        self.urls.append(url)
        self._changed.set()
        if self.hang:
            await asyncio.Event().wait()
        if self.failures:
            raise self.failures.pop(0)
        connection = FakeConnection(self)
        self.connections.append(connection)
        return connection

    def heard(self, connection: FakeConnection, text: str) -> None:
        message = json.loads(text)
        if not self.auto_ack or "body" not in message:
            return
        tr_id, tr_key = message["body"]["input"]["tr_id"], message["body"]["input"]["tr_key"]
        if message["header"]["tr_type"] == "2":
            connection.push(ack(tr_id, tr_key, "OPSP0001", "UNSUBSCRIBE SUCCESS"))
        elif (tr_id, tr_key) in self.refuse:
            msg_cd, msg1 = self.refuse[(tr_id, tr_key)]
            connection.push(ack(tr_id, tr_key, msg_cd, msg1, rt_cd="1"))
        else:
            connection.push(ack(tr_id, tr_key))

    async def connection(self, number: int) -> FakeConnection:
        """The ``number``-th connection (1-based), once the client has opened it."""
        async with asyncio.timeout(WAIT_S):
            while len(self.connections) < number:
                self._changed.clear()
                await self._changed.wait()
        # Let the client send its subscriptions and read the acks.
        connection = self.connections[number - 1]
        await connection.delivered()
        return connection

    async def attempt(self, number: int) -> None:
        """Wait until the client has made ``number`` connect attempts."""
        async with asyncio.timeout(WAIT_S):
            while len(self.attempts) < number:
                self._changed.clear()
                await self._changed.wait()


class Quotes:
    """The ``resync`` callable: REST prices by code, with the calls it received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.volume = 5000
        self.price = 72500
        self.delay = 0.0
        self.error: Exception | None = None

    async def __call__(self, code: str) -> PriceUpdate:
        self.calls.append((code, now()))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return PriceUpdate(code, self.price, 1000, 1.4, self.volume, at=now(), source="rest")


class Approvals:
    """The ``approval`` callable: hands out approval-key-1, -2, … (or raises ``errors``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors: list[Exception] = []

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return f"approval-key-{self.calls}"


def settings(**overrides: Any) -> FeedSettings:
    values: dict[str, Any] = {
        "url": URL,
        "stall_after_s": 60.0,
        "backoff_base_s": 1.0,
        "backoff_max_s": 8.0,
        "connect_timeout_s": 5.0,
    }
    values.update(overrides)
    return FeedSettings(**values)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def quotes() -> Quotes:
    return Quotes()


@pytest.fixture
def approvals() -> Approvals:
    return Approvals()


@pytest.fixture
async def make_feed(
    server: FakeServer, quotes: Quotes, approvals: Approvals
) -> AsyncIterator[Callable[..., FeedClient]]:
    """Build feed clients on the fake server with a seeded rng; closed after the test."""
    clients: list[FeedClient] = []

    def build(seed: int = 7, **overrides: Any) -> FeedClient:
        client = FeedClient(
            settings(**overrides),
            credential=approvals,
            resync=quotes,
            connect=server.connect,
            rng=random.Random(seed),
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
async def feed(make_feed: Callable[..., FeedClient]) -> FeedClient:
    return make_feed()


def seeded_delays(seed: int, attempts: int, base: float = 1.0, cap: float = 8.0) -> list[float]:
    """The reconnect delays a client on ``random.Random(seed)`` must wait, written out from
    the documented rule: base × 2^(n-1), capped, times a uniform draw in [0.5, 1]."""
    rng = random.Random(seed)
    return [min(cap, base * 2 ** (n - 1)) * rng.uniform(0.5, 1.0) for n in range(1, attempts + 1)]
