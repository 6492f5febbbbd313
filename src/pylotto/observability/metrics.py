"""Prometheus metrics of one sidecar, served at ``/metrics`` on the actuator listener.

- ``pylotto_api_requests_total`` {dialect, api, code}: API calls answered (code: the gRPC
  status name, or the HTTP status); ``pylotto_api_latency_seconds`` {dialect, api}: their
  duration; ``pylotto_api_in_flight`` {dialect}: calls being served now.
- ``pylotto_component_calls_total`` {component, outcome}: calls to components (``ok`` or the
  error class); ``pylotto_component_latency_seconds`` {component}; ``pylotto_component_up``
  {component}: 1 when the last readiness ping succeeded.
- ``pylotto_pubsub_messages_total`` {pubsub, topic, outcome}: ``delivered``, ``retried``,
  ``dropped``, ``dead_lettered``.
- ``pylotto_job_triggers_total`` {target, outcome}: job triggers handed over by the scheduler
  (target ``app``, or ``pubsub`` for Layotto's delay queue; outcome ``delivered`` or
  ``failed``: Dapr's ``dapr_component_job_success_count`` / ``failure_count``);
  ``pylotto_job_trigger_latency_seconds`` {target, outcome}: how long the target took to answer
  (Dapr's ``dapr_component_job_latencies``); ``pylotto_job_lateness_seconds`` {target}: the
  hand-over's time minus the trigger's due time.
- daprd's own metrics, with its names and labels (:mod:`pylotto.observability.dapr_metrics`),
  so Dapr's Grafana dashboards read them.
- ``process_*``: CPU seconds, resident memory, open files (Prometheus' process collector).

Dialects: ``grpc`` (Layotto's, Dapr's and pylotto's gRPC services) and ``http`` (Dapr's HTTP
API). Each sidecar has its own registry (several sidecars in one process do not mix).
"""

from __future__ import annotations

import logging

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pylotto.observability.dapr_metrics import DaprMetrics
from pylotto.observability.logs import FIELDS

CONTENT_TYPE = CONTENT_TYPE_LATEST
INGRESS_STATUS = {"delivered": "success", "retried": "retry", "dropped": "drop",
                  "dead_lettered": "drop"}
"""pylotto's delivery outcomes → daprd's ``process_status`` (a dead-lettered event is one
the app did not process: daprd counts it as dropped from the subscription)."""
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, app_id: str = "", namespace: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.dapr = DaprMetrics(app_id, namespace)
        self.registry.register(self.dapr)
        r = self.registry
        self.api_requests = Counter("pylotto_api_requests", "API calls answered",
                                    ["dialect", "api", "code"], registry=r)
        self.api_latency = Histogram("pylotto_api_latency_seconds", "API call duration",
                                     ["dialect", "api"], buckets=BUCKETS, registry=r)
        self.api_in_flight = Gauge("pylotto_api_in_flight", "API calls being served",
                                   ["dialect"], registry=r)
        self.component_calls = Counter("pylotto_component_calls", "calls to components",
                                       ["component", "outcome"], registry=r)
        self.component_latency = Histogram("pylotto_component_latency_seconds",
                                           "component call duration", ["component"],
                                           buckets=BUCKETS, registry=r)
        self.component_up = Gauge("pylotto_component_up", "1 when the last ping succeeded",
                                  ["component"], registry=r)
        self.pubsub_messages = Counter("pylotto_pubsub_messages", "messages handled",
                                       ["pubsub", "topic", "outcome"], registry=r)

        self.job_triggers = Counter("pylotto_job_triggers", "job triggers handed over",
                                    ["target", "outcome"], registry=r)
        self.job_latency = Histogram("pylotto_job_trigger_latency_seconds",
                                     "time the target took to answer a job trigger",
                                     ["target", "outcome"], buckets=BUCKETS, registry=r)
        self.job_lateness = Histogram("pylotto_job_lateness_seconds",
                                      "job trigger hand-over minus its due time", ["target"],
                                      buckets=BUCKETS, registry=r)

        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}
        """Labelled children by label values: ``labels()`` costs more than the update."""

    def _pair(self, counter: Counter, histogram: Histogram, key: tuple[str, ...]
              ) -> tuple[Counter, Histogram]:
        pair = self._children.get(key)
        if pair is None:
            pair = self._children[key] = (counter.labels(*key[1:]),
                                          histogram.labels(*key[1:-1]))
        return pair

    log_api_calls = False
    """Also log each API call at INFO (``--enable-api-logging``)."""

    def api_call(self, dialect: str, api: str, code: str, seconds: float) -> None:
        count, latency = self._pair(self.api_requests, self.api_latency,
                                    ("api", dialect, api, code))
        count.inc()
        latency.observe(seconds)
        if self.log_api_calls:
            _api_log.info("%s API Called", "gRPC" if dialect == "grpc" else "HTTP",
                          extra={FIELDS: {"method": api, "code": code,
                                          "duration": f"{seconds * 1000:.1f}ms"}})

    def component_call(self, component: str, outcome: str, seconds: float, *,
                       capability: str = "", name: str = "", operation: str = "") -> None:
        """A call to ``component`` (its label) ended with ``outcome`` (``ok`` or the error
        class); ``capability``, ``name``, ``operation`` place it in daprd's metrics."""
        count, latency = self._pair(self.component_calls, self.component_latency,
                                    ("component", component, outcome))
        count.inc()
        latency.observe(seconds)
        if capability:
            self.dapr.component_called(capability, name, operation, outcome == "ok", seconds)

    def pubsub(self, pubsub: str, topic: str, outcome: str,
               seconds: float | None = None) -> None:
        """An event of ``topic`` settled: ``delivered``, ``retried``, ``dropped`` or
        ``dead_lettered``; ``seconds``: the app's processing time, when it answered."""
        self.pubsub_messages.labels(pubsub, topic, outcome).inc()
        status = INGRESS_STATUS.get(outcome)
        if status is not None:
            self.dapr.delivered(pubsub, topic, status, status, seconds)

    def job_trigger(self, target: str, outcome: str, seconds: float, late: float) -> None:
        """A job trigger handed to ``target`` ``late`` seconds after its due time, answered
        in ``seconds`` (``outcome``: delivered, failed)."""
        self.job_triggers.labels(target, outcome).inc()
        self.job_latency.labels(target, outcome).observe(seconds)
        self.job_lateness.labels(target).observe(max(late, 0.0))

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


_api_log = logging.getLogger("pylotto.api")
