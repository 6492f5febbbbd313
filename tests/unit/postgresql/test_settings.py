"""Connection settings shared by every PostgreSQL component, and the JSON detection of state."""

from __future__ import annotations

import pytest

from pylotto.components._backends.postgres_client import PostgresSettings, connect_arguments
from pylotto.components.state.postgresql import PostgresStateSettings, json_document
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode


def test_url_is_passed_as_dsn() -> None:
    url = "postgresql://u:p@db.example:6543/app?sslmode=disable"
    assert connect_arguments(url) == {"dsn": url}


def test_key_value_dsn_becomes_keywords() -> None:
    args = connect_arguments(
        "host=10.0.0.1 port=6543 user=me password='a b' dbname=app sslmode=disable "
        "application_name=pylotto connect_timeout=3 options=-cfoo=bar"
    )
    assert args == {
        "host": "10.0.0.1", "port": 6543, "user": "me", "password": "a b",
        "database": "app", "ssl": "disable",
        "server_settings": {"application_name": "pylotto"},
    }


def test_several_hosts_as_libpq_names_them() -> None:
    """libpq's multi-host DSN: a host list, one port for all or one per host, and
    target_session_attrs; a URL keeps its host list for asyncpg to read."""
    assert connect_arguments("host=a,b port=5432,5433 target_session_attrs=read-write") == {
        "host": ["a", "b"], "port": [5432, 5433], "target_session_attrs": "read-write"}
    assert connect_arguments("host=a,b port=6543") == {"host": ["a", "b"], "port": 6543}
    url = "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=primary"
    assert connect_arguments(url) == {"dsn": url}


@pytest.mark.parametrize("bad", [
    "host", "port=abc host=x", "password='unclosed", "host=a,b port=1,2,3",
    "host=a target_session_attrs=leader",
    "postgres://u@a,b/db?target_session_attrs=master",
])
def test_malformed_connection_string_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="connectionString"):
        decode(PostgresSettings, {"connectionString": bad}, component="state.pg")


def test_connection_string_is_required() -> None:
    with pytest.raises(ConfigError, match="connectionString"):
        decode(PostgresSettings, {}, component="state.pg")


def test_timeout_spellings() -> None:
    base = {"connectionString": "postgres://x@h/db"}
    assert decode(PostgresSettings, base, component="c").call_timeout == 10.0
    assert decode(PostgresSettings, {**base, "timeout": "1500ms"},
                  component="c").call_timeout == 1.5
    assert decode(PostgresSettings, {**base, "timeout": "30s", "timeoutInSeconds": "7"},
                  component="c").call_timeout == 7.0


def test_table_name_is_checked() -> None:
    base = {"connectionString": "postgres://x@h/db"}
    ok = decode(PostgresStateSettings, {**base, "tableName": "app.state_1"}, component="c")
    assert ok.table_name == "app.state_1"
    with pytest.raises(ConfigError, match="tableName"):
        decode(PostgresStateSettings, {**base, "tableName": 'x"; drop table y'}, component="c")


@pytest.mark.parametrize(("value", "document"), [
    (b'{"a": 1,  "b":[true, null]}', '{"a": 1, "b": [true, null]}'),
    (b'"text"', '"text"'),
    (b"42", "42"),
    ("\"é\"".encode(), "\"é\""),
])
def test_json_values_are_detected(value: bytes, document: str) -> None:
    assert json_document(value) == document


@pytest.mark.parametrize("value", [
    b"\x00\xff", b"plain text", b"NaN", b'{"a": Infinity}', b'"\\u0000"', b'"\\ud800"', b"",
])
def test_other_values_are_binary(value: bytes) -> None:
    assert json_document(value) is None
