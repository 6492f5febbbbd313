"""Sampling: where a trace begins it is recorded with the sampling rate's probability, a caller's
trace keeps the caller's decision, and a trace that is not recorded is still carried on (with
its sampled flag off) so the next sidecar leaves it out too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pylotto.observability.tracing import Tracing, TracingConfig, current_trace_id, sampled_flag

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SAMPLED = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
NOT_SAMPLED = f"00-{CALLER_TRACE}-00f067aa0ba902b7-00"


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, list[Tracing]]]:
    exporter = InMemorySpanExporter()
    made: list[Tracing] = []
    yield exporter, made
    for tracing in made:
        tracing.shutdown()


def tracing_at(rate: float, spans: tuple[InMemorySpanExporter, list[Tracing]]) -> Tracing:
    exporter, made = spans
    tracing = Tracing(TracingConfig(sampling_rate=rate, exporter="console"), "app")
    tracing._provider.add_span_processor(SimpleSpanProcessor(exporter))
    made.append(tracing)
    return tracing


def test_a_new_trace_left_out_records_nothing_but_is_carried_on(
    spans: tuple[InMemorySpanExporter, list[Tracing]]
) -> None:
    tracing = tracing_at(0.0, spans)
    with tracing.span("GetState", "server"):
        carried = tracing.carrier()
        assert sampled_flag(carried["traceparent"]) is False
        trace_id = carried["traceparent"].split("-")[1]
        assert current_trace_id() == trace_id  # the log lines of the call show it
        with tracing.span("state store redis", "client"):
            assert tracing.carrier() == carried  # no new trace inside
    assert spans[0].get_finished_spans() == ()
    assert tracing.carrier({"traceparent": SAMPLED}) == {"traceparent": SAMPLED}
    assert current_trace_id() == ""


def test_a_recorded_trace_has_its_server_and_client_spans(
    spans: tuple[InMemorySpanExporter, list[Tracing]]
) -> None:
    tracing = tracing_at(1.0, spans)
    with tracing.span("GetState", "server"), tracing.span("state store redis", "client"):
        carried = tracing.carrier()
    client, server = spans[0].get_finished_spans()
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert sampled_flag(carried["traceparent"]) is True
    assert carried["traceparent"].split("-")[1] == format(server.context.trace_id, "032x")


def test_the_callers_decision_wins_over_the_rate(
    spans: tuple[InMemorySpanExporter, list[Tracing]]
) -> None:
    never, always = tracing_at(0.0, spans), tracing_at(1.0, spans)
    with never.span("GetState", "server", {"traceparent": SAMPLED}):
        pass
    [recorded] = spans[0].get_finished_spans()
    assert format(recorded.context.trace_id, "032x") == CALLER_TRACE
    with always.span("GetState", "server", {"traceparent": NOT_SAMPLED}):
        assert always.carrier() == {"traceparent": NOT_SAMPLED}
        assert current_trace_id() == CALLER_TRACE
        with always.span("state store redis", "client"):
            pass
    assert len(spans[0].get_finished_spans()) == 1


@pytest.mark.parametrize("garbage", ["", "00-xyz-00f067aa0ba902b7-01",
                                     f"00-{'0' * 32}-00f067aa0ba902b7-01", "01"])
def test_a_malformed_traceparent_starts_a_new_trace(
    spans: tuple[InMemorySpanExporter, list[Tracing]], garbage: str
) -> None:
    tracing = tracing_at(1.0, spans)
    with tracing.span("GetState", "server", {"traceparent": garbage}):
        pass
    [recorded] = spans[0].get_finished_spans()
    assert recorded.parent is None


def test_new_traces_are_recorded_at_the_sampling_rate(
    spans: tuple[InMemorySpanExporter, list[Tracing]]
) -> None:
    tracing = tracing_at(0.25, spans)
    for _ in range(2000):
        with tracing.span("GetState", "server"):
            pass
    assert 400 <= len(spans[0].get_finished_spans()) <= 600  # 500 expected; 5 sigma ≈ ±97


def test_grpc_trace_bin_round_trips_a_traceparent() -> None:
    from pylotto.observability.tracing import (
        binary_of_traceparent,
        carrier_from,
        grpc_trace_metadata,
        traceparent_of_binary,
    )

    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    binary = binary_of_traceparent(parent)
    assert binary is not None and len(binary) == 29 and binary[:2] == b"\x00\x00"
    assert traceparent_of_binary(binary) == parent
    assert carrier_from([("grpc-trace-bin", binary)]) == {"traceparent": parent}
    assert grpc_trace_metadata({"traceparent": parent, "tracestate": "k=v"}) == [
        ("traceparent", parent), ("tracestate", "k=v"), ("grpc-trace-bin", binary)]
    assert grpc_trace_metadata({"traceparent": "garbage"}) == []
    assert traceparent_of_binary(b"\x00\x00short") == ""
