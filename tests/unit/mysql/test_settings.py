"""Connection strings (Go DSN and mysql:// URL) and settings shared by the MySQL components,
and the JSON detection of the state store. No server needed."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from pylotto.components._backends.mysql_client import MySQLSettings, connect_arguments, map_error
from pylotto.components.state.mysql import MySQLStateSettings, json_document
from pylotto.core.errors import ConfigError, Internal, Unavailable
from pylotto.core.metadata import decode


@pytest.mark.parametrize(("dsn", "expected"), [
    ("root:@tcp(127.0.0.1:3306)/test",
     {"user": "root", "password": "", "host": "127.0.0.1", "port": 3306, "db": "test"}),
    ("app:s3cret@tcp(db.example:3307)/orders?parseTime=true&charset=utf8mb4&loc=Local",
     {"user": "app", "password": "s3cret", "host": "db.example", "port": 3307, "db": "orders"}),
    # as go-sql-driver: the last '/' starts the database, the last '@' before it ends the
    # credentials, the first ':' splits them — passwords may hold '@', ':' and '/'
    ("me:p@ss:w/rd@tcp(10.0.0.1:3306)/app",
     {"user": "me", "password": "p@ss:w/rd", "host": "10.0.0.1", "port": 3306, "db": "app"}),
    ("me@tcp(localhost)/app",
     {"user": "me", "password": "", "host": "localhost", "port": 3306, "db": "app"}),
    ("me@tcp([::1]:3310)/app",
     {"user": "me", "password": "", "host": "::1", "port": 3310, "db": "app"}),
    ("me@tcp/app", {"user": "me", "password": "", "host": "127.0.0.1", "port": 3306, "db": "app"}),
    ("/app", {"user": "root", "password": "", "host": "127.0.0.1", "port": 3306, "db": "app"}),
    ("me@unix(/run/mysqld/mysqld.sock)/app",
     {"user": "me", "password": "", "unix_socket": "/run/mysqld/mysqld.sock", "db": "app"}),
    ("me@tcp(h:1)/", {"user": "me", "password": "", "host": "h", "port": 1}),
    ("me@tcp(h)/my%20db?timeout=1500ms&readTimeout=3s",
     {"user": "me", "password": "", "host": "h", "port": 3306, "db": "my db",
      "connect_timeout": 1.5}),
    ("me@tcp(h)/app?sql_mode=%27TRADITIONAL%27&time_zone=%27%2B00:00%27",
     {"user": "me", "password": "", "host": "h", "port": 3306, "db": "app",
      "init_command": "SET SESSION sql_mode = 'TRADITIONAL', time_zone = '+00:00'"}),
    ("mysql://app:p%40ss@db.example:3307/orders",
     {"user": "app", "password": "p@ss", "host": "db.example", "port": 3307, "db": "orders"}),
    ("MYSQL://db.example/orders?timeout=2s",
     {"user": "root", "password": "", "host": "db.example", "port": 3306, "db": "orders",
      "connect_timeout": 2.0}),
])
def test_connection_strings_become_connect_keywords(dsn: str, expected: dict[str, Any]) -> None:
    assert connect_arguments(dsn) == expected


@pytest.mark.parametrize(("mode", "verify"), [("true", True), ("skip-verify", False),
                                              ("preferred", False)])
def test_tls_parameter(mode: str, verify: bool) -> None:
    context = connect_arguments(f"me@tcp(h)/app?tls={mode}")["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is verify
    assert (context.verify_mode == ssl.CERT_REQUIRED) is verify
    assert "ssl" not in connect_arguments("me@tcp(h)/app?tls=false")


@pytest.mark.parametrize(("dsn", "message"), [
    ("root@127.0.0.1:3306", "no '/database'"),
    ("", "empty"),
    ("me@tcp(h:3306/app", "not terminated"),
    ("me@tcp(h:abc)/app", "port 'abc'"),
    ("me@tcp(h:70000)/app", "port '70000'"),
    ("me@tcp([::1/app", "not terminated"),
    ("me@udp(h)/app", "network 'udp'"),
    ("me@tcp(h)/app?tls=custom", "tls='custom'"),
    ("me@tcp(h)/app?timeout=soon", "timeout"),
    ("me@tcp(h)/app?bad-name=1", "'bad-name'"),
    ("mysql:///app", "no host"),
    ("mysql://h:port/app", "not a valid mysql:// URL"),
    ("mysql://h/a/b", "is not /database"),
])
def test_malformed_connection_strings_are_refused(dsn: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        connect_arguments(dsn)


def test_malformed_connection_string_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="connectionString"):
        decode(MySQLSettings, {"connectionString": "me:pw@tcp(h:x)/app"}, component="c")


def test_messages_about_a_connection_string_hide_its_password() -> None:
    with pytest.raises(ValueError, match="port 'x'") as caught:
        connect_arguments("me:hunter2@tcp(h:x)/app")
    assert "hunter2" not in str(caught.value)
    assert "me:***@tcp(h:x)/app" in str(caught.value)


def test_connection_string_must_name_a_database_unless_schema_name_is_set() -> None:
    with pytest.raises(ConfigError, match="names no database"):
        decode(MySQLSettings, {"connectionString": "me@tcp(h)/"}, component="c")
    settings = decode(MySQLSettings, {"connectionString": "me@tcp(h)/", "schemaName": "s1"},
                      component="c")
    assert settings.schema_name == "s1"
    state = decode(MySQLStateSettings, {"connectionString": "me@tcp(h)/", "schemaName": "s2"},
                   component="c")
    assert (state.schema_name, state.table_name) == ("s2", "state")
    with pytest.raises(ConfigError, match="connectionString"):
        decode(MySQLSettings, {}, component="c")


def test_timeout_spellings_and_pool_sizes() -> None:
    base = {"connectionString": "me@tcp(h)/app"}
    default = decode(MySQLSettings, base, component="c")
    assert (default.call_timeout, default.max_conns, default.min_conns) == (10.0, 10, 0)
    assert decode(MySQLSettings, {**base, "timeout": "1500ms"}, component="c").call_timeout == 1.5
    assert decode(MySQLSettings, {**base, "timeout": "30s", "timeoutInSeconds": "7"},
                  component="c").call_timeout == 7.0
    sized = decode(MySQLSettings, {**base, "maxConns": "3", "minConns": "1"}, component="c")
    assert (sized.max_conns, sized.min_conns) == (3, 1)
    with pytest.raises(ConfigError, match="maxConns"):
        decode(MySQLSettings, {**base, "maxConns": "0"}, component="c")
    with pytest.raises(ConfigError, match="timeout"):
        decode(MySQLSettings, {**base, "timeout": "0s"}, component="c")


def test_table_and_schema_names_are_checked() -> None:
    base = {"connectionString": "me@tcp(h)/app"}
    ok = decode(MySQLStateSettings, {**base, "tableName": "state_1", "schemaName": "dapr"},
                component="c")
    assert (ok.table_name, ok.schema_name) == ("state_1", "dapr")
    for key, bad in [("tableName", "x`; drop table y"), ("tableName", "a.b"),
                     ("tableName", "t" * 58), ("schemaName", "x y")]:
        with pytest.raises(ConfigError, match=key):
            decode(MySQLStateSettings, {**base, key: bad}, component="c")


def test_driver_errors_are_mapped() -> None:
    import pymysql

    assert isinstance(map_error(TimeoutError(), "w"), Unavailable)
    assert isinstance(map_error(ConnectionResetError(), "w"), Unavailable)
    assert isinstance(map_error(pymysql.err.InterfaceError(0, "closed"), "w"), Unavailable)
    for code in (2003, 2006, 2013, 2055):
        error = map_error(pymysql.err.OperationalError(code, "gone"), "state store x")
        assert isinstance(error, Unavailable) and "state store x" in error.message
    for code in (1205, 1969):  # the server enforcing the call's timeout
        error = map_error(pymysql.err.OperationalError(code, "interrupted"), "w")
        assert isinstance(error, Unavailable) and "did not answer in time" in error.message
    assert isinstance(map_error(pymysql.err.OperationalError(1045, "denied"), "w"), Internal)
    assert isinstance(map_error(pymysql.err.ProgrammingError(1064, "syntax"), "w"), Internal)
    assert isinstance(map_error(ValueError("x"), "w"), Internal)


@pytest.mark.parametrize(("value", "doc"), [
    (b'{"a": 1,  "b":[true, null]}', '{"a": 1, "b": [true, null]}'),
    (b'"text"', '"text"'),
    (b"42", "42"),
    ('"é😀"'.encode(), '"é😀"'),
    (b'{"z": "\\u0000"}', '{"z": "\\u0000"}'),
    (b'\xef\xbb\xbf{"bom": 1}', '{"bom": 1}'),
    ('{"utf16": 1}'.encode("utf-16"), '{"utf16": 1}'),
    (b"[" * 31 + b"]" * 31, "[" * 31 + "]" * 31),
    (b'{"a":' * 31 + b"1" + b"}" * 31, '{"a": ' * 31 + "1" + "}" * 31),
])
def test_json_values_get_a_document(value: bytes, doc: str) -> None:
    assert json_document(value) == (doc, True)


@pytest.mark.parametrize("value", [
    b"NaN", b'{"a": Infinity}', b'{"a": 1e999}', b'"\\ud800"', b"[" * 32 + b"]" * 32,
])
def test_json_the_server_cannot_hold_has_no_document_but_is_json(value: bytes) -> None:
    assert json_document(value) == (None, True)


@pytest.mark.parametrize("value", [b"\x00\xff", b"plain text", b"", b"{", b"[1,]", b"\xff\xfe"])
def test_other_values_are_binary(value: bytes) -> None:
    assert json_document(value) == (None, False)
