"""The evidence: every request a mock saw, what it answered, and the fault it applied.

Expectations are checked against journals, so entries carry only facts a scenario can
compare run to run: loop-clock offsets (not wall time) and no secrets. Credentials and
tokens are replaced by a short fingerprint, enough to tell two tokens apart and nothing more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    """An append-only, queryable list of entries, bounded so long soaks can't exhaust memory."""

    def __init__(self, limit: int = 200_000) -> None:
        self._entries: list[Entry] = []
        self._seq = 0
        self.limit = limit
        self.dropped = 0

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
    ) -> Entry:
        self._seq += 1
        entry = Entry(
            self._seq, at, method, path, tr_id, headers, query or {}, body and redact(body)
        )
        self._entries.append(entry)
        if len(self._entries) > self.limit:
            # Keep the newest; the count of what was dropped is reported with every query.
            excess = len(self._entries) - self.limit
            del self._entries[:excess]
            self.dropped += excess
        return entry

    def clear(self) -> None:
        self._entries.clear()
        self._seq = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def entries(
        self,
        *,
        since: int = 0,
        path: str | None = None,
        method: str | None = None,
        tr_id: str | None = None,
        code: str | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """Entries with ``seq > since`` matching every given filter, oldest first."""
        found = [
            entry
            for entry in self._entries
            if entry.seq > since
            and (path is None or entry.path == path)
            and (method is None or entry.method == method.upper())
            and (tr_id is None or (entry.tr_id or "").upper() == tr_id.upper())
            and (code is None or entry.code == code)
        ]
        return found[:limit] if limit is not None else found
