#!/usr/bin/env python3
"""Run pylotto's ``check-config`` logic on every JSON config of a Layotto checkout and print a
table: each config accepted (the components it serves, and whether the servers they need run
here) or refused (the message, which names the unsupported type).

    .venv/bin/python scripts/layotto_configs.py                       # the mirror at f9681450
    .venv/bin/python scripts/layotto_configs.py --repo ~/src/layotto --ref HEAD
    .venv/bin/python scripts/layotto_configs.py --format text

The configs are read with ``git show <ref>:<path>`` (no checkout needed) from ``configs/`` and
``docker/*/`` and written to a scratch folder with the same layout, so that relative paths in
them (``../../configs/secret/...``) point where Layotto's ``cmd/layotto`` would find them.
A JSON file that is not a runtime config (a secrets file) is listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

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
    ("kafka", "kafka"),
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


def check_all(repo: Path, ref: str) -> list[Verdict]:
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
        os.chdir(root / "cmd" / "layotto")  # where Layotto's quickstarts start it
        try:
            for name in paths:
                verdicts.append(check(root / name, name))
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
    rows = ["| config | verdict | components served (type; server) | servers run here |",
            "|---|---|---|---|"]
    for v in verdicts:
        if v.skipped:
            rows.append(f"| `{v.path}` | skipped | {v.message} | |")
        elif v.accepted:
            topics = ", ".join(dict.fromkeys(_topic(w) for w in v.warnings))
            note = f" (warned: {topics})" if topics else ""
            rows.append(f"| `{v.path}` | accepted{note} | {_served(v)} | "
                        f"{'yes' if v.servers_run_here else 'no'} |")
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
            lines.extend(f"    {cap:<14} {name:<22} {typ}{'  [' + srv + ']' if srv else ''}"
                         for cap, name, typ, srv in v.components)
        else:
            lines.append(f"{v.path}: refused: {v.message}")
    return "\n".join(lines)


def summary(verdicts: list[Verdict]) -> str:
    configs = [v for v in verdicts if not v.skipped]
    accepted = [v for v in configs if v.accepted]
    runnable = [v for v in accepted if v.servers_run_here]
    return (f"{len(configs)} configs ({len(verdicts) - len(configs)} other JSON files "
            f"skipped): {len(accepted)} accepted, {len(runnable)} of them with every server "
            f"running here; {len(configs) - len(accepted)} refused")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO,
                        help=f"a Layotto git repository (default {DEFAULT_REPO})")
    parser.add_argument("--ref", default=DEFAULT_REF,
                        help=f"commit to read (default {DEFAULT_REF})")
    parser.add_argument("--format", choices=("markdown", "text"), default="markdown")
    args = parser.parse_args(argv)
    pylotto_logger = logging.getLogger("pylotto")  # check-config's warnings: counted, not shown
    pylotto_logger.setLevel(logging.WARNING)
    pylotto_logger.propagate = False
    verdicts = check_all(args.repo, args.ref)
    print(markdown(verdicts) if args.format == "markdown" else text(verdicts))
    print()
    print(summary(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
