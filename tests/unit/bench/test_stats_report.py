"""The bench harness's statistics and reporting on synthetic rounds (nothing is timed)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.report import BEGIN, END, comparison_table, write_results
from bench.stats import Comparison, Round, median_summary, percentile, ratio


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert math.isclose(percentile(values, 99), 99.01)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_round_summary_rates_latencies_and_cpu() -> None:
    rnd = Round(requests=1000, seconds=2.0, latencies_s=[0.001] * 900 + [0.010] * 100,
                cpu_seconds=0.5, items_per_request=100)
    s = rnd.summary()
    assert s["rps"] == 500.0
    assert s["items_per_s"] == 50_000.0
    assert s["p50_ms"] == 1.0
    assert s["p99_ms"] == 10.0
    assert s["cpu_us_per_req"] == 500.0
    assert Round(requests=10, seconds=1.0, latencies_s=[0.001] * 10).summary()[
        "cpu_us_per_req"] is None


def test_median_summary_and_ratios() -> None:
    rounds = [Round(requests=n, seconds=1.0, latencies_s=[0.002] * n, cpu_seconds=n * 4e-4
                    ).summary() for n in (900, 1000, 1300)]
    med = median_summary(rounds)
    assert med["rps"] == 1000.0
    assert med["rps_runs"] == [900.0, 1000.0, 1300.0]
    assert math.isclose(med["cpu_us_per_req"], 400.0)
    base = median_summary([Round(requests=2000, seconds=1.0, latencies_s=[0.001] * 2000
                                 ).summary()])
    row = Comparison("1 GetState", "C=16", med, "grpc.aio+redis", base)
    assert row.ratios() == {"throughput": 0.5, "p50": 2.0, "p99": 2.0}
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 2.0) is None
    table = comparison_table([row])
    assert "| 1 GetState | C=16 | grpc.aio+redis | 1 000 | 2 000 | 0.50 |" in table
    assert "| 400 |" in table


def _results() -> dict[str, Any]:
    return {
        "command": "python -m bench --quick", "mode": "quick", "rounds": 2,
        "round_seconds": 2.0, "finished_at": "2026-01-01T00:00:00Z",
        "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 1.0, "kernel": "k",
                    "python": "3.11", "versions": {"grpcio": "1"}, "redis_server": "7"},
        "startup": {"ready_s": 0.5, "ready_s_runs": [0.5], "idle_rss_mb": 70.0},
        "targets": [{"name": "start to ready", "required": "<= 1.0 s", "measured": "0.50 s",
                     "met": True},
                    {"name": "idle RSS", "required": "<= 80 MB", "measured": "90 MB",
                     "met": False}],
    }


def test_write_results_replaces_only_the_generated_block(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Perf\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## Analysis\nkept\n")
    summary = median_summary([Round(requests=10, seconds=1.0, latencies_s=[0.001] * 10
                                    ).summary()])
    rows = [Comparison("1 GetState", "C=1", summary, "redis-py direct", summary)]
    path = write_results(_results(), rows, tmp_path / "results", doc)
    text = doc.read_text()
    assert "old table" not in text
    assert text.startswith("# Perf\n\nintro\n")
    assert text.rstrip().endswith("## Analysis\nkept")
    assert "Machine: Test CPU, 2 cores" in text
    assert "| start to ready | <= 1.0 s | 0.50 s | yes |" in text
    assert "| idle RSS | <= 80 MB | 90 MB | **no** |" in text
    assert "| 1 GetState | C=1 | redis-py direct |" in text
    saved = json.loads(path.read_text())
    assert saved["comparisons"][0]["ratios"]["throughput"] == 1.0
    assert json.loads((tmp_path / "results" / "latest.json").read_text()) == saved
    write_results(_results(), rows, tmp_path / "results", doc)  # a second run: still one block
    assert doc.read_text().count(BEGIN) == 1
