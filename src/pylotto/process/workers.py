"""``pylotto run --workers N``: N sidecar processes sharing every listen port (SO_REUSEPORT).

The kernel spreads incoming connections over the workers, so one sidecar uses more than one
core. Each worker is a whole sidecar (its own components, connection pools, metrics and
subscriptions: a consumer group spreads messages over the workers as over instances), so
every component must keep its data in a backend they share: ``in-memory`` components and the
``snowflake`` sequencer (:attr:`Component.per_process <pylotto.components.base.Component>`) are
refused. The parent only supervises: SIGTERM or SIGINT stops every worker gracefully, a worker
that dies stops the others, and a worker whose parent is gone stops itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import wait
from types import FrameType
from typing import TYPE_CHECKING

from pylotto.core.errors import ConfigError
from pylotto.core.registry import resolve

if TYPE_CHECKING:
    from pylotto.config.model import RuntimeConfig
    from pylotto.process.hotreload import ComponentSources

log = logging.getLogger("pylotto.workers")

STOP_SECONDS = 30.0
"""How long a stopping worker may take before it is killed."""


def refuse_per_process(config: RuntimeConfig) -> None:
    """ConfigError naming the components whose data would differ between workers."""
    local = [f"{spec.capability}.{spec.name} ({spec.type})" for spec in config.components
             if resolve(spec.capability, spec.type, spec.version).per_process]
    if local:
        raise ConfigError(
            "--workers needs components whose data lives in a shared backend; these keep it "
            f"in each process: {', '.join(local)}")
    from pylotto.process.assembly import actor_state_store

    if store := actor_state_store(config):
        # workers share one address: placement could not tell them apart, and a call would
        # land on a worker that does not hold the actor's partition
        raise ConfigError(f"--workers can't serve actors (actor state store {store!r}): run "
                          "one process per sidecar, or several sidecars")


def run_workers(config: RuntimeConfig, sources: ComponentSources, count: int, *,
                use_uvloop: bool, log_level: str, log_format: str) -> int:
    """Run ``count`` workers until a signal or until one of them ends; the exit code of the
    worker that ended by itself, else the first non-zero one of a worker, else 0."""
    from pylotto.process.server import refuse_exposed_apis

    refuse_per_process(config)
    refuse_exposed_apis(config)  # once, here, rather than in each worker
    config = config.model_copy(update={
        "listen": config.listen.model_copy(update={"reuse_port": True})})
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_worker, name=f"pylotto-worker-{index}",
                               args=(config, sources, index, os.getpid(), use_uvloop,
                                     log_level, log_format))
                 for index in range(count)]
    stopping = threading.Event()
    failed: list[int] = []  # the exit code of the worker that ended by itself

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        _signal_all(processes, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        log.info("pylotto: %d workers sharing the listen ports (pids %s)", count,
                 ", ".join(str(p.pid) for p in processes))
        while any(p.is_alive() for p in processes):
            wait([p.sentinel for p in processes if p.is_alive()], timeout=1.0)
            ended = [p for p in processes if not p.is_alive()]
            if ended and not stopping.is_set():
                log.error("pylotto: worker %s ended (exit code %s); stopping the others",
                          ended[0].name, ended[0].exitcode)
                failed.append(ended[0].exitcode or 0)
                stopping.set()
                _signal_all(processes, signal.SIGTERM)
            if stopping.is_set():
                _join(processes)
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [*failed, *(p.exitcode for p in processes)]
    return next((code for code in codes if code), 0) or 0


def _signal_all(processes: Sequence[multiprocessing.process.BaseProcess], signum: int) -> None:
    for process in processes:
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signum)


def _join(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.error("pylotto: %s did not stop in %.0fs; killing it", process.name,
                      STOP_SECONDS)
            process.kill()
            process.join()


def _worker(config: RuntimeConfig, sources: ComponentSources, index: int, parent: int,
            use_uvloop: bool, log_level: str, log_format: str) -> None:
    from pylotto.core.errors import StartError
    from pylotto.observability import logs
    from pylotto.process.loop import run_loop
    from pylotto.process.server import serve

    logs.setup(log_level, log_format)
    _stop_when_orphaned(parent)
    try:
        code = run_loop(serve(config, (), sources), use_uvloop)
    except StartError as exc:  # a port taken...: one line, as the single-process sidecar
        print(f"pylotto: {exc.message}", file=sys.stderr)
        code = exc.exit_code
    raise SystemExit(code)


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM this worker once its parent is gone (killed without stopping it)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
