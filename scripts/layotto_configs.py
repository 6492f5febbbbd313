#!/usr/bin/env python3
"""Run pylotto's ``check-config`` logic on every JSON config of a Layotto checkout and print a
table: each config accepted (the components it serves, and whether the servers they need run
here) or refused (the message, which names the unsupported type).

    .venv/bin/python scripts/layotto_configs.py                       # the mirror at f9681450
    .venv/bin/python scripts/layotto_configs.py --repo ~/src/layotto --ref HEAD
    .venv/bin/python scripts/layotto_configs.py --format text
    .venv/bin/python scripts/layotto_configs.py --start      # also start each accepted one

The configs are read with ``git show <ref>:<path>`` (no checkout needed) from ``configs/`` and
``docker/*/`` and written to a scratch folder with the same layout, so that relative paths in
them (``../../configs/secret/...``) point where Layotto's ``cmd/layotto`` would find them.
A JSON file that is not a runtime config (a secrets file) is listed as skipped.

``--start`` also runs ``pylotto run -c`` on each accepted config, on this machine's servers
(scripts/start-services.sh): its listeners moved to free ports, the servers it names moved
to the local ones (docker-compose's host names ``redis``, ``etcd``... → 127.0.0.1; the
quickstarts' Redis port 6380, ``docker run -p 6380:6379``, → 6379), and reports whether it
became ready (its gRPC API answers and, when it has an actuator, readiness is UP) or the
last lines it logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pylotto.config import model
from pylotto.config.layotto import find_grpc_config
from pylotto.core.errors import ConfigError

DEFAULT_REPO = Path("/work/.mirror/mosn+layotto/repo")
DEFAULT_REF = "f9681450"

SERVERS_HERE = {"redis", "postgresql", "mysql", "etcd", "zookeeper", "rabbitmq", "mqtt", "nats",
                "memcached"}
"""What scripts/start-services.sh runs on this machine (and CI)."""

_SERVER_OF = [  # a word of the component type → the server it talks to (first match wins)
    ("redis", "redis"), ("etcd", "etcd"), ("zookeeper", "zookeeper"), ("mysql", "mysql"),
    ("postgres", "postgresql"), ("memcached", "memcached"), ("rabbitmq", "rabbitmq"),
    ("mqtt", "mqtt"), ("nats", "nats"), ("jetstream", "nats"), ("mongo", "mongodb"),
    ("consul", "consul"), ("nacos", "nacos"), ("apollo", "apollo"), ("minio", "minio"),
    ("kafka", "kafka"), ("aws.oss", "s3"), ("ceph", "s3"),
]


def server_of(component_type: str) -> str:
    """The server a component type needs, or "" for one pylotto embeds (in-memory, local
    files, sqlite, helloworld, an http binding's remote URL)."""
    lowered = component_type.lower()
    return next((server for word, server in _SERVER_OF if word in lowered), "")


@dataclass
class Verdict:
    path: str
    accepted: bool = False
    skipped: bool = False
    message: str = ""
    components: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(capability, name, type, server)"""
    warnings: list[str] = field(default_factory=list)
    started: str = ""
    """With --start: "ready", or why not."""

    @property
    def servers_run_here(self) -> bool:
        return all(not s or s in SERVERS_HERE for *_, s in self.components)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def config_paths(repo: Path, ref: str) -> list[str]:
    names = _git(repo, "ls-tree", "-r", "--name-only", ref, "--", "configs", "docker").split()
    return sorted(n for n in names if n.endswith(".json")
                  and (n.startswith("configs/") or n.count("/") == 2))


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check(path: Path, shown_as: str) -> Verdict:
    """What ``pylotto check-config <path>`` decides, as data."""
    verdict = Verdict(shown_as)
    try:
        raw = json.loads(path.read_text())
    except ValueError as exc:
        return Verdict(shown_as, message=f"not JSON: {exc}")
    if not isinstance(raw, dict) or find_grpc_config(raw) is None:
        return Verdict(shown_as, skipped=True, message="not a runtime config (no grpc_config)")
    counter = _Warnings()
    logger = logging.getLogger("pylotto")
    logger.addHandler(counter)
    try:
        config = model.load(path)
    except ConfigError as exc:
        verdict.message = exc.message.replace(str(path), shown_as)
        return verdict
    finally:
        logger.removeHandler(counter)
    verdict.accepted = True
    verdict.warnings = [m.replace(f"{path}: ", "") for m in counter.messages]
    verdict.components = [(s.capability, s.name, s.type, server_of(s.type))
                          for s in config.components]
    return verdict


_DOCKER_HOSTS = re.compile(r"\b(redis|etcd|zookeeper|mysql|nacos|mongo)(?=:\d+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _localize_values(value: Any) -> Any:
    if isinstance(value, str):
        return _DOCKER_HOSTS.sub("127.0.0.1", value).replace(":6380", ":6379")
    if isinstance(value, list):
        return [_localize_values(v) for v in value]
    if isinstance(value, dict):
        return {k: _localize_values(v) for k, v in value.items()}
    return value


def localize(raw: dict[str, Any], scratch: Path) -> tuple[dict[str, Any], str, str]:
    """``raw`` on this machine: listeners on free ports (a unix socket in ``scratch``),
    servers on the local ones. Returns it, its gRPC target and its actuator URL ("" if
    none)."""
    raw = _localize_values(raw)
    target, actuator = "", ""
    for server in raw.get("servers") or []:
        for listener in server.get("listeners") or []:
            if listener.get("network") == "unix":
                listener["address"] = str(scratch / "layotto.sock")
                where = f"unix:{listener['address']}"
            else:
                listener["address"] = where = f"127.0.0.1:{_free_port()}"
            if find_grpc_config({"servers": [{"listeners": [listener]}]}) is not None:
                target = where
            elif listener.get("name") == "actuator":
                actuator = f"http://{where}"
    for sink in (raw.get("metrics") or {}).get("sinks") or []:
        if isinstance(sink.get("config"), dict) and "port" in sink["config"]:
            sink["config"]["port"] = _free_port()
    return raw, target, actuator


def _ready(target: str, actuator: str, process: subprocess.Popen[bytes],
           timeout: float = 30) -> str:
    import grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        future = grpc.channel_ready_future(channel)
        while time.monotonic() < deadline and process.poll() is None:
            try:
                future.result(timeout=0.5)
                break
            except grpc.FutureTimeoutError:
                continue
        else:
            return "exited" if process.poll() is not None else "gRPC API did not answer"
    while actuator and time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{actuator}/actuator/health/readiness",
                                        timeout=2) as resp:
                if resp.status == 200:
                    return "ready"
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    if process.poll() is not None:
        return "exited"
    return "ready" if not actuator else "readiness not UP"


def start(path: Path, scratch: Path, cwd: Path) -> str:
    """``pylotto run -c`` on ``path`` localized, in ``cwd``: "ready", or what went wrong."""
    raw, target, actuator = localize(json.loads(path.read_text()), scratch)
    local = scratch / path.name
    local.write_text(json.dumps(raw))
    log = scratch / "pylotto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pylotto", "run", "-c", str(local),
             "--data-dir", str(scratch / "data")],
            stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        state = _ready(target, actuator, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if state == "ready":
        return state
    logged = [line.strip() for line in log.read_text(errors="replace").splitlines()
              if line.strip()]
    errors = [line for line in logged if "error" in line.lower()] or logged
    return f"{state}: {(errors or ['(nothing logged)'])[-1]}"


def check_all(repo: Path, ref: str, *, run: bool = False) -> list[Verdict]:
    paths = config_paths(repo, ref)
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="layotto-configs-") as scratch:
        root = Path(scratch)
        for name in _git(repo, "ls-tree", "-r", "--name-only", ref, "--", "configs",
                         "docker").split():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(subprocess.run(["git", "-C", str(repo), "show", f"{ref}:{name}"],
                                              check=True, capture_output=True).stdout)
        (root / "cmd" / "layotto").mkdir(parents=True)
        here = os.getcwd()
        os.chdir(root / "cmd" / "layotto")  # check-config reads paths from here, as above
        try:
            for index, name in enumerate(paths):
                verdict = check(root / name, name)
                if run and verdict.accepted:
                    scratch_run = root / f"run-{index}"
                    scratch_run.mkdir()
                    # relative paths: "../../configs/..." from cmd/layotto (the quickstarts),
                    # "configs/..." from the checkout's root (the integration test)
                    cwd = root / "cmd" / "layotto" if "../../" in (root / name).read_text() \
                        else root
                    verdict.started = start(root / name, scratch_run, cwd)
                verdicts.append(verdict)
        finally:
            os.chdir(here)
    return verdicts


def _served(v: Verdict) -> str:
    return ", ".join(f"{cap}.{name} ({typ}{'; ' + srv if srv else ''})"
                     for cap, name, typ, srv in v.components)


def _topic(warning: str) -> str:
    """A warning's subject: the section or the component and key it is about."""
    if warning.startswith("component ") and "'" in warning:
        return warning.split(":")[0].removeprefix("component ") + " " + warning.split("'")[1]
    return warning.split(":")[0].split(" (")[0]


def _short(message: str, path: str) -> str:
    """A refusal without the file name and the list of what exists."""
    return message.removeprefix(f"{path}: ").split("; known:")[0].split("; served:")[0]


def markdown(verdicts: list[Verdict]) -> str:
    started = any(v.started for v in verdicts)
    rows = ["| config | verdict | components served (type; server) | servers run here |"
            + (" started here |" if started else ""),
            "|---|---|---|---|" + ("---|" if started else "")]
    for v in verdicts:
        if v.skipped:
            rows.append(f"| `{v.path}` | skipped | {v.message} | |")
        elif v.accepted:
            topics = ", ".join(dict.fromkeys(_topic(w) for w in v.warnings))
            note = f" (warned: {topics})" if topics else ""
            rows.append(f"| `{v.path}` | accepted{note} | {_served(v)} | "
                        f"{'yes' if v.servers_run_here else 'no'} |"
                        + (f" {v.started} |" if started else ""))
        else:
            rows.append(f"| `{v.path}` | refused | {_short(v.message, v.path)} | |")
    return "\n".join(rows)


def text(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        if v.skipped:
            lines.append(f"{v.path}: skipped ({v.message})")
        elif v.accepted:
            lines.append(f"{v.path}: accepted, {len(v.warnings)} warning(s), servers run "
                         f"here: {'yes' if v.servers_run_here else 'no'}")
            lines.extend(f"    warning: {w}" for w in v.warnings)
            if v.started:
                lines.append(f"    started here: {v.started}")
            lines.extend(f"    {cap:<14} {name:<22} {typ}{'  [' + srv + ']' if srv else ''}"
                         for cap, name, typ, srv in v.components)
        else:
            lines.append(f"{v.path}: refused: {v.message}")
    return "\n".join(lines)


def summary(verdicts: list[Verdict]) -> str:
    configs = [v for v in verdicts if not v.skipped]
    accepted = [v for v in configs if v.accepted]
    runnable = [v for v in accepted if v.servers_run_here]
    ready = [v for v in accepted if v.started == "ready"]
    started = (f" ({len(ready)} started and became ready here)"
               if any(v.started for v in accepted) else "")
    return (f"{len(configs)} configs ({len(verdicts) - len(configs)} other JSON files "
            f"skipped): {len(accepted)} accepted, {len(runnable)} of them with every server "
            f"running here{started}; {len(configs) - len(accepted)} refused")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO,
                        help=f"a Layotto git repository (default {DEFAULT_REPO})")
    parser.add_argument("--ref", default=DEFAULT_REF,
                        help=f"commit to read (default {DEFAULT_REF})")
    parser.add_argument("--format", choices=("markdown", "text"), default="markdown")
    parser.add_argument("--start", action="store_true",
                        help="also start each accepted config on this machine's servers")
    args = parser.parse_args(argv)
    pylotto_logger = logging.getLogger("pylotto")  # check-config's warnings: counted, not shown
    pylotto_logger.setLevel(logging.WARNING)
    pylotto_logger.propagate = False
    verdicts = check_all(args.repo, args.ref, run=args.start)
    print(markdown(verdicts) if args.format == "markdown" else text(verdicts))
    print()
    print(summary(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
