"""KIS response bodies and the message catalogue.

Sourced codes (BROKER_FACTS.md): EGW00133, EGW00123, EGW00121, EGW00201, EGW00103,
MCA00000, APBK0013, OPSQ0002. The rest are the mock's own choices in KIS's style for cases
the public sources don't document (a wrong account number, a hashkey mismatch, ...): they
are marked below so nobody mistakes them for captured broker behaviour.
"""

from __future__ import annotations

from typing import Any

# Gateway (EGW) and service (OPSQ) errors: rt_cd "1" bodies, sent with the switchable
# gateway status (500 by default, as most clients have seen them).
GATEWAY_MESSAGES: dict[str, str] = {
    "EGW00103": "유효하지 않은 AppKey입니다.",
    "EGW00105": "유효하지 않은 AppSecret입니다.",  # mock's choice of code
    "EGW00121": "유효하지 않은 token 입니다.",
    "EGW00123": "기간이 만료된 token 입니다.",
    "EGW00201": "초당 거래건수를 초과하였습니다.",
    "OPSQ0002": "없는 서비스 코드 입니다",
}

# Business answers: rt_cd "0" on success, "1" for rejections, HTTP 200 either way.
BUSINESS_MESSAGES: dict[str, str] = {
    "MCA00000": "정상처리 되었습니다.",
    "APBK0013": "주문 전송 완료 되었습니다.",
    "KIOK0560": "조회할 내용이 없습니다",  # mock's choice: unknown or unlisted code
    "OPSQ2001": "필수 입력값이 누락되었습니다",  # mock's choice: missing or malformed field
    "OPSQ2002": "계좌번호가 유효하지 않습니다",  # mock's choice
    "OPSQ2003": "hashkey 가 주문 내용과 일치하지 않습니다",  # mock's choice
    "APBK0952": "주문가능금액을 초과 했습니다",  # mock's choice
    "APBK0400": "주문 가능한 수량을 초과 했습니다",  # mock's choice
    "APBK1680": "호가단위가 맞지 않습니다",  # mock's choice
    "APBK1681": "상하한가 범위를 벗어난 주문입니다",  # mock's choice
    # mock's choice: KRX takes orders into a VI's auction; the mock has none (account.py)
    "APBK1690": "변동성완화장치(VI) 발동 중입니다. 시장가 주문은 단일가매매 종료 후 하세요",
}

# Token endpoint errors use OAuth-style keys, not rt_cd/msg_cd (third-party captures).
OAUTH_MESSAGES: dict[str, str] = {
    "EGW00133": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
    "EGW00103": "유효하지 않은 AppKey입니다.",
    "EGW00105": "유효하지 않은 AppSecret입니다.",  # mock's choice of code
    "EGW00002": "grant_type 이 유효하지 않습니다.",  # mock's choice
    "EGW00121": "유효하지 않은 token 입니다.",
}

TOKEN_RATE_STATUS = 403


def gateway_error(code: str, detail: str | None = None) -> dict[str, Any]:
    message = GATEWAY_MESSAGES.get(code) or BUSINESS_MESSAGES.get(code) or code
    return {"rt_cd": "1", "msg_cd": code, "msg1": f"{message}({detail})" if detail else message}


def rejection(code: str, detail: str | None = None) -> dict[str, Any]:
    message = BUSINESS_MESSAGES.get(code, code)
    return {"rt_cd": "1", "msg_cd": code, "msg1": f"{message}({detail})" if detail else message}


def success(code: str = "MCA00000", **fields: Any) -> dict[str, Any]:
    return {"rt_cd": "0", "msg_cd": code, "msg1": BUSINESS_MESSAGES[code], **fields}


def oauth_error(code: str) -> dict[str, Any]:
    return {"error_code": code, "error_description": OAUTH_MESSAGES.get(code, code)}


def is_gateway_code(code: str) -> bool:
    return code in GATEWAY_MESSAGES


def body_for(code: str, message: str | None = None) -> dict[str, Any]:
    """The body the broker sends for ``code``, as a fault rule asks for it by code alone."""
    if code == "EGW00133":
        body = oauth_error(code)
        if message:
            body["error_description"] = message
        return body
    body = gateway_error(code) if is_gateway_code(code) else rejection(code)
    if message:
        body["msg1"] = message
    return body
