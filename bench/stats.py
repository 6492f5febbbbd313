"""Statistics over benchmark rounds: percentiles, per-round summaries, medians and ratios.

Pure functions on plain numbers so they can be unit-tested on synthetic data.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of an already sorted list, by linear interpolation."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass
class Round:
    """One measured round of one path (pylotto or a baseline)."""

    requests: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list, repr=False)
    cpu_seconds: float | None = None
    """CPU (user+sys) of the server process in the window; None for in-process baselines."""
    errors: int = 0
    items_per_request: int = 1
    first_error: str = ""

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)
        rate = self.requests / self.seconds if self.seconds > 0 else 0.0
        cpu_us = (self.cpu_seconds * 1e6 / self.requests
                  if self.cpu_seconds is not None and self.requests else None)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(self.seconds, 3),
            "rps": rate,
            "items_per_s": rate * self.items_per_request,
            "p50_ms": percentile(lat, 50) * 1e3,
            "p90_ms": percentile(lat, 90) * 1e3,
            "p99_ms": percentile(lat, 99) * 1e3,
            "cpu_us_per_req": cpu_us,
        }


METRICS = ("rps", "items_per_s", "p50_ms", "p90_ms", "p99_ms", "cpu_us_per_req")


def median_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each metric over rounds (rounds of one path), plus the raw values."""
    out: dict[str, Any] = {"rounds": len(rounds)}
    for metric in METRICS:
        values = [r[metric] for r in rounds if r.get(metric) is not None]
        out[metric] = statistics.median(values) if values else None
        out[f"{metric}_runs"] = values
    out["errors"] = sum(r.get("errors", 0) for r in rounds)
    return out


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


@dataclass
class Comparison:
    """One scenario row: the pylotto path against one baseline, medians over interleaved rounds."""

    scenario: str
    variant: str
    pylotto: dict[str, Any]
    baseline_name: str
    baseline: dict[str, Any]

    def ratios(self) -> dict[str, float | None]:
        return {
            "throughput": ratio(self.pylotto["items_per_s"], self.baseline["items_per_s"]),
            "p50": ratio(self.pylotto["p50_ms"], self.baseline["p50_ms"]),
            "p99": ratio(self.pylotto["p99_ms"], self.baseline["p99_ms"]),
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratios": self.ratios()}
