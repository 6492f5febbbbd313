"""Dapr workflows on one sidecar: ``python -m bench.workflows``.

One ``pylotto run`` sidecar with its actor state store in the real Redis, and the SDK's
``WorkflowRuntime`` as the app (:mod:`bench.workflow_app`), driven by ``DaprWorkflowClient``:

- **throughput**: ``--concurrency`` clients in a closed loop, each scheduling a 3-activity
  chain and waiting for its completion, for ``--seconds``: workflows completed per second and
  each one's latency (start → completion seen), p50/p99;
- **added latency per activity**: one client, ``--samples`` runs each of the 3-activity chain
  and of a workflow with no activity: ``(p50(chain) - p50(noop)) / 3``, the cost of one
  activity (its function is ``x + 1``: calling it directly costs well under a microsecond);
- **history**: the events of one finished chain (``GetInstanceHistory``).

Store transactions per chain (9) are counted by tests/unit/capabilities/workflows/
test_engine.py. Results in ``bench/results/<time>-workflows.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.procs import Sidecar, cpu_seconds, free_port
from bench.report import machine

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from dapr.ext.workflow import DaprWorkflowClient

    from pylotto.proto import durabletask as dt

    grpc_port = free_port()
    car = Sidecar(workdir / "sidecar", {"state": {"actorstore": {"type": "redis", "metadata": {
        "redisHost": "127.0.0.1:6379", "actorStateStore": "true"}}}},
        extra_args=["--dapr-grpc-port", str(grpc_port)],
        config={"app": {"id": f"wfbench{uuid.uuid4().hex[:6]}"}}).start()
    env = {**os.environ, "DAPR_RUNTIME_HOST": "127.0.0.1", "DAPR_GRPC_PORT": str(grpc_port),
           "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen([sys.executable, "-m", "bench.workflow_app"], env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clients = [DaprWorkflowClient(host="127.0.0.1", port=str(grpc_port))
               for _ in range(args.concurrency)]
    try:
        def run(client: DaprWorkflowClient, name: str) -> tuple[float, str]:
            began = time.perf_counter()
            instance = client.schedule_new_workflow(name, input=0)
            state = client.wait_for_workflow_completion(instance, timeout_in_seconds=60)
            if state is None or state.runtime_status.name != "COMPLETED":
                raise RuntimeError(f"{instance}: {state and state.runtime_status}")
            return time.perf_counter() - began, instance

        run(clients[0], "chain3")  # warm-up: the worker connected, the actors activated
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.monotonic() + args.seconds
        cpu_before = cpu_seconds(car.pid)

        def loop(client: DaprWorkflowClient) -> None:
            while time.monotonic() < stop_at:
                try:
                    latencies.append(run(client, "chain3")[0])
                except Exception as exc:
                    errors.append(repr(exc))

        began = time.monotonic()
        threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        cpu = cpu_seconds(car.pid) - cpu_before
        throughput = {"completed": len(latencies), "per_s": len(latencies) / elapsed,
                      "p50_ms": _pct(latencies, 0.5), "p99_ms": _pct(latencies, 0.99),
                      "errors": len(errors), "first_error": errors[0] if errors else "",
                      "sidecar_cpu_ms_per_workflow": cpu * 1000 / max(1, len(latencies))}
        print(f"throughput: {throughput['per_s']:.1f} chains/s (C={args.concurrency}), p50 "
              f"{throughput['p50_ms']:.1f} ms p99 {throughput['p99_ms']:.1f} ms, errors "
              f"{len(errors)}", file=sys.stderr, flush=True)
        chain = [run(clients[0], "chain3")[0] for _ in range(args.samples)]
        bare = [run(clients[0], "noop")[0] for _ in range(args.samples)]
        per_activity = (statistics.median(chain) - statistics.median(bare)) / 3 * 1000
        _, instance = run(clients[0], "chain3")
        import grpc

        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
            events = stub.GetInstanceHistory(
                dt.service.GetInstanceHistoryRequest(instanceId=instance), timeout=10).events
        history = {"events": len(events), "bytes": sum(e.ByteSize() for e in events)}
    finally:
        for client in clients:
            client.close()  # type: ignore[no-untyped-call]
        app.terminate()
        app.wait(10)
        car.stop()
    return {"concurrency": args.concurrency, "seconds": args.seconds,
            "throughput": throughput,
            "latency": {"chain3_p50_ms": statistics.median(chain) * 1000,
                        "noop_p50_ms": statistics.median(bare) * 1000,
                        "added_ms_per_activity": per_activity, "samples": args.samples},
            "history_of_a_chain": history, "store_transactions_per_chain": 9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workflows")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, Path(tmp))
    result["machine"] = machine()
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"{stamp}-workflows.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    t, lat, hist = result["throughput"], result["latency"], result["history_of_a_chain"]
    print(f"3-activity chains: {t['per_s']:.1f}/s at C={args.concurrency} (p50 "
          f"{t['p50_ms']:.1f} ms, p99 {t['p99_ms']:.1f} ms, {t['errors']} errors, sidecar CPU "
          f"{t['sidecar_cpu_ms_per_workflow']:.1f} ms/workflow)")
    print(f"added latency per activity: {lat['added_ms_per_activity']:.2f} ms (chain p50 "
          f"{lat['chain3_p50_ms']:.1f} ms, no-activity p50 {lat['noop_p50_ms']:.1f} ms)")
    print(f"history of a chain: {hist['events']} events, {hist['bytes']} bytes; 9 store "
          "transactions")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
