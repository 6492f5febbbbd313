"""The snowflake's two modes: pylotto's standalone layout and Layotto's MySQL one."""

from __future__ import annotations

from datetime import date

import pytest

from pylotto.components.sequencer.snowflake import SnowflakeSettings
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode

LAYOTTO = {"mysqlHost": "127.0.0.1:3306", "databaseName": "db", "userName": "u",
           "password": "p"}


def settings(**metadata: str) -> SnowflakeSettings:
    return decode(SnowflakeSettings, metadata, component="sequencer.sf")


def test_standalone_defaults() -> None:
    s = settings()
    assert s.layout == (41, 10, 12) and not s.uses_mysql
    assert s.epoch.date() == date(2024, 1, 1) and s.epoch.utcoffset() is not None


def test_layottos_defaults_with_mysql() -> None:
    s = settings(**LAYOTTO)
    assert s.layout == (28, 22, 13) and s.uses_mysql
    assert s.epoch.date() == date(2022, 1, 1)
    assert (s.table_name, s.key_table_name) == ("layotto_sequencer_snowflake",
                                                "layotto_sequencer_snowflake_key")
    assert (s.req_timeout, s.key_timeout) == (500, 24)


def test_layottos_layout_is_accepted_as_strings() -> None:
    s = settings(**LAYOTTO, timeBits="28", workerBits="22", seqBits="13",
                 startTime="2023-06-01", reqTimeout="100", keyTimeout="1")
    assert s.layout == (28, 22, 13) and s.epoch.date() == date(2023, 6, 1)


@pytest.mark.parametrize(("metadata", "message"), [
    ({"timeBits": "28"}, "must be 63"),
    ({**LAYOTTO, "seqBits": "12"}, "must be 63"),
    ({**LAYOTTO, "workerId": "3"}, "workerId"),
    ({"mysqlHost": "h:3306", "userName": "u"}, "databaseName"),
    ({"mysqlHost": "h:3306", "databaseName": "d"}, "userName"),
    ({"workerId": "1024"}, "below 1024"),
    ({**LAYOTTO, "tableName": "x; DROP"}, "tableName"),
])
def test_refused(metadata: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(**metadata)
