"""``bindings.postgresql`` and ``bindings.mysql`` against the real servers: components-contrib's
``exec``/``query``/``close``, ``params``, the response metadata and the JSON of each column
type."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from pylotto.core.errors import Internal, InvalidArgument, PylottoError
from tests.conformance.bindings.support import Bound, bound
from tests.conformance.cases import RUN_PREFIX, Case, load_cases

pytestmark = pytest.mark.timeout(60)

SQL_CASES = load_cases("bindings", where=lambda c: c.type in ("bindings.postgresql",
                                                               "bindings.mysql"))
GO_DURATION = re.compile(r"^\d+(\.\d+)?(ns|µs|ms|s)$|^\d+m\d+(\.\d+)?s$")
RFC3339_NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


@pytest.fixture(params=SQL_CASES)
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@pytest.fixture
async def binding(case: Case, tmp_path: Path) -> AsyncIterator[Bound]:
    async with bound(case, tmp_path) as built:
        yield built


@pytest.fixture
def table() -> str:
    return f"{RUN_PREFIX}_bind_{uuid.uuid4().hex[:8]}"


def marks(case: Case, count: int) -> str:
    """The statement's placeholders: ``$1, $2`` (PostgreSQL) or ``?, ?`` (MySQL)."""
    if case.type == "bindings.postgresql":
        return ", ".join(f"${i}" for i in range(1, count + 1))
    return ", ".join("?" * count)


def check_times(metadata: dict[str, str]) -> None:
    start, end = metadata["start-time"], metadata["end-time"]
    assert RFC3339_NANO_UTC.match(start) and RFC3339_NANO_UTC.match(end), metadata
    started = datetime.fromisoformat(start.replace("Z", "+00:00"))
    ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
    assert started <= ended
    assert GO_DURATION.match(metadata["duration"]), metadata["duration"]


async def test_exec_and_query_with_params(case: Case, binding: Bound, table: str) -> None:
    created = await binding.invoke(
        "exec", sql=f"CREATE TABLE {table} (id INT NOT NULL, name VARCHAR(20), score INT)")
    assert created.data == b""
    assert set(created.metadata) == {"operation", "sql", "start-time", "end-time", "duration",
                                     "rows-affected"}
    assert created.metadata["operation"] == "exec"
    assert created.metadata["rows-affected"] == "0"
    check_times(created.metadata)
    insert = f"INSERT INTO {table} (id, name, score) VALUES ({marks(case, 3)})"
    for row in ([1, "ann", 10], [2, "bob", None], [3, "cy", 30]):
        added = await binding.invoke("exec", sql=insert, params=json.dumps(row))
        assert added.metadata["rows-affected"] == "1"
        assert added.metadata["sql"] == insert
    updated = await binding.invoke("exec", sql=f"UPDATE {table} SET score = 0 WHERE id > 1")
    assert updated.metadata["rows-affected"] == "2"
    selected = await binding.invoke("exec", sql=f"SELECT id FROM {table}")
    # pgx counts a SELECT's rows (its command tag), go-sql-driver none
    assert selected.metadata["rows-affected"] == ("3" if case.type == "bindings.postgresql"
                                                  else "0")
    query = f"SELECT id, name, score FROM {table} WHERE id >= {marks(case, 1)} ORDER BY id"
    answer = await binding.invoke("query", sql=query, params="[2]")
    assert set(answer.metadata) == {"operation", "sql", "start-time", "end-time", "duration"}
    assert (answer.metadata["operation"], answer.metadata["sql"]) == ("query", query)
    check_times(answer.metadata)
    if case.type == "bindings.postgresql":
        assert answer.data == b'[[2,"bob",0],[3,"cy",0]]'
    else:
        assert answer.data == b'[{"id":2,"name":"bob","score":0},{"id":3,"name":"cy","score":0}]'
    nothing = await binding.invoke("query", sql=f"SELECT id FROM {table} WHERE id > 100")
    assert nothing.data == (b"[]" if case.type == "bindings.postgresql" else b"null")
    await binding.invoke("exec", sql=f"DROP TABLE {table}")


async def test_a_null_column(case: Case, binding: Bound) -> None:
    answer = await binding.invoke("query", sql="SELECT 1 AS a, NULL AS b")
    if case.type == "bindings.postgresql":
        assert answer.data == b"[[1,null]]"
    else:
        assert answer.data == b'[{"a":1}]', "a NULL column is left out, as Dapr's"


async def test_sql_is_required(binding: Bound) -> None:
    for operation in ("exec", "query"):
        with pytest.raises(InvalidArgument) as refused:
            await binding.invoke(operation)
        assert refused.value.message == "required metadata not set: sql"


@pytest.mark.parametrize("params", ['{"a": 1}', "[1,", '"x"'])
async def test_params_must_be_a_json_array(binding: Bound, params: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid metadata property params: failed to "
                                               r"unserialize into an array"):
        await binding.invoke("query", sql="SELECT 1", params=params)


async def test_a_bad_statement_is_the_servers_error(binding: Bound) -> None:
    with pytest.raises(Internal):
        await binding.invoke("query", sql="SELEC nothing")


async def test_wrong_number_of_params_is_refused(case: Case, binding: Bound) -> None:
    with pytest.raises(PylottoError) as refused:
        await binding.invoke("query", sql=f"SELECT {marks(case, 2)}", params="[1]")
    assert isinstance(refused.value, InvalidArgument)


async def test_close_then_calls_are_refused(binding: Bound) -> None:
    closed = await binding.invoke("close")
    assert (closed.data, closed.metadata) == (b"", {})
    with pytest.raises(Internal, match="component is closed"):
        await binding.invoke("query", sql="SELECT 1")
    await binding.invoke("close")  # closing again is no error, as Dapr's


# ---- the JSON of each column type --------------------------------------------------------


async def test_postgresql_column_types(tmp_path: Path, table: str) -> None:
    case = next(p.values[0] for p in SQL_CASES if p.id == "postgresql")
    async with bound(case, tmp_path) as binding:
        await binding.invoke("exec", sql=(
            f"CREATE TABLE {table} (i int8, n numeric(6,2), f float8, r real, t text, b bool, "
            "ts timestamp, tz timestamptz, d date, tm time, iv interval, u uuid, j jsonb, "
            "by bytea, arr int4[], nul text)"))
        await binding.invoke("exec", sql=(
            f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '12:34:56.5', "
            "'1 day 02:03:04', $10, $11, '\\x0102', ARRAY[1, 2], NULL)"), params=json.dumps([
                5, 12.5, 1.5, 0.1, "a<b", True, "2026-12-02T10:00:00.123Z",
                "2026-12-02T10:00:00Z", "2026-12-02", "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                {"z": [1, "x"], "a": None}]))
        answer = await binding.invoke("query", sql=f"SELECT * FROM {table}")
        uuid_bytes = list(uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8").bytes)
        tz = datetime.fromisoformat("2026-12-02T10:00:00+00:00").astimezone().isoformat()
        tz_go = tz.replace("+00:00", "Z")
        assert answer.data.decode() == (
            '[[5,12.50,1.5,0.1,"a\\u003cb",true,"2026-12-02T10:00:00.123Z",'
            f'"{tz_go}","2026-12-02T00:00:00Z",'
            '{"Microseconds":45296500000,"Valid":true},'
            '{"Microseconds":7384000000,"Days":1,"Months":0,"Valid":true},'
            f'[{",".join(map(str, uuid_bytes))}],'
            '{"a":null,"z":[1,"x"]},"AQI=",[1,2],null]]')
        await binding.invoke("exec", sql=f"DROP TABLE {table}")


async def test_postgresql_exec_without_params_runs_several_statements(
    tmp_path: Path, table: str
) -> None:
    case = next(p.values[0] for p in SQL_CASES if p.id == "postgresql")
    async with bound(case, tmp_path) as binding:
        done = await binding.invoke("exec", sql=(
            f"CREATE TABLE {table} (i int); INSERT INTO {table} VALUES (1), (2), (3)"))
        assert done.metadata["rows-affected"] == "3", "the last statement's count, as pgx"
        await binding.invoke("exec", sql=f"DROP TABLE {table}")


async def test_mysql_column_types(tmp_path: Path, table: str) -> None:
    case = next(p.values[0] for p in SQL_CASES if p.id == "mysql")
    async with bound(case, tmp_path) as binding:
        await binding.invoke("exec", sql=(
            f"CREATE TABLE {table} (id BIGINT NOT NULL, u INT UNSIGNED, n DECIMAL(6,2), "
            "f FLOAT, d DOUBLE, t VARCHAR(20), tx TEXT, b TINYINT(1), dt DATETIME(3), da DATE, "
            "tm TIME, bl BLOB, vb VARBINARY(4), e ENUM('x','y'), nul VARCHAR(3))"))
        await binding.invoke("exec", sql=(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, '100%?', ?, ?, ?, '-01:02:03', "
            "x'0102', x'03', 'y', NULL)"), params=json.dumps([
                1, 2, 12.5, 1.5, 0.1, "a<b", True, "2026-12-02 10:00:00.123", "2026-12-02"]))
        answer = await binding.invoke("query", sql=f"SELECT * FROM {table} WHERE id = ?",
                                      params="[1]")
        assert answer.data.decode() == (
            '[{"b":1,"bl":"AQI=","d":0.1,"da":"2026-12-02T00:00:00Z",'
            '"dt":"2026-12-02T10:00:00.123Z","e":"y","f":1.5,"id":1,"n":"12.50",'
            '"t":"a\\u003cb","tm":"-01:02:03","tx":"100%?","u":2,"vb":"Aw=="}]')
        with pytest.raises(InvalidArgument, match="unsupported type map"):
            await binding.invoke("exec", sql=f"UPDATE {table} SET t = ?", params='[{"a": 1}]')
        await binding.invoke("exec", sql=f"DROP TABLE {table}")


async def test_mysql_question_marks_in_quotes_are_no_params(tmp_path: Path) -> None:
    case = next(p.values[0] for p in SQL_CASES if p.id == "mysql")
    async with bound(case, tmp_path) as binding:
        answer = await binding.invoke(
            "query", sql="SELECT '?%' AS a, ? AS b /* ? */, \"it''s ?\" AS c -- ?\n",
            params='["x"]')
        assert answer.data == b'[{"a":"?%","b":"x","c":"it\'\'s ?"}]'


async def test_postgresql_params_take_the_servers_types(tmp_path: Path) -> None:
    case = next(p.values[0] for p in SQL_CASES if p.id == "postgresql")
    async with bound(case, tmp_path) as binding:
        answer = await binding.invoke(
            "query", sql="SELECT $1::int8 + 1, $2::numeric * 2, $3::text, $4::bool, $5::jsonb",
            params='[2.0, "1.25", 7, "true", [1, {"b": 2}]]')
        assert answer.data == b'[[3,2.50,"7",true,[1,{"b":2}]]]'
        with pytest.raises(InvalidArgument, match="error executing query"):
            await binding.invoke("query", sql="SELECT $1::int", params='["abc"]')
