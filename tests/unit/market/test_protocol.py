"""The realtime protocol without I/O: messages built, server messages parsed, and every
malformed shape refused with a typed error."""

from __future__ import annotations

import json

import pytest

from system.market import (
    FeedProtocolError,
    FieldCountMismatch,
    MalformedMessage,
    UnknownTrId,
)
from system.market.columns import BOOK_COLUMNS, TRADE_COLUMNS
from system.market.protocol import (
    UNSUBSCRIBE,
    Ack,
    DataFrame,
    PingPong,
    parse_message,
    subscribe_message,
)
from tests.unit.market.conftest import (
    BOOK_FIELDS,
    TRADE_FIELDS,
    ack,
    book_record,
    frame,
    trade_record,
)


def test_subscribe_message_is_the_documented_json() -> None:
    text = subscribe_message("approval-xyz", "H0STCNT0", "005930")
    assert json.loads(text) == {
        "header": {
            "approval_key": "approval-xyz",
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
    }


def test_unsubscribe_message_has_tr_type_2_and_the_custtype() -> None:
    text = subscribe_message(
        "approval-xyz", "H0STASP0", "000660", tr_type=UNSUBSCRIBE, custtype="B"
    )
    assert json.loads(text) == {
        "header": {
            "approval_key": "approval-xyz",
            "custtype": "B",
            "tr_type": "2",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STASP0", "tr_key": "000660"}},
    }


def test_the_documented_column_lists() -> None:
    assert len(TRADE_COLUMNS) == 46
    assert TRADE_COLUMNS[:6] == (
        "MKSC_SHRN_ISCD",
        "STCK_CNTG_HOUR",
        "STCK_PRPR",
        "PRDY_VRSS_SIGN",
        "PRDY_VRSS",
        "PRDY_CTRT",
    )
    assert (TRADE_COLUMNS[12], TRADE_COLUMNS[13], TRADE_COLUMNS[-1]) == (
        "CNTG_VOL",
        "ACML_VOL",
        "VI_STND_PRC",
    )
    assert len(BOOK_COLUMNS) == 59
    assert (BOOK_COLUMNS[3], BOOK_COLUMNS[13], BOOK_COLUMNS[23], BOOK_COLUMNS[33]) == (
        "ASKP1",
        "BIDP1",
        "ASKP_RSQN1",
        "BIDP_RSQN1",
    )
    assert BOOK_COLUMNS[-1] == "STCK_DEAL_CLS_CODE"


def test_a_subscribe_ack() -> None:
    assert parse_message(ack("H0STCNT0", "005930")) == Ack(
        "H0STCNT0", "005930", "0", "OPSP0000", "SUBSCRIBE SUCCESS"
    )


def test_an_error_ack_is_an_ack_that_is_not_ok() -> None:
    message = parse_message(ack("H0STCNT0", "005930", "OPSP0008", "MAX SUBSCRIBE OVER", "1"))
    assert message == Ack("H0STCNT0", "005930", "1", "OPSP0008", "MAX SUBSCRIBE OVER")
    assert isinstance(message, Ack)
    assert message.ok is False


def test_an_ack_without_tr_key_or_msg1_reads_them_as_empty() -> None:
    text = '{"header":{"tr_id":"H0STCNT0"},"body":{"rt_cd":"9","msg_cd":"OPSP9999"}}'
    assert parse_message(text) == Ack("H0STCNT0", "", "9", "OPSP9999", "")


def test_pingpong_keeps_the_exact_text_to_echo() -> None:
    text = '{"header": {"tr_id": "PINGPONG", "datetime": "20260302093000"}}'
    assert parse_message(text) == PingPong(raw=text, datetime="20260302093000")


def test_one_record_frame() -> None:
    message = parse_message(frame("H0STCNT0", trade_record()))
    assert message == DataFrame(
        encrypted=False, tr_id="H0STCNT0", count=1, records=(tuple(TRADE_FIELDS),)
    )


def test_multi_record_frame_splits_count_records() -> None:
    records = [trade_record(accumulated=1000 + 10 * i) for i in range(3)]
    message = parse_message(frame("H0STCNT0", *records))
    assert isinstance(message, DataFrame)
    assert message.count == 3
    assert [record[13] for record in message.records] == ["1000", "1010", "1020"]
    assert all(len(record) == 46 for record in message.records)


def test_book_frame_of_59_and_of_63_columns() -> None:
    plain = parse_message(frame("H0STASP0", book_record(), book_record("000660")))
    assert isinstance(plain, DataFrame)
    assert [len(r) for r in plain.records] == [59, 59]
    assert plain.records[1][0] == "000660"
    extended = parse_message(frame("H0STASP0", book_record() + "^71850^3000^1^J"))
    assert isinstance(extended, DataFrame)
    assert extended.records == ((*BOOK_FIELDS, "71850", "3000", "1", "J"),)


def test_encrypted_frame_keeps_the_ciphertext() -> None:
    message = parse_message("1|H0STCNI0|001|c2VjcmV0IGZpbGw=")
    assert message == DataFrame(
        encrypted=True, tr_id="H0STCNI0", count=1, records=(), payload="c2VjcmV0IGZpbGw="
    )


@pytest.mark.parametrize(
    ("text", "error", "says"),
    [
        ("", MalformedMessage, "neither a JSON control message nor a data frame"),
        ("hello", MalformedMessage, "neither a JSON control message nor a data frame"),
        ('{"header": {"tr_id": "PINGPONG", "date', MalformedMessage, "not valid JSON"),
        ("[1, 2]", MalformedMessage, "neither a JSON control message nor a data frame"),
        ('{"header": [1]}', MalformedMessage, 'without a "header" object'),
        ('{"body": {}}', MalformedMessage, 'without a "header" object'),
        ('{"header": "x"}', MalformedMessage, 'without a "header" object'),
        ('{"header": {"tr_key": "005930"}}', MalformedMessage, 'no "tr_id" string'),
        ('{"header": {"tr_id": 7}}', MalformedMessage, 'no "tr_id" string'),
        ('{"header": {"tr_id": "H0STCNT0"}}', MalformedMessage, 'has no "body" object'),
        (
            '{"header": {"tr_id": "H0STCNT0"}, "body": {"msg_cd": "OPSP0000"}}',
            MalformedMessage,
            '"rt_cd" is missing',
        ),
        (
            '{"header": {"tr_id": "H0STCNT0"}, "body": {"rt_cd": 0, "msg_cd": "OPSP0000"}}',
            MalformedMessage,
            '"rt_cd" is missing or not a string',
        ),
        ("0|H0STCNT0|001", MalformedMessage, "needs 4 parts"),
        ("0|H0STCNT0", MalformedMessage, "needs 4 parts"),
        ("2|H0STCNT0|001|x", MalformedMessage, "neither a JSON"),
        ("0|H0STCNT0|abc|x", MalformedMessage, "record count must be 1 to 999"),
        ("0|H0STCNT0|000|", MalformedMessage, "record count must be 1 to 999"),
        ("0|H0STCNT0|1000|x", MalformedMessage, "record count must be 1 to 999"),
        ("0|H0STCNT0|-01|x", MalformedMessage, "record count must be 1 to 999"),
        ("0|H0STXXX0|001|a^b", UnknownTrId, "tr_id 'H0STXXX0' is none this client reads"),
        ("1|H0STXXX0|001|abc", UnknownTrId, "encrypted frame of unknown tr_id"),
    ],
)
def test_malformed_messages(text: str, error: type[FeedProtocolError], says: str) -> None:
    with pytest.raises(error) as raised:
        parse_message(text)
    assert says in raised.value.problem


@pytest.mark.parametrize(
    ("count", "fields", "says"),
    [
        (1, 45, "1 H0STCNT0 record(s) need 46 fields, the frame holds 45"),
        (1, 47, "1 H0STCNT0 record(s) need 46 fields, the frame holds 47"),
        (3, 92, "3 H0STCNT0 record(s) need 138 fields, the frame holds 92"),
        (2, 46, "2 H0STCNT0 record(s) need 92 fields, the frame holds 46"),
    ],
)
def test_field_count_must_be_count_times_columns(count: int, fields: int, says: str) -> None:
    payload = "^".join(["1"] * fields)
    with pytest.raises(FieldCountMismatch) as raised:
        parse_message(f"0|H0STCNT0|{count:03d}|{payload}")
    assert raised.value.problem == says


def test_a_book_frame_with_neither_layout_names_both() -> None:
    with pytest.raises(FieldCountMismatch) as raised:
        parse_message(frame("H0STASP0", book_record() + "^1"))
    assert raised.value.problem == "1 H0STASP0 record(s) need 59 or 63 fields, the frame holds 60"


def test_a_truncated_frame_is_a_field_count_mismatch() -> None:
    text = frame("H0STCNT0", trade_record(), trade_record(accumulated=1010))
    with pytest.raises(FieldCountMismatch):
        parse_message(text[: len(text) // 2])


def test_error_messages_never_quote_an_approval_key() -> None:
    echoed = subscribe_message("approval-SECRET-123", "H0STCNT0", "005930")
    with pytest.raises(MalformedMessage) as raised:
        parse_message(echoed)  # a server echoing our own message: it has no tr_id header
    assert "approval-SECRET-123" not in str(raised.value)
    assert '"approval_key":"***"' in str(raised.value)


def test_error_messages_cut_long_messages_short() -> None:
    with pytest.raises(FieldCountMismatch) as raised:
        parse_message("0|H0STCNT0|001|" + "9^" * 500)
    assert "… (1015 characters)" in str(raised.value)
    assert len(str(raised.value)) < 300


def test_json_nested_past_the_readers_limit_is_malformed_not_a_crash() -> None:
    # json.loads raises RecursionError, not ValueError, on this: found by the fuzz tier.
    with pytest.raises(MalformedMessage, match="not valid JSON"):
        parse_message('{"header":' * 5000)
