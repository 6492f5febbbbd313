"""parse_ttl_seconds: the one decoding of ttlInSeconds, bounded by what every store holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pylotto.components.state.base import StateSettings
from pylotto.core.errors import ConfigError, InvalidArgument
from pylotto.core.metadata import MAX_TTL_SECONDS, decode, parse_ttl_seconds


@pytest.mark.parametrize(("raw", "minimum", "seconds"), [
    ("60", 1, 60), (" 5 ", 1, 5), ("+7", 1, 7), ("2147483647", 1, MAX_TTL_SECONDS),
    ("-1", -MAX_TTL_SECONDS, -1), ("0", -MAX_TTL_SECONDS, 0),
])
def test_a_ttl_in_range_is_taken(raw: str, minimum: int, seconds: int) -> None:
    assert parse_ttl_seconds(raw, minimum=minimum) == seconds


@pytest.mark.parametrize(("raw", "says"), [
    ("253402300799", "longer than the longest TTL"),  # year 10056: past datetime's range
    ("9999999999999999999", "longer than the longest TTL"),  # OverflowError in fromtimestamp
    ("9" * 400, "longer than the longest TTL"),  # never handed to int()
    ("2147483648", "longer than the longest TTL"),
    ("-" + "9" * 30, "out of range"),
    ("soon", "not an integer"), ("1.5", "not an integer"), ("", "not an integer"),
    ("١٢", "not an integer"),  # int() would read Arabic-Indic digits; Go does not
    ("1_000", "not an integer"),
])
def test_a_ttl_out_of_range_or_not_a_number_is_an_invalid_argument(raw: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says) as caught:
        parse_ttl_seconds(raw, minimum=-MAX_TTL_SECONDS)
    assert "ttlInSeconds" in caught.value.message
    assert len(caught.value.message) < 200  # a 400-digit value is cut short in the message


def test_a_publish_ttl_must_be_positive() -> None:
    for raw in ("0", "-5"):
        with pytest.raises(InvalidArgument, match="higher than zero"):
            parse_ttl_seconds(raw, minimum=1)


def test_the_longest_ttl_is_a_moment_every_store_holds() -> None:
    latest = datetime.now(UTC) + timedelta(seconds=MAX_TTL_SECONDS)
    assert latest.year < 2100
    assert latest.timestamp() * 1000 < 2**63  # Redis' PX / PEXPIREAT milliseconds


def test_a_component_default_ttl_has_the_same_bounds() -> None:
    assert decode(StateSettings, {"ttlInSeconds": "300"}, component="s").ttl_in_seconds == 300
    with pytest.raises(ConfigError, match="longer than the longest TTL"):
        decode(StateSettings, {"ttlInSeconds": "253402300799"}, component="s")
