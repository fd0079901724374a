"""What clients send to the servers' WebSocket surfaces, fuzzed, at the parsers.

- The gateway's ``/ws`` (``system.gateway.protocol.parse_client_message``): each message is
  one of ``Subscribe``, ``Unsubscribe``, ``Pong``, ``Ping``, well formed, or a
  ``ProtocolError`` with a code of ``ErrorCode`` and a message; never another exception.
  Over ``max_bytes`` it is always ``message_too_large``. The error goes back to the client
  in a text frame and the connection stays open, so it must be UTF-8 the frame can carry.
- The mock feeds' subscribe messages (``mocks.feed.protocol`` for KIS,
  ``kiwoom_protocol``, ``fx_protocol``): a parsed request or the module's ``Invalid``,
  never an exception. The answer sent for an ``Invalid`` names none of the approval key
  or token the message carried (the modules promise not to echo them), and can be sent.
- KIS's registration rules (``mocks.feed.protocol.Subscriptions``) and Kiwoom's
  (``kiwoom_protocol.Registrations``) over a sequence of fuzzed requests: only the
  documented answers, checked against a model, and never more active than the limit.

Examples are mostly near misses of the valid messages each module documents: one field
junked, dropped or added, the text cut or edited, a lone surrogate where a string goes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from hypothesis import event, given
from hypothesis import strategies as st

from mocks.feed import fx_protocol as fx
from mocks.feed import kiwoom_protocol as kiwoom
from mocks.feed import protocol as kis
from system.gateway import protocol as gateway
from tests.fuzz.strategies import (
    DEEP_JSON,
    HUGE_TEXT,
    JSON_VALUES,
    LONE_SURROGATES,
    NUMBERS,
    TEXT,
    as_text,
    either,
    mostly,
    mutated,
    prefixes,
    variants,
    with_lone_surrogate,
)

APPROVAL_KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"  # a KIS approval key is a UUID
TOKEN = "kiwoom-token-" + "Zq8" * 14
CIPHER = kis.Cipher(key="k" * 32, iv="i" * 16)
AT = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
STRINGS = st.one_of(TEXT, LONE_SURROGATES)


def sendable(text: str) -> bool:
    """Whether ``text`` can travel in a WebSocket text frame (valid UTF-8). A client's own
    message always can; a str holding a lone surrogate cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def near_misses(
    valid: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` with one field given a plausible wrong value (``fields``), or junked,
    dropped or joined by another (``variants``)."""
    if not fields:
        return either(st.just(valid), variants(valid))
    plausible = st.sampled_from(sorted(fields)).flatmap(
        lambda key: fields[key].map(lambda value: {**valid, key: value})
    )
    return either(st.just(valid), plausible, variants(valid))


def texts_of(messages: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Messages as text, and the text broken: cut short, edited, a lone surrogate in one
    of its strings, nested past the JSON reader's limit, or a megabyte long."""
    valid_texts = messages.flatmap(as_text)
    return either(
        valid_texts,
        valid_texts,
        valid_texts.flatmap(prefixes),
        valid_texts.flatmap(mutated),
        messages.flatmap(with_lone_surrogate),
        st.sampled_from(DEEP_JSON + HUGE_TEXT) | STRINGS,
    )


# -- the gateway's /ws -------------------------------------------------------------------

TICKERS = st.one_of(
    st.sampled_from(["005930", "000660", "5930", "0059300", "005930\n", " 005930", "00593a"]),
    st.sampled_from(["０５９３０", "٠٠٥٩٣٠", "", "signals", "005930" * 100]),
    st.integers(-10, 10**7),
    STRINGS,
)
GATEWAY_FIELDS = {
    "type": st.sampled_from(["subscribe", "unsubscribe", "pong", "ping", "Subscribe", " ping"])
    | st.sampled_from(["error", "price_update", "connected", ""])
    | STRINGS,
    "ticker": TICKERS,
    "topic": st.sampled_from(["signals", "Signals", "signals ", "prices", "005930", "__proto__"])
    | TICKERS,
    "ts": NUMBERS | st.sampled_from([float("nan"), float("inf"), True, None, "soon"]) | TEXT,
}
# The messages of the module's docstring.
GATEWAY_VALID: list[dict[str, Any]] = [
    {"type": "subscribe", "ticker": "005930"},
    {"type": "subscribe", "topic": "signals"},
    {"type": "unsubscribe", "ticker": "005930"},
    {"type": "unsubscribe", "topic": "signals"},
    {"type": "pong", "ts": 1736121600.25},
    {"type": "pong"},
    {"type": "ping"},
]


def _gateway_near_misses(valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    # A wrong value in a field the message has (or a ticker beside a topic, and the other
    # way round), where the parser's checks are.
    other = "topic" if "ticker" in valid else "ticker"
    return near_misses(valid, {key: GATEWAY_FIELDS[key] for key in (*valid, other)})


GATEWAY_MESSAGES = texts_of(st.sampled_from(GATEWAY_VALID).flatmap(_gateway_near_misses))
ERROR_CODES = set(get_args(gateway.ErrorCode))


def _check_gateway_error(error: gateway.ProtocolError, text: str, *, too_large: bool) -> None:
    event(f"error {error.code}")
    assert error.code in ERROR_CODES, error.code
    assert isinstance(error.message, str), error
    assert error.message, error
    if too_large:
        assert error.code == "message_too_large", error
    if sendable(text):
        # What the dispatcher sends back; a frame that can't be sent costs the client its
        # connection, which an error must not.
        gateway.encode(gateway.error(error.code, error.message)).encode("utf-8")


def _is_ticker(topic: str) -> bool:
    return len(topic) == 6 and topic.isascii() and topic.isdigit()


@given(text=GATEWAY_MESSAGES, max_bytes=st.sampled_from([64, 4096, 1 << 20]))
def test_the_gateway_reads_every_client_message_or_says_what_is_wrong(
    text: str, max_bytes: int
) -> None:
    size = len(text.encode("utf-8", errors="surrogatepass"))
    try:
        message = gateway.parse_client_message(text, max_bytes)
    except gateway.ProtocolError as error:
        _check_gateway_error(error, text, too_large=size > max_bytes)
        return
    event(type(message).__name__)
    assert size <= max_bytes, (size, message)
    if isinstance(message, gateway.Subscribe | gateway.Unsubscribe):
        assert message.topic in gateway.NAMED_TOPICS or _is_ticker(message.topic), message
        assert not message.by_ticker or _is_ticker(message.topic), message
    elif isinstance(message, gateway.Pong):
        assert message.ts is None or isinstance(message.ts, float), message
        assert message.ts is None or message.ts - message.ts == 0, message  # finite
    else:
        assert isinstance(message, gateway.Ping), repr(message)


# -- the mock KIS feed -----------------------------------------------------------------------

CODES = st.sampled_from(["005930", "000660", "035720", "5930", "0059300", "005930\n"])
KIS_HEADER_FIELDS = {
    "approval_key": st.sampled_from(["", " ", "not-a-uuid"]) | STRINGS | JSON_VALUES,
    "custtype": st.sampled_from(["P", "B", "p", "", "PB"]) | STRINGS | JSON_VALUES,
    "tr_type": st.sampled_from(["1", "2", "3", "01", "", 1, 2]) | STRINGS | JSON_VALUES,
    "content-type": st.sampled_from(["utf-8", "UTF-8", "utf8", ""]) | STRINGS | JSON_VALUES,
}
KIS_INPUT_FIELDS = {
    "tr_id": st.sampled_from([kis.TRADES, kis.BOOK, "H0STCNI0", "h0stcnt0", "H0STCNT0 ", ""])
    | STRINGS
    | JSON_VALUES,
    "tr_key": CODES
    | st.sampled_from(["０５９３０", "٠٠٥٩٣٠", 5930, "005930" * 100])
    | STRINGS
    | JSON_VALUES,
}


@st.composite
def kis_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A subscribe or unsubscribe as the module documents it, or a PINGPONG echo, with at
    most one part of it wrong, most often a header field or the input's."""
    if draw(st.integers(0, 7)) == 0:
        stamp = draw(mostly("20250106090000", STRINGS | JSON_VALUES))
        return draw(near_misses({"header": {"tr_id": kis.HEARTBEAT, "datetime": stamp}}, {}))
    header = {
        "approval_key": APPROVAL_KEY,
        "custtype": draw(st.sampled_from(["P", "B"])),
        "tr_type": draw(st.sampled_from(["1", "2"])),
        "content-type": "utf-8",
    }
    request = {"tr_id": draw(st.sampled_from(kis.SERVED_TR_IDS)), "tr_key": draw(CODES)}
    wrong = draw(st.sampled_from(["nothing", "header", "header", "input", "input", "shape"]))
    if wrong == "header":
        header = draw(near_misses(header, KIS_HEADER_FIELDS))
    elif wrong == "input":
        request = draw(near_misses(request, KIS_INPUT_FIELDS))
    message = {"header": header, "body": {"input": request}}
    if wrong == "shape":
        message = draw(variants(message))
    return message


def _check_kis_invalid(invalid: kis.Invalid, text: str) -> None:
    event(f"Invalid {invalid.code}")
    assert invalid.code in kis.MESSAGES, invalid  # the module's documented codes
    answer = kis.ack(
        invalid.code, invalid.tr_id, invalid.tr_key, cipher=CIPHER, detail=invalid.detail
    )
    assert APPROVAL_KEY not in answer, answer
    if sendable(text):
        answer.encode("utf-8")


@given(text=texts_of(kis_requests()), max_chars=st.sampled_from([256, 4096]))
def test_the_mock_kis_feed_reads_every_message_or_answers_with_an_error_ack(
    text: str, max_chars: int
) -> None:
    parsed = kis.parse_client_message(text, max_chars=max_chars)
    if APPROVAL_KEY in text:
        event("carries the approval key")
    if isinstance(parsed, kis.Invalid):
        _check_kis_invalid(parsed, text)
        if len(text) > max_chars:
            assert parsed.code == kis.TOO_LARGE, parsed
        return
    assert len(text) <= max_chars, parsed
    event(type(parsed).__name__)
    if isinstance(parsed, kis.PingPongEcho):
        assert isinstance(parsed.datetime, str), parsed
        return
    assert isinstance(parsed, kis.Subscription), repr(parsed)
    assert isinstance(parsed.approval_key, str), parsed
    assert parsed.approval_key, parsed
    assert parsed.custtype in ("P", "B"), parsed
    assert parsed.action in ("subscribe", "unsubscribe"), parsed
    assert parsed.tr_id in kis.SERVED_TR_IDS, parsed
    assert parsed.tr_key.isascii(), parsed
    assert len(parsed.tr_key) == 6, parsed
    assert parsed.tr_key.isdigit(), parsed


# Subscribes (three in four) and unsubscribes of 50 registrations (25 codes × 2 tr_ids),
# written by the mock's own Subscription; one in ten broken, which must change nothing.
REGISTRATION_CODES = [f"{n:06d}" for n in range(100, 125)]
REGISTRATION_KEYS = [(tr_id, code) for code in REGISTRATION_CODES for tr_id in kis.SERVED_TR_IDS]


def _registration(action: Literal["subscribe", "unsubscribe"], key: tuple[str, str]) -> str:
    return json.dumps(kis.Subscription(APPROVAL_KEY, "P", action, *key).as_message())


REGISTRATIONS = st.builds(
    _registration,
    st.sampled_from(["subscribe", "subscribe", "subscribe", "unsubscribe"]),
    st.sampled_from(REGISTRATION_KEYS),
)
BROKEN_REGISTRATIONS = REGISTRATIONS.flatmap(mutated)


@given(
    limit=st.sampled_from([kis.MAX_SUBSCRIPTIONS, kis.MAX_SUBSCRIPTIONS, 1, 3]),
    # The first ``filled`` registrations subscribed in order: the sequence then starts at,
    # near or past the limit, where the answers change.
    filled=st.integers(0, 45) | st.integers(39, 45),
    requests=st.lists(
        st.integers(0, 9).flatmap(lambda d: BROKEN_REGISTRATIONS if d == 0 else REGISTRATIONS),
        max_size=40,
    ),
)
def test_kis_registrations_answer_only_the_documented_codes_and_never_pass_the_limit(
    limit: int, filled: int, requests: list[str]
) -> None:
    subscriptions = kis.Subscriptions(limit)
    model: list[tuple[str, str]] = []  # active registrations, in the order they were made
    answered: set[str] = set()
    for text in [_registration("subscribe", key) for key in REGISTRATION_KEYS[:filled]] + requests:
        parsed = kis.parse_client_message(text)
        if not isinstance(parsed, kis.Subscription):
            continue  # the session answers these with an error ack and registers nothing
        key = (parsed.tr_id, parsed.tr_key)
        code = subscriptions.apply(parsed)
        # KIS's rules, as the module documents them.
        if parsed.action == "unsubscribe":
            expected = kis.UNSUBSCRIBED if key in model else kis.NOT_SUBSCRIBED
            if key in model:
                model.remove(key)
        elif key in model:
            expected = kis.ALREADY_SUBSCRIBED
        elif len(model) >= limit:
            expected = kis.TOO_MANY
        else:
            expected = kis.SUBSCRIBED
            model.append(key)
        assert code == expected, (parsed, code, expected)
        answered.add(code)
        assert len(subscriptions) <= limit <= kis.MAX_SUBSCRIPTIONS
        assert subscriptions.active() == model
    for code in sorted(answered):
        event(f"answered {code} (limit {limit})")


# -- the mock Kiwoom feed ------------------------------------------------------------------

KIWOOM_FIELDS = {
    "trnm": st.sampled_from(["LOGIN", "REG", "REMOVE", "PING", "REAL", "reg", "Reg ", ""])
    | STRINGS
    | JSON_VALUES,
    "token": st.sampled_from(["", TOKEN + " "]) | STRINGS | JSON_VALUES,
    "grp_no": st.sampled_from(["1", "0", "01", "9999", "10000", "²", "-1", "", 1])
    | STRINGS
    | JSON_VALUES,
    "refresh": st.sampled_from(["0", "1", "2", "", 1, 0, True]) | STRINGS | JSON_VALUES,
    "data": st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "item": st.lists(CODES | STRINGS, max_size=3) | JSON_VALUES,
                "type": st.lists(st.sampled_from(["0B", "0D", "0b", ""]) | STRINGS, max_size=2)
                | JSON_VALUES,
            },
        )
        | JSON_VALUES,
        max_size=3,
    )
    | JSON_VALUES,
}
KIWOOM_VALID: list[dict[str, Any]] = [
    {"trnm": kiwoom.LOGIN, "token": TOKEN},
    {"trnm": kiwoom.PING},
    {
        "trnm": kiwoom.REG,
        "grp_no": "1",
        "refresh": "1",
        "data": [{"item": ["005930"], "type": ["0B"]}],
        "token": TOKEN,  # a client that sends its token with every message
    },
    {
        "trnm": kiwoom.REMOVE,
        "grp_no": "1",
        "refresh": "1",
        "data": [{"item": ["005930"], "type": ["0B"]}],
    },
]
LISTED = {"005930", "000660", "035720"}


def _check_kiwoom_answer(trnm: str, code: int, detail: str, text: str) -> None:
    answer = kiwoom.answer(trnm, code, detail)
    assert TOKEN not in answer, answer
    if sendable(text):
        answer.encode("utf-8")


@given(
    text=texts_of(
        st.sampled_from(KIWOOM_VALID).flatmap(lambda valid: near_misses(valid, KIWOOM_FIELDS))
    ),
    max_chars=st.sampled_from([256, 4096]),
)
def test_the_mock_kiwoom_feed_reads_every_message_or_answers_with_an_error(
    text: str, max_chars: int
) -> None:
    parsed = kiwoom.parse_client_message(text, max_chars=max_chars)
    event(type(parsed).__name__)
    if TOKEN in text:
        event("carries the token")
    if isinstance(parsed, kiwoom.Invalid):
        assert parsed.code == kiwoom.BAD_INPUT, parsed
        _check_kiwoom_answer(parsed.trnm, parsed.code, parsed.detail, text)
        return
    assert len(text) <= max_chars, parsed
    if isinstance(parsed, kiwoom.Login):
        assert isinstance(parsed.token, str), parsed
    elif isinstance(parsed, kiwoom.Ping):
        assert parsed.text == text  # echoed unchanged
    else:
        assert isinstance(parsed, kiwoom.Registration), repr(parsed)
        assert parsed.action in (kiwoom.REG, kiwoom.REMOVE), parsed
        assert parsed.grp_no.isdigit(), parsed
        assert 1 <= len(parsed.grp_no) <= 4, parsed
        assert parsed.refresh in ("0", "1"), parsed
        assert parsed.pairs, parsed
        assert all(isinstance(part, str) for pair in parsed.pairs for part in pair), parsed
        assert len(set(parsed.pairs)) == len(parsed.pairs), parsed  # each pair once
        # The session then checks the pairs against what it serves: that answer too.
        refusal = kiwoom.check(parsed, LISTED)
        if refusal is not None:
            event(f"refused {refusal[0]}")
            _check_kiwoom_answer(parsed.action, *refusal, text)


@st.composite
def kiwoom_registrations(draw: st.DrawFn) -> kiwoom.Registration:
    pairs = draw(
        st.lists(
            st.tuples(st.just("0B"), st.sampled_from(REGISTRATION_CODES)),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    return kiwoom.Registration(
        draw(st.sampled_from([kiwoom.REG, kiwoom.REG, kiwoom.REMOVE])),
        draw(st.sampled_from(["1", "2", "3"])),
        draw(st.sampled_from(["1", "1", "0"])),
        tuple(pairs),
    )


@given(
    limit=st.integers(1, 10),
    requests=st.lists(kiwoom_registrations(), max_size=40),
)
def test_kiwoom_registrations_apply_whole_or_not_at_all_and_never_pass_the_limit(
    limit: int, requests: list[kiwoom.Registration]
) -> None:
    registrations = kiwoom.Registrations(limit)
    # The documented rules: REMOVE takes pairs out of its group; REG adds to its group
    # (refresh "1") or replaces it ("0"), refused whole if the distinct pairs over all
    # groups would pass the limit.
    groups: dict[str, set[tuple[str, str]]] = {}
    for request in requests:
        group = groups.get(request.grp_no, set())
        expected = kiwoom.OK
        if request.action == kiwoom.REMOVE:
            group = group - set(request.pairs)
        else:
            group = (set() if request.refresh == "0" else group) | set(request.pairs)
            others = set().union(*(g for name, g in groups.items() if name != request.grp_no))
            if len(others | group) > limit:
                expected = kiwoom.MOCK_TOO_MANY
        if expected == kiwoom.OK:
            groups[request.grp_no] = group
        code = registrations.apply(request)
        assert code == expected, (request, code)
        event("refused over the limit" if code == kiwoom.MOCK_TOO_MANY else "applied")
        assert len(registrations) <= limit
        assert set(registrations.active()) == set().union(*groups.values())


# -- the mock FX venue -----------------------------------------------------------------------

FX_PARAMS_FIELDS = {
    "channel": st.sampled_from(["ticker", "Ticker", "book", ""]) | STRINGS | JSON_VALUES,
    "symbol": st.lists(st.sampled_from(["USD/KRW", "EUR/JPY", "XXX/KRW", "USD", ""]) | STRINGS)
    | JSON_VALUES,
    "event_trigger": st.sampled_from(["bbo", "trades", "BBO", ""]) | STRINGS | JSON_VALUES,
    "snapshot": st.sampled_from([True, False, "false", 0, None]) | JSON_VALUES,
}
FX_FIELDS = {
    "method": st.sampled_from(["subscribe", "unsubscribe", "ping", "Subscribe", "pong", ""])
    | STRINGS
    | JSON_VALUES,
    "req_id": st.integers() | st.sampled_from([True, -1, 1.5, "1"]) | JSON_VALUES,
}
FX_SUBSCRIBE: dict[str, Any] = {
    "method": "subscribe",
    "params": {"channel": "ticker", "symbol": ["USD/KRW", "EUR/JPY"], "event_trigger": "bbo"},
    "req_id": 1,
}


@st.composite
def fx_requests(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 5)) == 0:
        return draw(near_misses({"method": "ping", "req_id": 2}, FX_FIELDS))
    params = {**FX_SUBSCRIBE["params"], "snapshot": draw(st.booleans())}
    message = {**FX_SUBSCRIBE, "method": draw(st.sampled_from(["subscribe", "unsubscribe"]))}
    if draw(st.booleans()):
        params = draw(near_misses(params, FX_PARAMS_FIELDS))
    else:
        message = draw(near_misses(message, FX_FIELDS))
    return {**message, "params": params}


@given(text=texts_of(fx_requests()), max_chars=st.sampled_from([256, 4096]))
def test_the_mock_fx_venue_reads_every_request_or_answers_with_an_error(
    text: str, max_chars: int
) -> None:
    parsed = fx.parse_client_message(text, max_chars=max_chars)
    event(type(parsed).__name__)
    if isinstance(parsed, fx.Invalid):
        assert isinstance(parsed.error, str), parsed
        assert parsed.error, parsed
        answer = fx.invalid(parsed, at=AT)
        if sendable(text):
            answer.encode("utf-8")
        return
    assert len(text) <= max_chars, parsed
    req_id = parsed.req_id
    assert req_id is None or (isinstance(req_id, int) and not isinstance(req_id, bool)), parsed
    if isinstance(parsed, fx.Ping):
        return
    assert isinstance(parsed, fx.TickerRequest), repr(parsed)
    assert parsed.method in ("subscribe", "unsubscribe"), parsed
    assert parsed.symbols, parsed
    assert len(set(parsed.symbols)) == len(parsed.symbols), parsed  # each symbol once
    assert isinstance(parsed.snapshot, bool), parsed
    # The venue answers each symbol, a refusal naming it: each answer can be sent.
    for symbol in parsed.symbols:
        answer = fx.answer(parsed, symbol, at=AT, error=fx.PAIR_NOT_SUPPORTED)
        if sendable(text):
            answer.encode("utf-8")
