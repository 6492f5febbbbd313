"""``bench.grpc_stacks`` keeps working: one very short round of two stacks against Redis
(a smoke run of the harness; the figures themselves are not judged, only that they exist)."""

from __future__ import annotations

import pytest

from bench.grpc_stacks import measure, table
from tests.support.servers import require


@pytest.mark.timeout(30)
async def test_one_short_round_measures_cpu_and_rate_of_each_stack() -> None:
    require("redis")
    result = await measure(["aio-min", "http-aiohttp"], rounds=1, seconds=0.3, warmup=0.1,
                           concurrency=2, progress=lambda _line: None)
    assert result["failed"] == {}
    for stack in ("aio-min", "http-aiohttp"):
        row = result["medians"][stack]
        assert row["errors"] == 0
        assert row["rps"] > 0
        assert row["cpu_us_per_req"] is not None and row["cpu_us_per_req"] > 0
    text = table(result)
    assert "| aio-min |" in text and "| http-aiohttp |" in text
