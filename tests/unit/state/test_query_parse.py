"""Parsing and reference evaluation of Dapr-format state queries."""

from __future__ import annotations

import json

import pytest

from pylotto.components.state.query import (
    And,
    Eq,
    In,
    Order,
    Query,
    QueryItem,
    Range,
    RangeOp,
    SortKey,
    decode_offset_token,
    encode_offset_token,
    parse_query,
    sort_and_filter_sequence,
)
from pylotto.core.errors import InvalidArgument


def test_full_query_parses() -> None:
    q = parse_query(
        json.dumps(
            {
                "filter": {
                    "AND": [
                        {"EQ": {"person.org": "Dev"}},
                        {"IN": {"state": ["CA", "WA"]}},
                        {"GTE": {"age": 30}},
                    ]
                },
                "sort": [{"key": "person.id", "order": "DESC"}, {"key": "age"}],
                "page": {"limit": 2, "token": "abc"},
            }
        )
    )
    assert q.filter == And(
        (
            Eq(("person", "org"), "Dev"),
            In(("state",), ("CA", "WA")),
            Range(RangeOp.GTE, ("age",), 30),
        )
    )
    assert q.sort == (SortKey(("person", "id"), Order.DESC), SortKey(("age",), Order.ASC))
    assert (q.limit, q.token) == (2, "abc")


def test_empty_query_matches_everything() -> None:
    assert parse_query(b"{}") == Query()
    assert parse_query({"filter": {}}) == Query()


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "[]",
        '{"filters": {}}',
        '{"filter": {"EQ": {"a": 1}, "IN": {"b": [1]}}}',
        '{"filter": {"LIKE": {"a": 1}}}',
        '{"filter": {"AND": [{"EQ": {"a": 1}}]}}',
        '{"filter": {"IN": {"a": []}}}',
        '{"filter": {"EQ": {"a": [1]}}}',
        '{"filter": {"GT": {"a": true}}}',
        '{"filter": {"EQ": {"a..b": 1}}}',
        '{"sort": [{"key": "a", "order": "UP"}]}',
        '{"sort": {"key": "a"}}',
        '{"page": {"limit": -1}}',
        '{"page": {"limit": "3"}}',
        '{"page": {"token": 5}}',
    ],
)
def test_bad_queries_are_invalid_arguments(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_query(bad)


def test_offset_tokens_round_trip_and_garbage_is_refused() -> None:
    assert decode_offset_token(encode_offset_token(17)) == 17
    assert decode_offset_token("") == 0
    for garbage in ("???", "eyJ4IjogMX0", encode_offset_token(0)[:-1] + "!"):
        with pytest.raises(InvalidArgument):
            decode_offset_token(garbage)


def _items(**values: object) -> list[QueryItem]:
    return [QueryItem(k, json.dumps(v).encode(), "1") for k, v in values.items()]


ROWS = _items(
    a={"org": "dev", "age": 40, "id": 3},
    b={"org": "ops", "age": 25, "id": 1},
    c={"org": "dev", "age": 31, "id": 2},
    d={"org": "dev", "age": "old", "id": 4},
    e={"other": True},
)


def keys(query: dict[str, object]) -> list[str]:
    return [i.key for i in sort_and_filter_sequence(ROWS, parse_query(query)).items]


def test_filters_sort_and_types() -> None:
    assert keys({"filter": {"EQ": {"org": "dev"}}, "sort": [{"key": "id"}]}) == ["c", "a", "d"]
    assert keys({"filter": {"GT": {"age": 30}}, "sort": [{"key": "age", "order": "DESC"}]}) == [
        "a",
        "c",
    ]
    assert keys({"filter": {"OR": [{"EQ": {"org": "ops"}}, {"LT": {"age": 32}}]}}) == ["b", "c"]
    assert keys({"filter": {"IN": {"id": [4, 1]}}}) == ["b", "d"]
    assert keys({"filter": {"EQ": {"other": 1}}}) == []  # true is not 1
    assert keys({}) == ["a", "b", "c", "d", "e"]


def test_non_json_values_never_match() -> None:
    items = [QueryItem("bin", b"\xff\x00", None), *ROWS]
    result = sort_and_filter_sequence(items, Query())
    assert "bin" not in [i.key for i in result.items]


def test_paging_walks_every_item_once() -> None:
    seen: list[str] = []
    token = ""
    while True:
        q = parse_query({"sort": [{"key": "id"}], "page": {"limit": 2, "token": token}})
        result = sort_and_filter_sequence(ROWS, q)
        seen += [i.key for i in result.items]
        token = result.token
        if not token:
            break
    assert seen == ["e", "b", "c", "a", "d"]
