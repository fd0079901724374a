"""Kiwoom's return codes, their messages, and the bodies and statuses that carry them.

Every Kiwoom answer is JSON with ``return_code`` (an int, 0 on success) and ``return_msg``.

Sources:
- Which code means what: the groups in Kiwoom's official SDK,
  Kiwoom-Securities/Kiwoom-REST-API ``kiwoom/core/errors.py`` (INPUT_VALIDATION_CODES
  1501-1517/1687/8020, RATE_LIMIT_CODES 1700, SYMBOL_NOT_FOUND_CODES 1901/1902,
  INVALID_CREDENTIAL_CODES 8001/8002/8011/8012, INVALID_TOKEN_CODES
  8003/8005/8006/8009/8015/8016). Its client retries once on 8005 (kiwoom/core/client.py).
- The messages: the API guide's 오류코드 sheet (``{?}`` marks an argument), as mirrored by
  third-party clients. Live captures quote them verbatim inside return_msg, e.g.
  "[1700:허용된 요청 개수를 초과하였습니다. API ID=ka10081]", "[8005:Token이 유효하지
  않습니다]", "[1902:종목 정보가 없습니다. 입력한 종목코드 값을 확인바랍니다. 종목코드=118970]".
- The ``wrapped`` style (``BrokerConfig.kiwoom_error_style``): those same captures show live
  servers answering HTTP 200 (429 for 1700) with a category in return_code and the specific
  code in brackets: 1 잘못된 요청입니다 [1504], 2 입력 값 오류입니다 [1511], 3 인증에
  실패했습니다 [8001/8005], 5 허용된 요청 개수를 초과하였습니다 [1700], 7 서비스를 처리하는 중에
  오류가 발생했습니다 [1902]. The categories of codes no capture shows are the mock's choice
  (marked below). ``specific`` (the default) follows the guide, the SDK and BROKER_FACTS.
- Order rejections: captured as "[2000](308003:주문단가를 입력하십시요)" with return_code
  2000 (20 in the wrapped style). Kiwoom's inner codes are not published, so the mock puts
  its account book's own reason code there (``mocks.broker.codes.BUSINESS_MESSAGES``).

HTTP status: 200 for every error (the captures), except 1700, whose status is
``BrokerConfig.kiwoom_rate_limit_status`` (429 by default).
"""

from __future__ import annotations

from typing import Any

from mocks.broker import codes as kis_codes
from mocks.broker.config import BrokerConfig, KiwoomErrorStyle

OK_MESSAGE = "정상적으로 처리되었습니다"  # au10001 and TR examples in the API guide
INQUIRY_DONE = "조회가 완료되었습니다"  # kt00007/kt00018 examples

RATE_LIMITED = 1700
TOKEN_INVALID = 8005
ORDER_REJECTED = 2000

MESSAGES: dict[int, str] = {
    1501: "API ID가 Null이거나 값이 없습니다",
    1504: "해당 URI에서는 지원하는 API ID가 아닙니다. API ID={}, URI={}",
    1505: "해당 API ID는 존재하지 않습니다. API ID={}",
    1511: "필수 입력 값에 값이 존재하지 않습니다. 필수입력 파라미터={}",
    1513: "Http Header에 authorization 필드가 설정되어 있어야 합니다",
    1514: "입력으로 들어온 Http Header의 authorization 필드 형식이 맞지 않습니다",
    1515: "Http Header의 authorization 필드 내 Grant Type이 미리 정의된 형식이 아닙니다",
    1516: "Http Header의 authorization 필드 내 Token이 정의되어 있지 않습니다",
    1517: "입력 값 형식이 올바르지 않습니다. 파라미터={} 실패사유= {}",
    1700: "허용된 요청 개수를 초과하였습니다. API ID={}",
    1901: "시장 코드값이 존재하지 않습니다. 종목코드={}",
    1902: "종목 정보가 없습니다. 입력한 종목코드 값을 확인바랍니다. 종목코드={}",
    1999: "예기치 못한 에러가 발생했습니다. 실패사유={}",
    8001: "App Key와 Secret Key 검증에 실패했습니다",
    8002: "App Key와 Secret Key 검증에 실패했습니다. 실패사유={}",
    8003: "Access Token을 조회하는데 실패했습니다. 실패사유={}",
    8005: "Token이 유효하지 않습니다",
    8006: "Access Token을 생성하는데 실패했습니다. 실패사유={}",
    8009: "Access Token을 발급하는데 실패했습니다. 실패사유={}",
    8011: "Access Token을 발급하는데 실패했습니다. 입력값에 grant_type이 들어오지 않았습니다",
    8012: "Access Token을 발급하는데 실패했습니다. grant_type의 값이 맞지 않습니다",
    8015: "Access Token을 폐기하는데 실패했습니다. 실패사유={}",
    8016: "Access Token을 폐기하는데 실패했습니다. 입력값에 Token이 들어오지 않았습니다",
    8020: "입력파라미터로 appkey 또는 secretkey가 들어오지 않았습니다.",
}

CATEGORIES: dict[int, str] = {
    1: "잘못된 요청입니다",
    2: "입력 값 오류입니다",
    3: "인증에 실패했습니다",
    5: "허용된 요청 개수를 초과하였습니다",
    7: "서비스를 처리하는 중에 오류가 발생했습니다",
}

# The wrapped style's category of each code. Captured: 1504→1, 1511→2, 1700→5, 1902→7,
# 8001/8005→3, 2000→20. The rest follow their neighbours (the mock's choice).
_CATEGORY: dict[int, int] = {
    **dict.fromkeys((1501, 1504, 1505), 1),
    **dict.fromkeys((1511, 1517), 2),
    **dict.fromkeys((1513, 1514, 1515, 1516), 3),
    1700: 5,
    **dict.fromkeys((1901, 1902, 1999), 7),
}
_ORDER_CATEGORY = 20


class KiwoomError(Exception):
    """A refusal in Kiwoom's terms: ``code`` and the arguments its message names."""

    def __init__(self, code: int, *args: object) -> None:
        super().__init__(code, *args)
        self.code = code
        self.args_ = args


class OrderRejected(KiwoomError):
    """A business refusal of an order (2000): ``reason`` is the inner code, the account
    book's own unless Kiwoom's is known; ``text`` its message when the book has none."""

    def __init__(self, reason: str, detail: str | None = None, *, text: str | None = None) -> None:
        super().__init__(ORDER_REJECTED, reason, detail)
        self.reason = reason
        self.detail = detail
        self.text = text


def message(code: int, *args: object) -> str:
    """The guide's message for ``code`` with its ``{?}`` filled in from ``args`` (blank
    where an argument is missing)."""
    template = MESSAGES.get(code)
    if template is None:
        return " ".join(str(arg) for arg in args) or str(code)
    slots = template.count("{}")
    filled = [str(arg) for arg in args[:slots]] + [""] * (slots - len(args[:slots]))
    return template.format(*filled)


def category(code: int) -> int:
    """The wrapped style's return_code for ``code``: 3 (인증) for every 8xxx."""
    if code // 1000 == 8:
        return 3
    return _CATEGORY.get(code, 1)


def error_body(error: KiwoomError, style: KiwoomErrorStyle) -> dict[str, Any]:
    if isinstance(error, OrderRejected):
        text = error.text or kis_codes.BUSINESS_MESSAGES.get(error.reason, error.reason)
        if error.detail:
            text = f"{text}({error.detail})"
        return {
            "return_code": ORDER_REJECTED if style == "specific" else _ORDER_CATEGORY,
            "return_msg": f"[{ORDER_REJECTED}]({error.reason}:{text})",
        }
    return coded_body(error.code, message(error.code, *error.args_), style)


def coded_body(code: int, text: str, style: KiwoomErrorStyle) -> dict[str, Any]:
    if style == "specific":
        return {"return_code": code, "return_msg": text}
    group = category(code)
    return {"return_code": group, "return_msg": f"{CATEGORIES[group]}[{code}:{text}]"}


def status_of(code: int, config: BrokerConfig) -> int:
    return config.kiwoom_rate_limit_status if code == RATE_LIMITED else 200


def success(text: str = OK_MESSAGE, **fields: Any) -> dict[str, Any]:
    """A success body: the TR's fields, then return_code 0 and return_msg."""
    return {**fields, "return_code": 0, "return_msg": text}
