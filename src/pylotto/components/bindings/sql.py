"""What the SQL output bindings (``bindings.postgresql``, ``bindings.mysql``) share, as
components-contrib's: the operations ``exec``, ``query`` and ``close``, request metadata ``sql``
(required) and ``params`` (a JSON array of the statement's arguments), and the response metadata
``operation``, ``sql``, ``start-time``, ``end-time`` (RFC 3339 with nanoseconds, UTC),
``duration`` (a Go duration) and, for ``exec``, ``rows-affected``.

``close`` closes the binding's pool; every later ``exec`` or ``query`` is refused
(``component is closed``) until the component is started again (hot reload, restart), as Dapr's.
"""

from __future__ import annotations

import abc
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pylotto.components.bindings.base import BindingRequest, BindingResponse, OutputBinding
from pylotto.core.errors import Internal, InvalidArgument

EXEC, QUERY, CLOSE = "exec", "query", "close"

_UNITS = ((1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"))


def go_duration(seconds: float) -> str:
    """``seconds`` as Go's ``Duration.String`` prints it (``1.234567ms``, ``2.5s``,
    ``1m3.2s``; ``µs`` below a millisecond, ``ns`` below a microsecond)."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos < 1_000_000_000:
        for scale, unit in reversed(_UNITS):
            step = round(scale * 1e9)
            if nanos >= step:
                whole, frac = divmod(nanos, step)
                digits = len(str(step)) - 1
                text = str(whole) + (f".{frac:0{digits}d}".rstrip("0") if frac else "")
                return f"{sign}{text}{unit}"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    whole, frac = divmod(rest, 1_000_000_000)
    text = f"{whole}" + (f".{frac:09d}".rstrip("0") if frac else "") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def rfc3339_nano(when: datetime) -> str:
    """``when`` as Go's ``time.RFC3339Nano`` (fraction without trailing zeros, ``Z`` for a
    zero offset)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    offset = when.utcoffset() or timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_params(metadata: dict[str, str]) -> list[Any]:
    """The ``params`` request metadata: a JSON array (absent or empty: no arguments)."""
    text = metadata.get("params", "")
    if not text:
        return []
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument("invalid metadata property params: failed to unserialize into an "
                              f"array: {exc}") from None
    if not isinstance(params, list):
        raise InvalidArgument("invalid metadata property params: failed to unserialize into an "
                              f"array: a JSON {type(params).__name__} is not an array")
    return params


class SqlBinding(OutputBinding):
    """The request handling of a SQL binding; subclasses run the statements."""

    operations: ClassVar[tuple[str, ...]] = (EXEC, QUERY, CLOSE)

    _closed = False

    @abc.abstractmethod
    async def run_exec(self, sql: str, params: list[Any]) -> int:
        """Run a statement; the number of rows it affected."""

    @abc.abstractmethod
    async def run_query(self, sql: str, params: list[Any]) -> bytes:
        """Run a query; its rows as the binding's JSON."""

    @abc.abstractmethod
    async def close_pool(self) -> None: ...

    async def close(self) -> None:
        self._closed = True
        await self.close_pool()

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        if request.operation == CLOSE:
            await self.close()
            return BindingResponse()
        if self._closed:
            raise Internal(f"binding {self.name}: component is closed")
        metadata = dict(request.metadata)
        sql = metadata.get("sql", "")
        if not sql:
            raise InvalidArgument("required metadata not set: sql")
        params = parse_params(metadata)
        started = datetime.now(UTC)
        clock = time.perf_counter()
        out = {"operation": request.operation, "sql": sql, "start-time": rfc3339_nano(started)}
        data = b""
        if request.operation == EXEC:
            out["rows-affected"] = str(await self.run_exec(sql, params))
        elif request.operation == QUERY:
            data = await self.run_query(sql, params)
        else:
            raise InvalidArgument(f"invalid operation type: {request.operation}. Expected "
                                  f"{EXEC}, {QUERY}, or {CLOSE}")
        elapsed = time.perf_counter() - clock
        out["end-time"] = rfc3339_nano(started + timedelta(seconds=elapsed))
        out["duration"] = go_duration(elapsed)
        return BindingResponse(data=data, metadata=out)

