"""The pure helpers of the Dapr bindings: Go's duration and time formats, Go's JSON, MySQL
placeholders, localstorage's payload decoding and the Redis TTL rule."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pylotto.components.bindings.localstorage import decoded_payload
from pylotto.components.bindings.mysql import mysql_time, placeholders
from pylotto.components.bindings.redis import ttl_seconds
from pylotto.components.bindings.sql import go_duration, rfc3339_nano
from pylotto.core.errors import InvalidArgument
from pylotto.core.gojson import GoStruct, RawNumber, float32, go_json


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (1e-9, "1ns"), (1.5e-6, "1.5µs"), (0.0012345, "1.2345ms"), (0.5, "500ms"),
    (1, "1s"), (2.25, "2.25s"), (61.5, "1m1.5s"), (3600, "1h0m0s"), (3725.000001, "1h2m5.000001s"),
])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_rfc3339_nano() -> None:
    assert rfc3339_nano(datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)) == "2026-12-02T10:00:00Z"
    assert rfc3339_nano(datetime(2026, 12, 2, 10, 0, 0, 120000, tzinfo=UTC)) == \
        "2026-12-02T10:00:00.12Z"
    paris = timezone(timedelta(hours=1))
    assert rfc3339_nano(datetime(2026, 12, 2, 10, 0, tzinfo=paris)) == \
        "2026-12-02T10:00:00+01:00"


def test_go_json() -> None:
    assert go_json({"b": [1.0, 0.5, None], "a": "<&>"}) == \
        '{"a":"\\u003c\\u0026\\u003e","b":[1,0.5,null]}'
    assert go_json(GoStruct(Z=1, A=2)) == '{"Z":1,"A":2}', "struct fields keep their order"
    assert go_json([RawNumber("12.50"), 1e21, 1e20, 1e-7, True]) == \
        "[12.50,1e+21,100000000000000000000,1e-07,true]"
    assert go_json("é\u2028") == '"é\\u2028"'
    assert float32(0.10000000149011612) == 0.1


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT ?", "SELECT %s"),
    ("SELECT '?', ?", "SELECT '?', %s"),
    ("SELECT 'it\\'s ?', ?", "SELECT 'it\\'s ?', %s"),
    ("SELECT `a?` FROM t WHERE x LIKE '%a' AND y = ?", "SELECT `a?` FROM t WHERE x LIKE '%%a' "
     "AND y = %s"),
    ("SELECT 5 % 2 -- ?\n, ?", "SELECT 5 %% 2 -- ?\n, %s"),
    ("SELECT /* ? */ ? # ?", "SELECT /* ? */ %s # ?"),
])
def test_mysql_placeholders(sql: str, expected: str) -> None:
    assert placeholders(sql) == expected


def test_mysql_time() -> None:
    assert mysql_time(timedelta(hours=1, minutes=2, seconds=3), 0) == "01:02:03"
    assert mysql_time(-timedelta(hours=1, minutes=2, seconds=3), 0) == "-01:02:03"
    assert mysql_time(timedelta(hours=838, microseconds=500000), 3) == "838:00:00.500"


@pytest.mark.parametrize(("data", "stored"), [
    (b"plain text!", b"plain text!"),
    (base64.b64encode(b"\xff\x00"), b"\xff\x00"),
    (b'"a\\nb"', b"a\nb"),
    (b'"' + base64.b64encode(b"in quotes") + b'"', b"in quotes"),
    (b"`raw`", b"`raw`"[1:-1]),
    (b"abc", b"abc"),  # not padded: not base64 for Go's StdEncoding
    (b"", b""),
])
def test_localstorage_payload(data: bytes, stored: bytes) -> None:
    assert decoded_payload(data) == stored


def test_redis_ttl_rule() -> None:
    assert ttl_seconds({}) is None
    assert ttl_seconds({"ttlInSeconds": "30"}) == 30
    assert ttl_seconds({"ttl": "1m30s", "ttlInSeconds": "5"}) == 90, "ttl first, as Dapr's"
    assert ttl_seconds({"TTL": "-2s"}) == 0
    with pytest.raises(InvalidArgument, match="higher than zero"):
        ttl_seconds({"ttl": "-2"})
