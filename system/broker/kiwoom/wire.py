"""Kiwoom's dialect on the wire, for the shared ``BrokerGateway``.

Every TR is a POST with a JSON body; the headers name it (``api-id``) and carry the bearer
token and, past the first page, ``cont-yn: Y`` with the previous answer's ``next-key``.
Every answer carries ``return_code`` (0 is success) and ``return_msg``, under HTTP 200 or
an error status alike, so the body is judged first (``BROKER_FACTS.md``, Kiwoom's
errors.py):

- 1700, requests over the per-second budget ("허용된 요청 개수를 초과하였습니다"): wait and
  retry, as for KIS's EGW00201.
- 8003, 8005, 8006, 8009, 8015, 8016, the token's codes (expired, invalid, not this app's,
  ...): drop the token and retry once with a new one, as for KIS's EGW00123/EGW00121.
- anything else non-zero: refused, with Kiwoom's code and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from system.broker.gateway import Call, Verdict, refusal

TOKEN_PATH = "/oauth2/token"
JSON_CONTENT = "application/json;charset=UTF-8"
BUDGET_EXCEEDED = "1700"
TOKEN_REFUSED = frozenset({"8003", "8005", "8006", "8009", "8015", "8016"})


class KiwoomWire:
    name = "Kiwoom"
    token_endpoint = f"POST {TOKEN_PATH}"

    def headers(self, call: Call, token: str | None) -> dict[str, str]:
        headers = {"content-type": JSON_CONTENT}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if call.tr_id is not None:
            headers["api-id"] = call.tr_id
        if call.next_key:
            headers["cont-yn"] = "Y"
            headers["next-key"] = call.next_key
        return headers

    def verdict(self, body: Mapping[str, Any]) -> Verdict | None:
        code = return_code(body)
        if code is None:
            return None
        message = str(body.get("return_msg", ""))
        if code == "0":
            return Verdict("ok", code, message)
        return refusal(code, message, token=TOKEN_REFUSED, budget=BUDGET_EXCEEDED)


def return_code(body: Mapping[str, Any]) -> str | None:
    """``return_code`` as text ("0", "1700"), None when absent or not a whole number.

    Kiwoom documents a number; a client that also takes "0" loses nothing."""
    value = body.get("return_code")
    if isinstance(value, bool):  # a JSON true is not a code
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return str(int(value))
    return None
