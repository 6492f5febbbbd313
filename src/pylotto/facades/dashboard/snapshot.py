"""What the dashboard shows, as one JSON document (``GET /dashboard/api/snapshot``): read from
the runtime's status, its metrics registry, the span buffer and the recent-errors handler —
nothing the sidecar does not already keep. Counts are cumulative; the page turns successive
snapshots into rates and latencies."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Metric

from pylotto.capabilities.status import RuntimeStatus
from pylotto.observability.metrics import Metrics
from pylotto.observability.recent_errors import RecentErrors
from pylotto.observability.tracing import Tracing
from pylotto.version import __version__


@dataclass(frozen=True)
class Sources:
    status: RuntimeStatus
    metrics: Metrics
    tracing: Tracing
    errors: RecentErrors


def _samples(family: Any) -> Iterable[tuple[str, dict[str, str], float]]:
    for metric in family.collect():
        assert isinstance(metric, Metric)
        for sample in metric.samples:
            yield sample.name, sample.labels, sample.value


def _calls(counts: Any, latency: Any, key: tuple[str, ...], outcome: str,
           ok: Any) -> list[dict[str, Any]]:
    """Rows of ``key`` labels with count, errors (``outcome`` not ``ok(outcome)``) and the
    latency histogram's sum."""
    rows: dict[tuple[str, ...], dict[str, Any]] = defaultdict(
        lambda: {"count": 0.0, "errors": 0.0, "seconds": 0.0})
    for name, labels, value in _samples(counts):
        if name.endswith("_total"):
            row = rows[tuple(labels[k] for k in key)]
            row["count"] += value
            if not ok(labels[outcome]):
                row["errors"] += value
    for name, labels, value in _samples(latency):
        if name.endswith("_sum"):
            rows[tuple(labels[k] for k in key)]["seconds"] += value
    return [{**dict(zip(key, labels, strict=True)), **row}
            for labels, row in sorted(rows.items())]


def _api_ok(code: str) -> bool:
    return code == "OK" or (code.isdigit() and int(code) < 400)


async def snapshot(sources: Sources) -> dict[str, Any]:
    status, metrics = sources.status, sources.metrics
    view = status.view()
    health = await status.readiness() if status.started else {}
    components = []
    for info in view.components:
        h = health.get(f"{info.capability}.{info.name}")
        components.append({"capability": info.capability, "name": info.name,
                           "type": info.type, "version": info.version,
                           "status": h.status if h else "INIT",
                           "reason": h.reason if h else ""})
    delivery: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for name, labels, value in _samples(metrics.pubsub_messages):
        if name.endswith("_total"):
            delivery[(labels["pubsub"], labels["topic"])][labels["outcome"]] = value
    subscriptions = [{"pubsub": p, "topic": t, "type": how,
                      **{k: delivery.get((p, t), {}).get(k, 0.0)
                         for k in ("delivered", "retried", "dropped", "dead_lettered")}}
                     for p, t, how in view.subscriptions]
    jobs: dict[str, float] = {}
    for name, labels, value in _samples(metrics.job_triggers):
        if name.endswith("_total"):
            jobs[f"{labels['target']} {labels['outcome']}"] = value
    actors = None
    if view.actor_runtime is not None:
        actors = {"runtime_status": view.actor_runtime.runtime_status,
                  "active": dict(view.actor_runtime.active),
                  "placement": view.actor_runtime.placement}
    buffer = sources.tracing.buffer
    return {
        "app": {"app_id": view.app_id, "version": __version__, "pid": os.getpid(),
                "runtime_version": view.runtime_version,
                "uptime_seconds": round(time.time() - status.started_at)
                if status.started else 0},
        "time": time.time(),
        "components": components,
        "subscriptions": subscriptions,
        "apis": _calls(metrics.api_requests, metrics.api_latency, ("dialect", "api"), "code",
                       _api_ok),
        "component_calls": _calls(metrics.component_calls, metrics.component_latency,
                                  ("component",), "outcome", lambda o: o == "ok"),
        "errors": sources.errors.records(),
        "traces": buffer.traces() if buffer is not None else None,
        "actors": actors,
        "workflows": {"connected_workers": view.connected_workers},
        "jobs": jobs,
    }
