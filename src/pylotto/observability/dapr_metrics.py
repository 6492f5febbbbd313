"""Dapr's own metrics — the names, labels, units and buckets daprd exports (dapr/dapr
pkg/diagnostics, Dapr 1.18) — so the Grafana dashboards Dapr ships (grafana/*.json in
dapr/dapr) and alerts written for daprd work on pylotto's ``/metrics`` unchanged.

What is exported, each with ``app_id`` (and ``namespace`` where daprd has it):

- ``dapr_http_server_request_count`` / ``_response_count`` {method, path, status},
  ``dapr_http_server_latency`` (ms) {method, path, status}, ``dapr_http_server_request_bytes``
  / ``_response_bytes``; the path label as daprd's default ("increased cardinality") makes
  it: state and secret keys, actor ids and workflow instance ids folded away;
- ``dapr_grpc_io_server_completed_rpcs`` / ``dapr_grpc_io_server_server_latency`` (ms)
  {grpc_server_method, grpc_server_status}: the full method name and Go's status names
  (``OK``, ``NotFound``, ``InvalidArgument``...);
- ``dapr_http_client_*`` / ``dapr_grpc_io_client_*``: calls to the app and to other sidecars;
- ``dapr_component_{state,configuration,secret,crypto,output_binding}_count`` / ``_latencies``
  {component, operation, success}, ``dapr_component_pubsub_egress_count`` / ``_latencies``
  {component, topic, success}, ``dapr_component_pubsub_ingress_count`` / ``_latencies``
  {component, topic, process_status, status}, ``dapr_component_input_binding_*``;
- ``dapr_runtime_component_loaded``, ``dapr_runtime_component_init_total`` {component: the
  type}, ``dapr_runtime_component_init_fail_total`` {component, reason, componentName};
- the actor runtime's (docs/operations.md "daprd's metrics" says when each is recorded):
  ``dapr_runtime_actor_status_report_total`` {actor_type, operation} / ``_fail_total``
  {actor_type, operation, reason}, ``dapr_runtime_actor_table_operation_recv_total``
  {actor_type, operation}, ``dapr_runtime_actor_rebalanced_total``, ``_deactivated_total``,
  ``_deactivated_failed_total`` {actor_type}, ``dapr_runtime_actor_pending_actor_calls`` and
  ``dapr_runtime_actor_timers`` {actor_type} (gauges), ``dapr_runtime_actor_timers_fired_total``
  and ``_reminders_fired_total`` {actor_type, success};
- ``dapr_runtime_mtls_init_total`` and ``dapr_runtime_mtls_init_fail_total`` {reason}.

A label daprd's view has but its recording call never sets (``actor_type`` of the placement
counts) is exported empty, as its Prometheus exporter does (PromQL reads it as absent).

daprd's counts are OpenCensus "count" views, exported as counters without a ``_total``
suffix. prometheus-client always appends ``_total`` to a counter, so these families are
exported as untyped samples with daprd's exact names (``rate()`` and ``increase()`` work on
them as on counters). The histograms are ordinary Prometheus histograms in milliseconds with
daprd's bucket bounds.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import (
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

LATENCY_MS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200,
              250, 300, 400, 500, 650, 800, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
"""daprd's default latency distribution (pkg/config MetricSpec.GetLatencyDistribution)."""
SIZE_BYTES = tuple(float(b) for b in (1 << 10, 2 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10,
                                      1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30,
                                      4 << 30))
"""daprd's defaultSizeDistribution."""

GO_CODE_NAMES = {
    "OK": "OK", "CANCELLED": "Canceled", "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument", "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound", "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied", "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition", "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange", "UNIMPLEMENTED": "Unimplemented", "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable", "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}
"""gRPC status names as Go's ``codes.Code.String()`` spells them (daprd's status label)."""

COMPONENT_FAMILIES = {"state": "state", "configuration": "configuration",
                      "secretstores": "secret", "crypto": "crypto", "bindings": "output_binding"}
"""pylotto capability → the ``dapr_component_<family>_*`` metrics its calls count in
(publishing is counted as ``pubsub_egress`` by :meth:`DaprMetrics.published`)."""

HTTP_VERBS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS",
                        "TRACE"})


class _Count:
    """One untyped count family: label values → count."""

    def __init__(self, name: str, doc: str, labels: Sequence[str]) -> None:
        self.name, self.doc, self.labels = name, doc, tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def add(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def family(self) -> Metric:
        family = UnknownMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in self.values.items():
            family.add_metric(list(key), value)
        return family


class _Gauge:
    """One gauge family: label values → the last value (daprd's "last value" views)."""

    def __init__(self, name: str, doc: str, labels: Sequence[str]) -> None:
        self.name, self.doc, self.labels = name, doc, tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def set(self, key: tuple[str, ...], value: float) -> None:
        self.values[key] = value

    def add(self, key: tuple[str, ...], delta: float) -> None:
        self.values[key] = self.values.get(key, 0.0) + delta

    def family(self) -> Metric:
        family = GaugeMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in self.values.items():
            family.add_metric(list(key), value)
        return family


class _Histogram:
    """One histogram family: label values → (bucket counts, sum)."""

    def __init__(self, name: str, doc: str, labels: Sequence[str],
                 bounds: Sequence[float]) -> None:
        self.name, self.doc, self.labels = name, doc, tuple(labels)
        self.bounds = tuple(float(b) for b in bounds)
        self.values: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, key: tuple[str, ...], value: float) -> None:
        entry = self.values.get(key)
        if entry is None:
            entry = self.values[key] = ([0] * (len(self.bounds) + 1), [0.0])
        entry[0][bisect.bisect_left(self.bounds, value)] += 1
        entry[1][0] += value

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for key, (counts, total) in self.values.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*map(_bound, self.bounds), "+Inf"), counts, strict=True):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            family.add_metric(list(key), buckets, total[0])
        return family


def _bound(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


class DaprMetrics(Collector):
    """The daprd-named metrics of one sidecar (a collector in its registry)."""

    def __init__(self, app_id: str, namespace: str = "") -> None:
        self.app_id, self.namespace = app_id, namespace
        a, an = ("app_id",), ("app_id", "component", "namespace")
        self.http_server_requests = _Count("dapr_http_server_request_count",
                                           "Count of HTTP requests processed by the server.",
                                           (*a, "method", "path", "status"))
        self.http_server_responses = _Count("dapr_http_server_response_count",
                                            "The number of HTTP responses",
                                            (*a, "method", "path", "status"))
        self.http_server_latency = _Histogram("dapr_http_server_latency",
                                              "HTTP request end-to-end latency in server.",
                                              (*a, "method", "path", "status"), LATENCY_MS)
        self.http_server_request_bytes = _Histogram(
            "dapr_http_server_request_bytes", "HTTP request body size in server.", a, SIZE_BYTES)
        self.http_server_response_bytes = _Histogram(
            "dapr_http_server_response_bytes", "HTTP response body size in server.", a,
            SIZE_BYTES)
        self.grpc_server_completed = _Count(
            "dapr_grpc_io_server_completed_rpcs", "Count of RPCs by method and status.",
            (*a, "grpc_server_method", "grpc_server_status"))
        self.grpc_server_latency = _Histogram(
            "dapr_grpc_io_server_server_latency", "Server latency in msecs",
            (*a, "grpc_server_method", "grpc_server_status"), LATENCY_MS)
        self.http_client_completed = _Count("dapr_http_client_completed_count",
                                            "Count of completed requests",
                                            (*a, "method", "path", "status"))
        self.http_client_latency = _Histogram(
            "dapr_http_client_roundtrip_latency",
            "Time from request sent to last byte of response received, or terminal error",
            (*a, "method", "path", "status"), LATENCY_MS)
        self.grpc_client_completed = _Count(
            "dapr_grpc_io_client_completed_rpcs", "Count of RPCs by method and status.",
            (*a, "grpc_client_method", "grpc_client_status"))
        self.grpc_client_latency = _Histogram(
            "dapr_grpc_io_client_roundtrip_latency",
            "Time from first byte of request sent to last byte of response received",
            (*a, "grpc_client_method", "grpc_client_status"), LATENCY_MS)
        self.component_counts = {
            family: _Count(f"dapr_component_{family}_count",
                           f"The number of {family.replace('_', ' ')} operations",
                           (*an, "operation", "success"))
            for family in COMPONENT_FAMILIES.values()}
        self.component_latencies = {
            family: _Histogram(f"dapr_component_{family}_latencies",
                               f"The latency of {family.replace('_', ' ')} operations (ms)",
                               (*an, "operation", "success"), LATENCY_MS)
            for family in COMPONENT_FAMILIES.values()}
        self.egress_count = _Count("dapr_component_pubsub_egress_count",
                                   "The number of outbound messages", (*an, "success", "topic"))
        self.egress_latency = _Histogram("dapr_component_pubsub_egress_latencies",
                                         "The latency of outbound messages (ms)",
                                         (*an, "success", "topic"), LATENCY_MS)
        self.ingress_count = _Count("dapr_component_pubsub_ingress_count",
                                    "The number of incoming messages",
                                    (*an, "process_status", "status", "topic"))
        self.ingress_latency = _Histogram("dapr_component_pubsub_ingress_latencies",
                                          "The consuming app event processing latency (ms)",
                                          (*an, "process_status", "status", "topic"),
                                          LATENCY_MS)
        self.input_binding_count = _Count("dapr_component_input_binding_count",
                                          "The number of incoming events",
                                          (*an, "success"))
        self.input_binding_latency = _Histogram(
            "dapr_component_input_binding_latencies",
            "The triggering app event processing latency (ms)", (*an, "success"), LATENCY_MS)
        self.components_loaded = _Count("dapr_runtime_component_loaded",
                                        "The number of successfully loaded components", a)
        self.components_init = _Count("dapr_runtime_component_init_total",
                                      "The number of initialized components",
                                      (*a, "component"))
        self.components_init_failed = _Count(
            "dapr_runtime_component_init_fail_total",
            "The number of component initialization failures",
            (*a, "component", "reason", "componentName"))
        self._actor_families(a)

    def _actor_families(self, a: tuple[str, ...]) -> None:
        at = (*a, "actor_type")
        self.actor_status_reports = _Count(
            "dapr_runtime_actor_status_report_total",
            "The number of the successful status reports to placement service.",
            (*at, "operation"))
        self.actor_status_report_failures = _Count(
            "dapr_runtime_actor_status_report_fail_total",
            "The number of the failed status reports to placement service.",
            (*at, "operation", "reason"))
        self.actor_table_operations = _Count(
            "dapr_runtime_actor_table_operation_recv_total",
            "The number of the received actor placement table operations.", (*at, "operation"))
        self.actor_rebalances = _Count("dapr_runtime_actor_rebalanced_total",
                                       "The number of the actor rebalance requests.", at)
        self.actor_deactivations = _Count("dapr_runtime_actor_deactivated_total",
                                          "The number of the successful actor deactivation.",
                                          at)
        self.actor_deactivation_failures = _Count(
            "dapr_runtime_actor_deactivated_failed_total",
            "The number of the failed actor deactivation.", at)
        self.actor_pending_calls = _Gauge(
            "dapr_runtime_actor_pending_actor_calls",
            "The number of pending actor calls waiting to acquire the per-actor lock.", at)
        self.actor_timers = _Gauge("dapr_runtime_actor_timers",
                                   "The number of actor timer requests.", at)
        self.actor_timers_fired = _Count("dapr_runtime_actor_timers_fired_total",
                                         "The number of actor timers fired requests.",
                                         (*at, "success"))
        self.actor_reminders_fired = _Count("dapr_runtime_actor_reminders_fired_total",
                                            "The number of actor reminders fired requests.",
                                            (*at, "success"))
        self.mtls_init = _Count("dapr_runtime_mtls_init_total",
                                "The number of successful mTLS authenticator initialization.",
                                a)
        self.mtls_init_failed = _Count("dapr_runtime_mtls_init_fail_total",
                                       "The number of mTLS authenticator init failures.",
                                       (*a, "reason"))

    # ---- the recording side ---------------------------------------------------------------

    def http_served(self, method: str, path: str, status: int, request_bytes: int,
                    response_bytes: int, seconds: float) -> None:
        verb = method if method in HTTP_VERBS else "UNKNOWN"
        key = (self.app_id, verb, metric_path(path), str(status))
        self.http_server_requests.add(key)
        self.http_server_responses.add(key)
        self.http_server_latency.observe(key, seconds * 1000)
        self.http_server_request_bytes.observe((self.app_id,), max(request_bytes, 0))
        self.http_server_response_bytes.observe((self.app_id,), max(response_bytes, 0))

    def grpc_served(self, full_method: str, code: str, seconds: float) -> None:
        key = (self.app_id, full_method, GO_CODE_NAMES.get(code, code))
        self.grpc_server_completed.add(key)
        self.grpc_server_latency.observe(key, seconds * 1000)

    def http_sent(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (self.app_id, method, metric_path(path), str(status))
        self.http_client_completed.add(key)
        self.http_client_latency.observe(key, seconds * 1000)

    def grpc_sent(self, full_method: str, code: str, seconds: float) -> None:
        key = (self.app_id, full_method, GO_CODE_NAMES.get(code, code))
        self.grpc_client_completed.add(key)
        self.grpc_client_latency.observe(key, seconds * 1000)

    def component_called(self, capability: str, component: str, operation: str,
                         success: bool, seconds: float) -> None:
        family = COMPONENT_FAMILIES.get(capability)
        if family is None:
            return
        key = (self.app_id, component, self.namespace, operation, _bool(success))
        self.component_counts[family].add(key)
        self.component_latencies[family].observe(key, seconds * 1000)

    def published(self, component: str, topic: str, success: bool, seconds: float) -> None:
        key = (self.app_id, component, self.namespace, _bool(success), topic)
        self.egress_count.add(key)
        self.egress_latency.observe(key, seconds * 1000)

    def delivered(self, component: str, topic: str, process_status: str, status: str,
                  seconds: float | None) -> None:
        """A message settled: ``process_status`` success, retry or drop (daprd's), ``status``
        the app's answer; ``seconds`` (the app's processing time) when the app answered."""
        key = (self.app_id, component, self.namespace, process_status, status, topic)
        self.ingress_count.add(key)
        if seconds is not None:
            self.ingress_latency.observe(key, seconds * 1000)

    def input_binding(self, component: str, success: bool, seconds: float) -> None:
        key = (self.app_id, component, self.namespace, _bool(success))
        self.input_binding_count.add(key)
        self.input_binding_latency.observe(key, seconds * 1000)

    def component_loaded(self, type_name: str) -> None:
        self.components_loaded.add((self.app_id,))
        self.components_init.add((self.app_id, type_name))

    def component_failed(self, type_name: str, reason: str, name: str) -> None:
        self.components_init_failed.add((self.app_id, type_name, reason, name))

    # ---- actors (the points daprd records them at: docs/operations.md) ------------------------

    def actor_status_reported(self, success: bool) -> None:
        """This sidecar's hosted types were reported to placement (its member entry renewed:
        daprd's heartbeat, operation ``send``), or the report failed (reason ``status``)."""
        if success:
            self.actor_status_reports.add((self.app_id, "", "send"))
        else:
            self.actor_status_report_failures.add((self.app_id, "", "send", "status"))

    def actor_table_updated(self) -> None:
        """A placement table different from the last one was received (operation
        ``update``)."""
        self.actor_table_operations.add((self.app_id, "", "update"))

    def actor_halted(self, actor_type: str) -> None:
        """An actor's deactivation begins (idle, moved away, or the sidecar stops: daprd's
        ``halt`` counts them all as rebalances)."""
        self.actor_rebalances.add((self.app_id, actor_type))

    def actor_deactivated(self, actor_type: str, success: bool) -> None:
        """The app acknowledged an actor's deactivation, or did not (not reached, an error
        answer, no answer in time)."""
        family = self.actor_deactivations if success else self.actor_deactivation_failures
        family.add((self.app_id, actor_type))

    def actor_call_waiting(self, actor_type: str, delta: int) -> None:
        """A call starts (+1) or ends (-1) waiting for its actor's turn."""
        self.actor_pending_calls.add((self.app_id, actor_type), delta)

    def actor_timer_count(self, actor_type: str, count: int) -> None:
        """``actor_type`` has ``count`` timers registered now."""
        self.actor_timers.set((self.app_id, actor_type), count)

    def actor_timer_fired(self, actor_type: str, success: bool) -> None:
        self.actor_timers_fired.add((self.app_id, actor_type, _bool(success)))

    def actor_reminder_fired(self, actor_type: str, success: bool) -> None:
        self.actor_reminders_fired.add((self.app_id, actor_type, _bool(success)))

    # ---- mTLS ------------------------------------------------------------------------------

    def mtls_initialized(self) -> None:
        self.mtls_init.add((self.app_id,))

    def mtls_failed(self, reason: str) -> None:
        self.mtls_init_failed.add((self.app_id, reason))

    # ---- the collecting side --------------------------------------------------------------

    def _families(self) -> Iterable[_Count | _Gauge | _Histogram]:
        yield from (self.http_server_requests, self.http_server_responses,
                    self.http_server_latency, self.http_server_request_bytes,
                    self.http_server_response_bytes, self.grpc_server_completed,
                    self.grpc_server_latency, self.http_client_completed,
                    self.http_client_latency, self.grpc_client_completed,
                    self.grpc_client_latency)
        for family in COMPONENT_FAMILIES.values():
            yield self.component_counts[family]
            yield self.component_latencies[family]
        yield from (self.egress_count, self.egress_latency, self.ingress_count,
                    self.ingress_latency, self.input_binding_count, self.input_binding_latency,
                    self.components_loaded, self.components_init,
                    self.components_init_failed)
        yield from (self.actor_status_reports, self.actor_status_report_failures,
                    self.actor_table_operations, self.actor_rebalances,
                    self.actor_deactivations, self.actor_deactivation_failures,
                    self.actor_pending_calls, self.actor_timers, self.actor_timers_fired,
                    self.actor_reminders_fired, self.mtls_init, self.mtls_init_failed)

    def collect(self) -> Iterator[Metric]:
        for family in self._families():
            if family.values:
                yield family.family()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def metric_path(path: str) -> str:
    """The ``path`` label daprd gives a request (its legacy, default, form): duplicate
    slashes folded; state and secret keys dropped (``/v1.0/state/store``); actor ids and
    workflow instance ids and event names replaced by ``{id}``, ``{instanceId}``,
    ``{eventName}``; any other path as it came."""
    while "//" in path:
        path = path.replace("//", "/")
    if not path.startswith("/"):
        path = "/" + path
    parts = path[1:].split("/", 5)
    if len(parts) < 3:
        return path
    if parts[0] == "actors":
        parts[2] = "{id}"
        return "/".join(parts)
    kind = parts[1]
    if kind in ("state", "secrets"):
        return "/" + "/".join(parts[:3])
    if kind == "actors":
        if len(parts) < 5:
            return path
        parts[3] = "{id}"
        return "/" + "/".join(parts[:5])
    if kind == "workflows":
        return _workflow_path(parts, path)
    return path


def _workflow_path(parts: list[str], path: str) -> str:
    if len(parts) < 4:
        return path
    if len(parts) == 4:
        parts[3] = "{instanceId}"
        return "/" + "/".join(parts)
    if len(parts) == 5 and parts[4].startswith("start"):
        return "/" + "/".join(parts[:4]) + "/start"
    parts[3] = "{instanceId}"
    if len(parts) == 6 and parts[4] == "raiseEvent" and parts[5]:
        parts[5] = "{eventName}"
        return "/" + "/".join(parts)
    return "/" + "/".join(parts[:5])
