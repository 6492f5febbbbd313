"""The machinery every scenario shares: settings, the progress line, stubs on connections of
their own, and interleaved rounds of several paths with their medians."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from bench.stats import Round, median_summary
from pylotto.proto.layotto import runtime_pb2_grpc

VALUE = os.urandom(512).hex().encode()  # 1 KB


@dataclass
class Settings:
    rounds: int
    seconds: float
    warmup: float
    rate: float
    mode: str
    sampling_rate: float = 0.01
    """Of new traces, in the sidecar under test (tracing on, exporting to a real receiver)."""


class Progress:
    """One line per measured round on stderr: what ran and what it gave."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.count = 0

    def __call__(self, label: str, summary: dict[str, Any]) -> None:
        self.count += 1
        cpu = summary["cpu_us_per_req"]
        cpu_text = f" cpu {cpu:.0f} µs/req" if cpu is not None else ""
        print(f"[{time.monotonic() - self.began:6.1f}s #{self.count:3d}] {label:<48} "
              f"{summary['items_per_s']:9.0f} items/s  p50 {summary['p50_ms']:.2f} "
              f"p99 {summary['p99_ms']:.2f} ms{cpu_text}"
              + (f"  errors {summary['errors']}: {summary['first_error']}"
                 if summary["errors"] else ""),
              file=sys.stderr, flush=True)


def channels(address: str, count: int, stub: Callable[[grpc.aio.Channel], Any] | None = None
             ) -> list[Any]:
    """``count`` stubs (Layotto's Runtime unless ``stub`` is another stub class), each on its
    own TCP connection."""
    make = stub or runtime_pb2_grpc.RuntimeStub
    return [make(grpc.aio.insecure_channel(
        address, options=[("grpc.use_local_subchannel_pool", 1)])) for _ in range(count)]


Runner = Callable[[Callable[[], float] | None], Awaitable[Round]]


async def interleave(label: str, paths: dict[str, tuple[Runner, Callable[[], float] | None]],
                     settings: Settings, progress: Progress) -> dict[str, dict[str, Any]]:
    """Run each path ``settings.rounds`` times, alternating, and return median summaries."""
    per_path: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
    for index in range(settings.rounds):
        order = list(paths) if index % 2 == 0 else list(reversed(paths))
        for name in order:
            runner, cpu = paths[name]
            summary = (await runner(cpu)).summary()
            per_path[name].append(summary)
            progress(f"{label} [{name}] r{index + 1}", summary)
    return {name: median_summary(rounds) for name, rounds in per_path.items()}
