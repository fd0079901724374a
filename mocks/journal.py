"""The evidence: every request a mock saw, what it answered, and the fault it applied.

HTTP mocks journal one ``Entry`` per request; the realtime feed journals one ``FeedEntry`` per
connection event (messages, acks, frames, heartbeats, faults). Both journals are bounded.

Expectations are checked against journals, so entries carry only facts a scenario can
compare run to run: loop-clock offsets (not wall time) and no secrets. Credentials and
tokens are replaced by a short fingerprint, enough to tell two tokens apart and nothing more.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

# Header and body keys whose values must never be stored or printed.
SECRET_KEYS = frozenset(
    {
        "appsecret",
        "secretkey",
        "authorization",
        "token",
        "access_token",
        "approval_key",
        "x-squall-control-token",
        "cookie",
        "set-cookie",
    }
)

# Headers worth keeping: the broker protocol's own. Transport noise (user-agent,
# accept-encoding, content-length) would make journals differ between HTTP clients.
PROTOCOL_HEADERS = frozenset(
    {
        "authorization",
        "appkey",
        "appsecret",
        "secretkey",
        "tr_id",
        "tr_cont",
        "custtype",
        "hashkey",
        "content-type",
        "api-id",
        "cont-yn",
        "next-key",
    }
)


def fingerprint(secret: str) -> str:
    """A stable, irreversible stand-in for a secret: 'sha256:1a2b3c4d'."""
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]
    return f"sha256:{digest}"


def redact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Copy ``values`` with every secret replaced by its fingerprint (case-insensitive keys)."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key.lower() in SECRET_KEYS and isinstance(value, str) and value:
            scheme, _, rest = value.partition(" ")
            if key.lower() == "authorization" and rest:
                clean[key] = f"{scheme} {fingerprint(rest)}"
            else:
                clean[key] = fingerprint(value)
        elif isinstance(value, Mapping):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


def protocol_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The broker-protocol headers of a request, lower-cased and redacted."""
    kept = {name.lower(): value for name, value in headers if name.lower() in PROTOCOL_HEADERS}
    return redact(kept)


class _Numbered(Protocol):
    seq: int


E = TypeVar("E", bound=_Numbered)


@dataclass
class Entry:
    """One request and its outcome. ``at`` and ``duration`` are loop-clock seconds."""

    seq: int
    at: float
    method: str
    path: str
    tr_id: str | None
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    status: int | None = None
    code: str | None = None  # rt_cd/msg_cd or error_code of the answer, when it had one
    fault: str | None = None  # "<rule id>:<kind>" when a fault rule fired
    duration: float | None = None
    ok: bool | None = None  # the broker's verdict: a 2xx answer with rt_cd "0" (or no error)
    outcome: str = "answered"  # answered | reset | closed | truncated | abandoned | dropped
    # In Squall's terms, whichever broker (mocks.vocabulary): what the request was
    # (token, quote, order, ...) and what its answer's code means (budget-exceeded, ...).
    kind: str = "other"
    meaning: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _plain(self)


def _plain(entry: Entry | FeedEntry) -> dict[str, Any]:
    """``entry``'s fields as a dict, its dict fields copied one level deep.

    Entries hold flat JSON (header, query and body values are strings, numbers or shallow
    dicts), so ``dataclasses.asdict``'s recursive deep copy is wasted work: it cost a few
    percent of every scenario run, which reads each entry at least twice."""
    return {
        name: dict(value) if isinstance(value, dict) else value
        for name, value in vars(entry).items()
    }


class BoundedLog(Generic[E]):
    """An append-only list numbered from 1, bounded so long soaks can't exhaust memory."""

    def __init__(self, limit: int = 200_000) -> None:
        self._entries: list[E] = []
        self._seq = 0
        self.limit = limit
        self.dropped = 0

    def _append(self, make: Callable[[int], E]) -> E:
        self._seq += 1
        entry = make(self._seq)
        self._entries.append(entry)
        if len(self._entries) > self.limit:
            # Keep the newest; the count of what was dropped is reported with every query.
            excess = len(self._entries) - self.limit
            del self._entries[:excess]
            self.dropped += excess
        return entry

    def _select(self, since: int, limit: int | None, keep: Callable[[E], bool]) -> list[E]:
        """Entries with ``seq > since`` that ``keep`` accepts, oldest first, at most ``limit``."""
        if not self._entries:
            return []
        # Numbers are consecutive (only the oldest are ever dropped): skip straight to since.
        start = max(0, since - self._entries[0].seq + 1)
        found = (entry for entry in itertools.islice(self._entries, start, None) if keep(entry))
        return list(itertools.islice(found, limit))

    def clear(self) -> None:
        self._entries.clear()
        self._seq = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)


class Journal(BoundedLog[Entry]):
    """The HTTP mocks' journal: one entry per request, queryable by path, method, tr_id, code."""

    def open(
        self,
        *,
        at: float,
        method: str,
        path: str,
        tr_id: str | None,
        headers: dict[str, str],
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        kind: str = "other",
    ) -> Entry:
        return self._append(
            lambda seq: Entry(
                seq,
                at,
                method,
                path,
                tr_id,
                headers,
                query or {},
                body and redact(body),
                kind=kind,
            )
        )

    def entries(
        self,
        *,
        since: int = 0,
        path: str | None = None,
        method: str | None = None,
        tr_id: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """Entries with ``seq > since`` matching every given filter, oldest first; ``code``
        matches the broker's code or its meaning (``budget-exceeded``)."""
        method = method and method.upper()
        tr_id = tr_id and tr_id.upper()
        return self._select(
            since,
            limit,
            lambda entry: (
                (path is None or entry.path == path)
                and (method is None or entry.method == method)
                and (tr_id is None or (entry.tr_id or "").upper() == tr_id)
                and (code is None or code in (entry.code, entry.meaning))
                and (kind is None or entry.kind == kind)
            ),
        )


FeedEntryKind = Literal[
    "connect", "disconnect", "refused", "message", "ack", "frame", "pingpong", "fault"
]


@dataclass
class FeedEntry:
    """One event on a realtime feed connection. ``at`` is loop-clock seconds.

    - ``connect``/``disconnect``: a connection opened or ended (``code``: the close code).
    - ``message``: what the client sent, redacted (``message``), or an excerpt of text
      that isn't JSON (``detail``); ``outcome`` says how it was read (subscribe,
      unsubscribe, pingpong, invalid).
    - ``ack``: a subscribe/unsubscribe answer (``code``: its msg_cd or return code;
      ``meaning``: subscribed, unsubscribed or too-many, whichever the protocol).
    - ``frame``: a data frame, journaled when written (or when a fault dropped it): its
      ``records``, the ``step`` of its first record and ``outcome`` (sent, duplicate,
      reordered, delayed, malformed, skipped).
    - ``pingpong``: a heartbeat sent; ``outcome`` turns from ``sent`` to ``echoed`` when the
      client echoes it back.
    - ``fault``: a connection-level fault applied (close, reset, stall, slow-reader, restart).
    """

    seq: int
    at: float
    connection: int | None
    kind: FeedEntryKind
    tr_id: str | None = None
    tr_key: str | None = None
    code: str | None = None
    records: int | None = None
    step: int | None = None
    fault: str | None = None  # "<rule id>:<kind>" when a fault rule fired
    outcome: str | None = None
    detail: str | None = None
    message: dict[str, Any] | None = None
    meaning: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _plain(self)


class FeedJournal(BoundedLog[FeedEntry]):
    """The feed's journal: connections, client messages, acks, frames, heartbeats, faults."""

    def record(
        self,
        *,
        at: float,
        connection: int | None,
        kind: FeedEntryKind,
        tr_id: str | None = None,
        tr_key: str | None = None,
        code: str | None = None,
        records: int | None = None,
        step: int | None = None,
        fault: str | None = None,
        outcome: str | None = None,
        detail: str | None = None,
        message: Mapping[str, Any] | None = None,
        meaning: str | None = None,
    ) -> FeedEntry:
        clean = None if message is None else redact(message)
        return self._append(
            lambda seq: FeedEntry(
                seq=seq,
                at=at,
                connection=connection,
                kind=kind,
                tr_id=tr_id,
                tr_key=tr_key,
                code=code,
                records=records,
                step=step,
                fault=fault,
                outcome=outcome,
                detail=detail,
                message=clean,
                meaning=meaning,
            )
        )

    def entries(
        self,
        *,
        since: int = 0,
        kind: str | None = None,
        connection: int | None = None,
        tr_id: str | None = None,
        tr_key: str | None = None,
        code: str | None = None,
        limit: int | None = None,
    ) -> list[FeedEntry]:
        """Entries with ``seq > since`` matching every given filter, oldest first."""
        tr_id = tr_id and tr_id.upper()
        return self._select(
            since,
            limit,
            lambda entry: (
                (kind is None or entry.kind == kind)
                and (connection is None or entry.connection == connection)
                and (tr_id is None or (entry.tr_id or "").upper() == tr_id)
                and (tr_key is None or entry.tr_key == tr_key)
                and (code is None or entry.code == code)
            ),
        )


ProxyEntryKind = Literal["connect", "disconnect", "fault"]
ProxyCloseHow = Literal["fin", "reset", "cut", "refused", "unreachable", "shutdown"]
ProxySide = Literal["client", "upstream", "proxy"]


@dataclass
class ProxyEntry:
    """One event of a proxied TCP connection. ``at`` is loop-clock seconds.

    - ``connect``: the proxy accepted a client connection (numbered from 1).
    - ``fault``: a rule first acted on the connection (``fault``: "<rule id>:<kind>"),
      in ``direction`` for stream faults.
    - ``disconnect``: the connection ended. ``closed_by`` says who ended it first (client,
      upstream, or the proxy itself), ``how``: fin (a clean close, passed on), reset (an
      RST, from a peer or a reset fault), cut (a cut fault), refused (a refuse fault),
      unreachable (the upstream could not be reached: ``detail`` says why), shutdown (the
      proxy stopped). ``upstream_bytes``/``downstream_bytes`` are the bytes forwarded
      client → server and server → client over the connection's life.
    """

    seq: int
    at: float
    connection: int
    kind: ProxyEntryKind
    direction: str | None = None
    fault: str | None = None  # "<rule id>:<kind>" when a fault rule acted
    closed_by: ProxySide | None = None
    how: ProxyCloseHow | None = None
    upstream_bytes: int | None = None
    downstream_bytes: int | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))  # flat fields only: nothing to copy deeper


class ProxyJournal(BoundedLog[ProxyEntry]):
    """The TCP proxy's journal: connections opened and closed, and the faults applied."""

    def record(
        self,
        *,
        at: float,
        connection: int,
        kind: ProxyEntryKind,
        direction: str | None = None,
        fault: str | None = None,
        closed_by: ProxySide | None = None,
        how: ProxyCloseHow | None = None,
        upstream_bytes: int | None = None,
        downstream_bytes: int | None = None,
        detail: str | None = None,
    ) -> ProxyEntry:
        return self._append(
            lambda seq: ProxyEntry(
                seq=seq,
                at=at,
                connection=connection,
                kind=kind,
                direction=direction,
                fault=fault,
                closed_by=closed_by,
                how=how,
                upstream_bytes=upstream_bytes,
                downstream_bytes=downstream_bytes,
                detail=detail,
            )
        )

    def entries(
        self,
        *,
        since: int = 0,
        kind: str | None = None,
        connection: int | None = None,
        how: str | None = None,
        fault: str | None = None,
        limit: int | None = None,
    ) -> list[ProxyEntry]:
        """Entries with ``seq > since`` matching every given filter, oldest first.

        ``fault`` matches a rule id ("slow-db") or a full label ("slow-db:latency")."""
        return self._select(
            since,
            limit,
            lambda entry: (
                (kind is None or entry.kind == kind)
                and (connection is None or entry.connection == connection)
                and (how is None or entry.how == how)
                and (
                    fault is None
                    or entry.fault == fault
                    or (entry.fault or "").rpartition(":")[0] == fault
                )
            ),
        )
