"""A workflow app as dapr/python-sdk's examples/workflow/ write them (task chaining,
fan-out/fan-in, human approval, monitor, child workflows, retries), run unchanged on the
``dapr.ext.workflow`` the pinned ``dapr`` installs. It connects to the sidecar named by
``DAPR_GRPC_PORT`` and runs until it is terminated. Activities append a line to ``--events``
(one JSON object per run) so the test can count attempts."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import dapr.ext.workflow as wf

wfr = wf.WorkflowRuntime()
EVENTS: Path | None = None
_lock = threading.Lock()
_attempts: dict[str, int] = {}


def record(kind: str, **fields: Any) -> None:
    if EVENTS is None:
        return
    with _lock, EVENTS.open("a") as out:
        out.write(json.dumps({"event": kind, **fields}) + "\n")


# ---- task chaining (examples/workflow/task_chaining.py) ---------------------------------------

@wfr.workflow(name="task_chain")
def task_chain(ctx: wf.DaprWorkflowContext, wf_input: int) -> list[int]:
    result1 = yield ctx.call_activity(step1, input=wf_input)
    result2 = yield ctx.call_activity(step2, input=result1)
    result3 = yield ctx.call_activity(step3, input=result2)
    return [result1, result2, result3]


@wfr.activity(name="step1")
def step1(ctx: wf.WorkflowActivityContext, activity_input: int) -> int:
    return activity_input + 1


@wfr.activity(name="step2")
def step2(ctx: wf.WorkflowActivityContext, activity_input: int) -> int:
    return activity_input * 2


@wfr.activity(name="step3")
def step3(ctx: wf.WorkflowActivityContext, activity_input: int) -> int:
    return activity_input ^ 2


# ---- fan-out/fan-in (examples/workflow/fan_out_fan_in.py) -------------------------------------

@wfr.workflow(name="batch_processing")
def batch_processing(ctx: wf.DaprWorkflowContext, count: int) -> int:
    work_batch = yield ctx.call_activity(get_work_batch, input=count)
    parallel_tasks = [ctx.call_activity(process_work_item, input=item) for item in work_batch]
    outputs = yield wf.when_all(parallel_tasks)
    total = sum(outputs)
    yield ctx.call_activity(process_results, input=total)
    return total


@wfr.activity(name="get_work_batch")
def get_work_batch(ctx: wf.WorkflowActivityContext, batch_size: int) -> list[int]:
    return list(range(1, batch_size + 1))


@wfr.activity(name="process_work_item")
def process_work_item(ctx: wf.WorkflowActivityContext, work_item: int) -> int:
    record("work_item", item=work_item)
    return work_item * 2


@wfr.activity(name="process_results")
def process_results(ctx: wf.WorkflowActivityContext, final_result: int) -> None:
    record("results", total=final_result)


@wfr.workflow(name="slow_batch")
def slow_batch(ctx: wf.DaprWorkflowContext, count: int) -> int:
    tasks = [ctx.call_activity(slow_item, input={"id": ctx.instance_id, "item": item})
             for item in range(1, count + 1)]
    outputs = yield wf.when_all(tasks)
    return sum(outputs)


@wfr.activity(name="slow_item")
def slow_item(ctx: wf.WorkflowActivityContext, spec: dict[str, Any]) -> int:
    time.sleep(0.2)
    record("slow_item", id=spec["id"], item=spec["item"])
    return int(spec["item"])


# ---- human approval (examples/workflow/human_approval.py) -------------------------------------

@wfr.workflow(name="purchase_order_wf")
def purchase_order(ctx: wf.DaprWorkflowContext, order: dict[str, Any]) -> str:
    if order["cost"] < 1000:
        return "Auto-approved"
    yield ctx.call_activity(send_approval, input=order)
    approval_event = ctx.wait_for_external_event("approval_received")
    timeout_event = ctx.create_timer(timedelta(seconds=order.get("timeout", 3)))
    winner = yield wf.when_any([approval_event, timeout_event])
    if winner == timeout_event:
        return "Cancelled"
    approval = approval_event.get_result()
    return f"Approved by '{approval['approver']}'"


@wfr.activity(name="send_approval")
def send_approval(ctx: wf.WorkflowActivityContext, order: dict[str, Any]) -> None:
    record("approval_requested", product=order.get("product", ""))


@wfr.workflow(name="wait_event")
def wait_event(ctx: wf.DaprWorkflowContext, delay: float) -> Any:
    """Sleeps first (an event raised meanwhile is buffered by the SDK), then waits."""
    yield ctx.create_timer(timedelta(seconds=delay))
    value = yield ctx.wait_for_external_event("go")
    return value


# ---- monitor (examples/workflow/monitor.py) ----------------------------------------------------

@wfr.workflow(name="status_monitor")
def status_monitor(ctx: wf.DaprWorkflowContext, job: dict[str, Any]) -> Any:
    status = yield ctx.call_activity(check_status, input=job)
    job = {**job, "checks": job["checks"] + 1, "last": status}
    if job["checks"] >= job["limit"]:
        return job
    yield ctx.create_timer(fire_at=timedelta(seconds=0.2))
    ctx.continue_as_new(job)


@wfr.activity(name="check_status")
def check_status(ctx: wf.WorkflowActivityContext, job: dict[str, Any]) -> str:
    return "healthy" if job["checks"] % 2 == 0 else "unhealthy"


# ---- child workflows (examples/workflow/child_workflow.py) ------------------------------------

@wfr.workflow(name="main_workflow")
def main_workflow(ctx: wf.DaprWorkflowContext, fail: bool) -> str:
    child_id = ctx.instance_id + "-child"
    try:
        result = yield ctx.call_child_workflow(workflow=child_workflow, input=fail,
                                               instance_id=child_id)
    except wf.TaskFailedError as err:
        return f"child failed: {err}"
    return f"child said {result}"


@wfr.workflow(name="child_workflow")
def child_workflow(ctx: wf.DaprWorkflowContext, fail: bool) -> str:
    answer = yield ctx.call_activity(child_step, input=fail)
    return str(answer)


@wfr.activity(name="child_step")
def child_step(ctx: wf.WorkflowActivityContext, fail: bool) -> str:
    if fail:
        raise ValueError("the child's activity failed")
    return "hello from " + ctx.workflow_id


# ---- retries ----------------------------------------------------------------------------------

@wfr.workflow(name="retrying")
def retrying(ctx: wf.DaprWorkflowContext, failures: int) -> int:
    policy = wf.RetryPolicy(first_retry_interval=timedelta(seconds=0.2),
                            max_number_of_attempts=5, backoff_coefficient=1.0)
    attempts = yield ctx.call_activity(flaky, input={"id": ctx.instance_id,
                                                     "failures": failures},
                                       retry_policy=policy)
    return int(attempts)


@wfr.activity(name="flaky")
def flaky(ctx: wf.WorkflowActivityContext, spec: dict[str, Any]) -> int:
    with _lock:
        _attempts[spec["id"]] = attempt = _attempts.get(spec["id"], 0) + 1
    record("flaky", id=spec["id"], attempt=attempt)
    if attempt <= spec["failures"]:
        raise RuntimeError(f"attempt {attempt} fails")
    return attempt


# ---- long-running (terminate / suspend / resume / purge) -----------------------------------------

@wfr.workflow(name="waiter")
def waiter(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    count = 0
    while True:
        value = yield ctx.wait_for_external_event("tick")
        count += 1
        ctx.set_custom_status(json.dumps({"count": count}))
        if value == "stop":
            return count


@wfr.workflow(name="parent_of_waiter")
def parent_of_waiter(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    result = yield ctx.call_child_workflow(workflow=waiter, instance_id=ctx.instance_id + "-w")
    return result


@wfr.workflow(name="spread")
def spread(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    pid = yield ctx.call_activity(where, input=ctx.instance_id)
    return pid


@wfr.activity(name="where")
def where(ctx: wf.WorkflowActivityContext, instance_id: str) -> int:
    record("where", id=instance_id, pid=os.getpid())
    return os.getpid()


def main() -> None:
    global EVENTS
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=Path, required=True)
    args = parser.parse_args()
    EVENTS = args.events
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wfr.start()
    print("workflow runtime started", flush=True)
    stop.wait()
    wfr.shutdown()


if __name__ == "__main__":
    main()
