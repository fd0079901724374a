"""Access tokens and approval keys, under KIS's issuance rules.

- A token lives ``token_ttl_s`` (24 h).
- One issuance per ``token_interval_s`` (60 s) per app key: any tokenP call within the interval
  of the last successful one gets 403 EGW00133. The interval counts answered calls, new or reused.
- A call after the interval but within ``token_reuse_s`` (6 h) of the current token's issue
  returns that same token.
- Every realtime approval key issued is remembered with its app key (``ApprovalKeys``), so a
  feed mock in the same process accepts exactly the keys this broker issued.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass

APPKEY_LENGTH = 36
APPSECRET_LENGTH = 180


@dataclass
class Token:
    value: str
    appkey: str
    issued_at: float
    expires_at: float
    revoked: bool = False


class TokenRefused(Exception):
    """Issuance refused; ``code`` is the OAuth-style error code to answer with."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TokenCheck(Exception):
    """A bearer token failed validation; ``code`` is EGW00121 or EGW00123."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class ApprovalKeys:
    """Realtime approval keys issued, each with the app key it was issued to.

    One object for the broker's whole life: a reset empties it in place, so a feed mock
    holding it sees the reset too.
    """

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def add(self, approval_key: str, appkey: str) -> None:
        self._owners[approval_key] = appkey

    def appkey_of(self, approval_key: str) -> str | None:
        """The app key ``approval_key`` was issued to; None if this broker never issued it."""
        return self._owners.get(approval_key)

    def keys(self) -> list[str]:
        return list(self._owners)

    def clear(self) -> None:
        self._owners.clear()

    def __len__(self) -> int:
        return len(self._owners)


class TokenBook:
    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.approvals = ApprovalKeys()
        self.reset()

    def reset(self) -> None:
        self.approvals.clear()
        self._rng = random.Random(f"squall-tokens:{self._seed}")
        self._by_value: dict[str, Token] = {}
        self._current: dict[str, Token] = {}
        self._last_answer: dict[str, float] = {}
        self._secrets: dict[str, str] = {}
        self.issued = 0

    def check_credentials(self, appkey: object, appsecret: object) -> tuple[str, str]:
        """Well-formed keys, and the same secret every time for one app key."""
        if not isinstance(appkey, str) or len(appkey) != APPKEY_LENGTH:
            raise TokenRefused("EGW00103")
        if not isinstance(appsecret, str) or len(appsecret) != APPSECRET_LENGTH:
            raise TokenRefused("EGW00105")
        if not self.bind_secret(appkey, appsecret):
            raise TokenRefused("EGW00105")
        return appkey, appsecret

    def bind_secret(self, appkey: str, secret: str) -> bool:
        """Whether ``secret`` is the one ``appkey`` was first seen with (binding it if new):
        the mock has no registry of apps, so the first pair it sees is the registered one."""
        return self._secrets.setdefault(appkey, secret) == secret

    def issue(
        self, appkey: str, now: float, *, interval: float, ttl: float, reuse: float
    ) -> tuple[Token, bool]:
        """The token to answer with and whether it is new. Raises TokenRefused(EGW00133)."""
        last = self._last_answer.get(appkey)
        if last is not None and now - last < interval:
            raise TokenRefused("EGW00133")
        self._last_answer[appkey] = now
        current = self._current.get(appkey)
        if (
            current is not None
            and not current.revoked
            and now < current.expires_at
            and now - current.issued_at < reuse
        ):
            return current, False
        token = Token(self._mint(appkey, ttl), appkey, now, now + ttl)
        self._by_value[token.value] = token
        self._current[appkey] = token
        self.issued += 1
        return token, True

    def _mint(self, appkey: str, ttl: float) -> str:
        """A JWT-shaped opaque string, like KIS's, drawn from the seeded RNG."""

        def part(payload: dict[str, object]) -> str:
            raw = json.dumps(payload, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        header = part({"typ": "JWT", "alg": "HS512"})
        claims = part(
            {
                "sub": "token",
                "aud": appkey[:8],
                "jti": f"{self._rng.getrandbits(64):016x}",
                "seq": self.issued + 1,  # not the clock: tokens must repeat run to run
                "ttl": ttl,
            }
        )
        signature = base64.urlsafe_b64encode(self._rng.randbytes(64)).rstrip(b"=").decode()
        return f"{header}.{claims}.{signature}"

    def secrets_issued(self) -> tuple[list[str], list[str]]:
        """Every access token and approval key issued since the last reset: what a harness
        searches its reports for, as none may ever be printed."""
        return list(self._by_value), self.approvals.keys()

    def current(self, appkey: str) -> Token | None:
        """The token last issued to ``appkey``, unless it was revoked."""
        return self._current.get(appkey)

    def validate(self, value: str, appkey: str | None, now: float) -> Token:
        """The live token ``value``; ``appkey`` None: any app key's (Kiwoom requests carry
        only the bearer token). Raises TokenCheck."""
        token = self._by_value.get(value)
        if token is None or token.revoked or (appkey is not None and token.appkey != appkey):
            raise TokenCheck("EGW00121")
        if now >= token.expires_at:
            raise TokenCheck("EGW00123")
        return token

    def revoke(self, value: str, appkey: str) -> bool:
        token = self._by_value.get(value)
        if token is None or token.appkey != appkey:
            return False
        token.revoked = True
        if self._current.get(appkey) is token:
            del self._current[appkey]
        return True

    def expire_all(self, now: float) -> int:
        """Make every live token expired now (the storm a scenario starts with)."""
        count = 0
        for token in self._by_value.values():
            if not token.revoked and token.expires_at > now:
                token.expires_at = now
                count += 1
        return count

    def approval_key(self, appkey: str) -> str:
        """A realtime approval key for ``appkey``: UUID-shaped, from the seeded RNG, and
        registered in ``approvals``."""
        raw = f"{self._rng.getrandbits(128):032x}"
        key = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
        self.approvals.add(key, appkey)
        return key
