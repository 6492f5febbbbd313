"""The workflow app of :mod:`bench.workflows`: a 3-activity chain (dapr/python-sdk's
``examples/workflow/task_chaining.py``) and a workflow with no activity, on the SDK's
``WorkflowRuntime``; it connects to ``DAPR_GRPC_PORT`` and runs until SIGTERM."""

# The SDK is untyped: its decorators and runtime calls are too.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
from __future__ import annotations

import signal
import threading
from collections.abc import Generator
from typing import Any

import dapr.ext.workflow as wf

wfr = wf.WorkflowRuntime()


@wfr.workflow(name="chain3")
def chain3(ctx: wf.DaprWorkflowContext, value: int) -> Generator[Any, Any, int]:
    value = yield ctx.call_activity(add_one, input=value)
    value = yield ctx.call_activity(add_one, input=value)
    value = yield ctx.call_activity(add_one, input=value)
    return value


@wfr.workflow(name="noop")
def noop(ctx: wf.DaprWorkflowContext, value: int) -> Generator[Any, Any, int]:
    return value
    yield  # a generator, as every workflow


@wfr.activity(name="add_one")
def add_one(ctx: wf.WorkflowActivityContext, value: int) -> int:
    return value + 1


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wfr.start()
    stop.wait()
    wfr.shutdown()


if __name__ == "__main__":
    main()
