"""The ``pylotto run`` instances of this machine, for ``pylotto list`` and ``pylotto stop``
(the Dapr CLI finds its ``daprd`` processes in the process table; pylotto's sidecar is a Python
process, so each run writes a record instead).

A record is one JSON file ``<pid>.json`` in the run folder (``$PYLOTTO_RUN_DIR``, default
``$XDG_RUNTIME_DIR/pylotto`` or ``~/.pylotto/run``), written once the sidecar and the app are
up and removed when the run stops; a record whose process is gone (killed with SIGKILL) is
dropped when listed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def run_dir() -> Path:
    if explicit := os.environ.get("PYLOTTO_RUN_DIR"):
        return Path(explicit)
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / "pylotto"
    return Path.home() / ".pylotto" / "run"


@dataclass(frozen=True)
class Instance:
    app_id: str
    http_port: int
    grpc_port: int
    app_port: int
    command: str
    pid: int = dataclasses.field(default_factory=os.getpid)
    """The ``pylotto run`` process (sidecar and launcher: Dapr's DAPRD PID and CLI PID)."""
    cli_pid: int = 0
    """The ``pylotto run -f`` process that started this one (0: none)."""
    app_pid: int = 0
    created: float = dataclasses.field(default_factory=time.time)
    metrics_enabled: bool = False
    run_template_path: str = ""
    run_template_name: str = ""

    def with_pids(self, app_pid: int) -> Instance:
        return dataclasses.replace(self, pid=os.getpid(), app_pid=app_pid)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _path(pid: int) -> Path:
    return run_dir() / f"{pid}.json"


def register(instance: Instance) -> None:
    folder = run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = _path(instance.pid)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps(instance.as_dict()))
    scratch.replace(target)


def unregister(instance: Instance) -> None:
    with contextlib.suppress(FileNotFoundError):
        _path(instance.pid).unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listed() -> list[Instance]:
    """Every running instance, oldest first."""
    folder = run_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            fields = json.loads(path.read_text())
            instance = Instance(**fields)
        except (OSError, ValueError, TypeError):
            continue
        if not _alive(instance.pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append(instance)
    return sorted(found, key=lambda i: i.created)


def stop(instance: Instance) -> None:
    """Ask the instance to stop (SIGTERM: it stops its app, then its sidecar)."""
    os.kill(instance.pid, signal.SIGTERM)


def age(created: float, now: float | None = None) -> str:
    """``5s``, ``3m``, ``2h``, ``4d`` (the Dapr CLI's AGE column)."""
    seconds = int((now or time.time()) - created)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
