"""decode_json: the one decoding of JSON from outside, and what it refuses."""

from __future__ import annotations

import json
import time

import pytest

from pylotto.core.errors import InvalidArgument, grpc_code, http_status
from pylotto.core.json_input import (
    MAX_JSON_DEPTH,
    JsonRefused,
    NotJson,
    decode_json,
    nesting_depth,
)


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
    (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
    (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, no surrogate
    (b'{"s": "[[[[[[{{{{"}', {"s": "[[[[[[{{{{"}),  # brackets in strings do not nest
    ("[1]", [1]),
    (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, json.loads("[" * 100 + "]" * 100)),
])
def test_json_is_decoded(raw: bytes | str, expected: object) -> None:
    assert decode_json(raw) == expected


@pytest.mark.parametrize(("raw", "refusal", "says"), [
    (b"\xff\xfe\xfd", NotJson, "not UTF-8"),
    (b"\xef\xbb\xbf{}", NotJson, "not valid JSON"),
    (b"{", NotJson, "not valid JSON"),
    (b"[NaN]", NotJson, "NaN"),
    (b"[-Infinity]", NotJson, "Infinity"),
    (b"[" * 100_000, JsonRefused, "deeper than 100"),
    (b'{"a":' * 50_000, JsonRefused, "deeper than 100"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), JsonRefused, "deeper"),
    (b'"\\ud800"', JsonRefused, "lone UTF-16 surrogate"),
    (b'{"k\\udfff": 1}', JsonRefused, "lone UTF-16 surrogate"),
    ('"\ud800"', JsonRefused, "lone UTF-16 surrogate"),
    (b"1e999", JsonRefused, "out of range"),
    (b"1" * 5000, JsonRefused, "out of range"),
])
def test_what_cannot_be_taken_is_an_invalid_argument(raw: bytes | str,
                                                     refusal: type[InvalidArgument],
                                                     says: str) -> None:
    with pytest.raises(refusal, match=says) as caught:
        decode_json(raw, "the body")
    assert caught.value.message.startswith("the body")
    assert grpc_code(caught.value).name == "INVALID_ARGUMENT"
    assert http_status(caught.value) == 400


def test_depth_ignores_brackets_in_strings_and_unterminated_strings_end_the_text() -> None:
    assert nesting_depth(b'[["]]]]]]", {"a": "{{{"}]]') == 3
    assert nesting_depth(b'["' + b"[" * 1000) == 1
    assert nesting_depth(b"no brackets") == 0


def test_the_depth_is_measured_in_linear_time() -> None:
    # a text the naive string search re-scans from every quote: quadratic would take minutes
    hostile = b"[" * 200 + b'"' + b'\\"' * 1_000_000
    started = time.perf_counter()
    assert nesting_depth(hostile) == 200
    assert time.perf_counter() - started < 2.0
