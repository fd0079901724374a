"""Inputs a careless or hostile client sends: shared by every surface's fuzz test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

# Values that break naive parsers: huge and negative numbers, NaN-like text, control
# characters, lone surrogates' escapes, right-to-left marks, Korean, and the empty string.
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e309",
        "NaN",
        "Infinity",
        "null",
        "\x00",
        "\u202e",
        "\\ud800",
        "005930\n",
        "０５９３０",  # full-width digits: str.isdigit() says yes
        "'; DROP TABLE orders; --",
        "{{7*7}}",
        "삼성전자",
        "9" * 400,
    ]
)
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=60))
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)

# JSON-able values, nested a few levels.
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def objects_like(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of ``fields`` (each with its own plausible values, or junk), plus
    now and then a key nobody asked for."""
    keys = sorted(fields)
    return st.builds(
        lambda chosen, extra: {**chosen, **extra},
        st.fixed_dictionaries(
            {},
            optional={key: st.one_of(fields[key], JSON_VALUES) for key in keys},
        ),
        st.dictionaries(TEXT, JSON_VALUES, max_size=2),
    )


def as_body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode()


# What arrives as a body: JSON of any shape, JSON cut short, bytes that are not UTF-8,
# and, rarely, something large.
def bodies(json_like: st.SearchStrategy[Any] = JSON_VALUES) -> st.SearchStrategy[bytes]:
    return st.one_of(
        json_like.map(as_body),
        json_like.map(as_body).flatmap(
            lambda raw: st.integers(0, max(len(raw) - 1, 0)).map(lambda cut: raw[:cut])
        ),
        st.binary(max_size=200),
        st.sampled_from(ODD_BODIES),
    )


ODD_BODIES = (
    b"\xff\xfe\x00{",
    b"\xc3\x28",
    b"{" * 5000,
    b"[" * 100_000,  # deeper than the JSON parser's recursion limit
    b'{"x":"' + b"a" * 2_000_000 + b'"}',  # 2 MB in one string
    b"[" + b"1," * 300_000 + b"1]",  # 600 KB of many small values
)


# Header values as a client can put them on the wire: printable ASCII, and bytes beyond
# it (invalid UTF-8 among them), which a server must survive too. No CR, LF or NUL: the
# HTTP client itself refuses those, so no server ever sees them in a header.
_WIRE_BYTES = [byte for byte in range(1, 256) if byte not in b"\r\n"]
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
    st.lists(st.sampled_from(_WIRE_BYTES), max_size=80).map(bytes),
    st.sampled_from(["", " ", "Bearer", "Bearer ", "null", "9" * 400]),
)


def mostly(valid: T, junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` three times in four, else ``junk``: so most examples get past the first
    check and reach the code behind it, while the checks themselves are fuzzed too."""
    return st.integers(0, 3).flatmap(lambda n: junk if n == 0 else st.just(valid))


def variants(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` as is, or with one field given a junk value, dropped, or joined by another:
    the near-misses a buggy client sends, which reach deeper than random objects do."""

    def junk_field(key: str) -> st.SearchStrategy[dict[str, Any]]:
        return JSON_VALUES.map(lambda value: {**valid, key: value})

    keys = sorted(valid)
    return st.one_of(
        st.just(valid),
        st.sampled_from(keys).flatmap(junk_field),
        st.sampled_from(keys).map(lambda key: {k: v for k, v in valid.items() if k != key}),
        st.tuples(TEXT, JSON_VALUES).map(lambda extra: {**valid, extra[0]: extra[1]}),
    )


# -- Text messages (WebSocket surfaces): numbers written out, surrogates, cut and edited text.

# Numbers as a feed or a client writes them in text, and the spellings that break readers:
# NaN and infinities several ways, exponents whose integer has a billion digits (an int()
# of that never returns), non-ASCII digits that int() and float() accept, Python-only forms
# (underscores, hex), signs doubled, padding, and nothing at all.
ABSURD_NUMBERS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-",
            "+",
            ".",
            "0",
            "-0",
            "00",
            "-1",
            "+1",
            "--5",
            "1.5",
            " 7 ",
            "7\n",
            "1_000",
            "0x10",
            "1e3",
            "1e309",
            "-1e309",
            "1e999999999",
            "1E+999999999999999999",
            "-1e999999999",
            "1e-999999999",
            "NaN",
            "nan",
            "sNaN",
            "-NaN",
            "inf",
            "Infinity",
            "-Infinity",
            "９",  # full-width digits: int() reads them
            "٣٤",  # Arabic-Indic digits: int() reads them too
            "²",  # str.isdigit() says yes, int() says no
            "Ⅻ",
            "9" * 400,
            "9" * 5000,  # past int()'s 4300-digit limit
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)

# A Python str can hold a lone surrogate (json.loads makes one of "\ud800"); UTF-8 cannot,
# so an answer that echoes one can't be sent.
LONE_SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)


def as_text(value: Any) -> st.SearchStrategy[str]:
    """``value`` as a JSON text message, spelled as clients and servers do: compact or
    spaced, non-ASCII raw or escaped (which is how a lone surrogate reaches a parser over a
    valid UTF-8 frame)."""
    return st.tuples(st.booleans(), st.booleans()).map(
        lambda spelling: json.dumps(
            value,
            ensure_ascii=spelling[0],
            allow_nan=True,
            separators=(",", ":") if spelling[1] else (", ", ": "),
        )
    )


def prefixes(text: str) -> st.SearchStrategy[str]:
    """``text`` cut short at any length: a message truncated in flight."""
    return st.integers(0, max(len(text) - 1, 0)).map(lambda cut: text[:cut])


# What an edit writes into a message: separators of the formats fuzzed here, junk values,
# and characters no wire carries.
_SPLICES = st.one_of(
    st.sampled_from(["|", "^", "{", "}", "[", "]", '"', ":", ",", "\\", "\x00", "\n"]),
    NASTY_TEXT,
    ABSURD_NUMBERS,
    LONE_SURROGATES,
)


@st.composite
def _edit(draw: st.DrawFn, text: str) -> str:
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 8)))
    kind = draw(st.sampled_from(["delete", "insert", "replace", "repeat"]))
    if kind == "delete":
        return text[:start] + text[end:]
    if kind == "repeat":
        return text[:end] + text[start:end] + text[end:]
    junk = draw(_SPLICES)
    return text[:start] + junk + (text[end:] if kind == "replace" else text[start:])


def mutated(text: str) -> st.SearchStrategy[str]:
    """``text`` with one to three small edits at drawn places: a few characters deleted,
    repeated, or replaced by (or joined by) a separator, a junk value or a surrogate. Near
    misses of a valid message, so most get past its first checks."""

    def more(edited: str, left: int) -> st.SearchStrategy[str]:
        if left == 0:
            return st.just(edited)
        return _edit(edited).flatmap(lambda again: more(again, left - 1))

    return st.integers(1, 3).flatmap(lambda edits: more(text, edits))


# Text that only a broken or hostile peer sends: nesting past the JSON reader's recursion
# limit, and a megabyte of one character (what a WebSocket with a 1 MiB limit still lets in).
DEEP_JSON = ('{"a":' * 3000, "[" * 3000, '{"header":' + "[" * 3000, '{"trnm":' + "[" * 3000)
HUGE_TEXT = ("9" * (1 << 20), "0|" + "^" * (1 << 20), '{"x":"' + "a" * (1 << 20) + '"}')


def either(*strategies: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """One of ``strategies``, each as likely as the others whatever it is made of: unlike
    ``st.one_of``, which flattens a nested one_of into its own branches (so a group of
    four rare cases would weigh four times one common one)."""
    return st.sampled_from(strategies).flatmap(lambda chosen: chosen)


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_paths(item, (*path, index))


def _with_leaf(value: Any, path: tuple[Any, ...], change: Callable[[str], str]) -> Any:
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _with_leaf(value[head], rest, change)}
    return [_with_leaf(item, rest, change) if i == head else item for i, item in enumerate(value)]


def with_lone_surrogate(value: Any) -> st.SearchStrategy[str]:
    """``value`` as JSON text with a lone surrogate in one of its strings, written as the
    ASCII escape (``"\\ud800"``) a valid UTF-8 frame carries: how one reaches a server,
    whose json.loads then hands it text that UTF-8 can't encode again."""
    paths = list(_string_paths(value))
    if not paths:
        return st.just(json.dumps(value))
    return st.tuples(st.sampled_from(paths), LONE_SURROGATES, st.booleans()).map(
        lambda chosen: json.dumps(
            _with_leaf(
                value,
                chosen[0],
                lambda text: (text if chosen[2] else "") + chosen[1],
            )
        )
    )
