"""The bindings contract every case keeps: the operations Dapr's binding has, an unknown one
refused with the list (daprd's words), no features, and an outage that gives Unavailable and
heals once the server is back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from pylotto.core.errors import ConfigError, InvalidArgument, Unavailable
from tests.conformance.bindings.support import Bound, bound, extra_metadata
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    assert_declares_exactly,
    build,
    load_cases,
    once_back,
)
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)

OPERATIONS = {
    "bindings.redis": ("create", "delete", "get", "increment"),
    "bindings.postgresql": ("exec", "query", "close"),
    "bindings.mysql": ("exec", "query", "close"),
    "bindings.localstorage": ("create", "get", "list", "delete"),
    "bindings.rabbitmq": ("create",),
    "bindings.mqtt3": ("create",),
}
"""components-contrib's ``Operations()`` of each binding, in its order."""


@pytest.fixture(params=load_cases("bindings"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


async def test_declares_no_features_and_dapr_operations(case: Case, tmp_path: Path) -> None:
    async with bound(case, tmp_path) as binding:
        assert_declares_exactly(case, binding.component)
        assert binding.component.operations == OPERATIONS[case.type]


async def test_unknown_operation_lists_the_supported_ones(case: Case, tmp_path: Path) -> None:
    async with bound(case, tmp_path) as binding:
        with pytest.raises(InvalidArgument) as refused:
            await binding.invoke("nope", key="k", sql="SELECT 1", fileName="f")
        supported = " ".join(OPERATIONS[case.type])
        assert refused.value.fields["detail"] == (f"binding store does not support operation nope. "
                                        f"supported operations:{supported}")
        with pytest.raises(InvalidArgument, match="operation field is missing"):
            await binding.invoke("")


async def one_call(binding: Bound, case: Case, marker: str) -> None:
    """A call reaching the case's server."""
    if case.type == "bindings.redis":
        await binding.invoke("create", marker.encode(), key=marker)
        assert (await binding.invoke("get", key=marker)).data == marker.encode()
    elif case.type in ("bindings.rabbitmq", "bindings.mqtt3"):
        assert (await binding.invoke("create", marker.encode())).data == b""
    else:
        reply = await binding.invoke("query", sql="SELECT 1")
        assert reply.data in (b"[[1]]", b'[{"1":1}]')


@pytest.mark.parametrize("case", load_cases("bindings", where=lambda c: bool(c.proxy)),
                         indirect=True)
async def test_outage_gives_unavailable_then_recovers(case: Case, tmp_path: Path) -> None:
    marker = f"{RUN_PREFIX}-{uuid.uuid4().hex[:8]}"
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        async with bound(case, tmp_path, **case.via_proxy(proxy.port)) as binding:
            await one_call(binding, case, marker)
            proxy.cut()
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await one_call(binding, case, marker)
            with pytest.raises(Unavailable):
                await binding.component.ping()
            assert time.monotonic() - started < 20, "calls must fail within their timeout"
            proxy.restore()
            await once_back(lambda: one_call(binding, case, marker))
            if case.type == "bindings.redis":
                await binding.invoke("delete", key=marker)


REQUIRED = {
    "bindings.redis": "redisHost", "bindings.postgresql": "connectionString",
    "bindings.mysql": "url", "bindings.localstorage": "rootPath", "bindings.rabbitmq": "host",
    "bindings.mqtt3": "url",
}
BAD_VALUES = {
    "bindings.redis": ("redisHost", "127.0.0.1:port"),
    "bindings.postgresql": ("timeout", "500ms"),  # Dapr's: at least 1s
    "bindings.mysql": ("url", "root@tcp(127.0.0.1:3306/test"),
    "bindings.localstorage": ("rootPath", "/proc/self/x"),
    "bindings.rabbitmq": ("maxPriority", "-1"),
    "bindings.mqtt3": ("url", "http://127.0.0.1:1883"),
}


async def test_a_missing_required_key_is_named(case: Case, tmp_path: Path) -> None:
    key = REQUIRED[case.type]
    metadata = {k: v for k, v in {**extra_metadata(case, tmp_path),
                                  **case.resolved_metadata()}.items() if k != key}
    with pytest.raises(ConfigError, match=key):
        async with build(Case("bindings", case.name, case.type, metadata=metadata,
                              servers=case.servers), tmp_path):
            pass


async def test_a_bad_value_is_named(case: Case, tmp_path: Path) -> None:
    key, value = BAD_VALUES[case.type]
    with pytest.raises(ConfigError, match=f"{key}|disallowed"):
        async with bound(case, tmp_path, **{key: value}):
            pass
