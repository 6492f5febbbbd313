"""Multi-app run: ``pylotto run -f dapr.yaml``, the Dapr CLI's run template.

The template (``version: 1``, ``common:`` settings shared by every app, ``apps:`` each with an
``appDirPath`` and optionally a ``command``) is read as the Dapr CLI reads it: paths relative to
the template (``appDirPath``, ``common``'s) or to the app's folder (the app's own), an app's
settings over ``common``'s, ``env`` merged, the app id defaulting to the app folder's name, the
resources to ``<appDirPath>/.dapr/resources`` and the config to ``<appDirPath>/.dapr/config.yaml``
when those exist. Each app runs as its own ``pylotto run`` (in its folder, the template's flags
translated) so each gets free ports, and they find each other by mDNS.

Logs, as the Dapr CLI writes them (cmd/run.go, pkg/runfileconfig): the sidecar's lines (its
``pylotto run``'s) go to ``<appDirPath>/.dapr/logs/<app id>_daprd_<YYYYmmddHHMMSS>.log`` and/or
the console by ``daprdLogDestination`` (default ``file``); the app's own output, each line
prefixed ``== APP - <app id> ==``, to ``<app id>_app_<timestamp>.log`` and/or the console by
``appLogDestination`` (default ``fileAndConsole``); an app without a command has no app log.
The app's output reaches the template through a pipe of its own (:data:`APP_OUTPUT_FD_ENV`).
SIGTERM or SIGINT stops every app; the exit
code is 1 when an app failed, else 0. As in the Dapr CLI, an app whose command exits leaves its
sidecar running (its exit logged; code 1 at the end when it failed) until the template stops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from pylotto.core.errors import ConfigError
from pylotto.process.launcher import APP_OUTPUT_FD_ENV

TEMPLATE_NAME = "dapr.yaml"
ENV_CLI_PID, ENV_PATH, ENV_NAME = ("PYLOTTO_TEMPLATE_PID", "PYLOTTO_TEMPLATE_PATH",
                                   "PYLOTTO_TEMPLATE_NAME")
STOP_GRACE_SECONDS = 20.0
PUMP_DRAIN_SECONDS = 10.0

_VALUE_FLAGS = {  # template key → pylotto run flag taking a value
    "appID": "--app-id", "appPort": "--app-port", "daprHTTPPort": "--dapr-http-port",
    "daprGRPCPort": "--dapr-grpc-port", "daprInternalGRPCPort": "--dapr-internal-grpc-port",
    "metricsPort": "--metrics-port", "profilePort": "--profile-port",
    "unixDomainSocket": "--unix-domain-socket", "appChannelAddress": "--app-channel-address",
    "configFilePath": "--config", "appProtocol": "--app-protocol",
    "apiListenAddresses": "--dapr-listen-addresses", "logLevel": "--log-level",
    "appMaxConcurrency": "--app-max-concurrency", "maxBodySize": "--max-body-size",
    "readBufferSize": "--read-buffer-size", "appHealthCheckPath": "--app-health-check-path",
    "appHealthProbeInterval": "--app-health-probe-interval",
    "appHealthProbeTimeout": "--app-health-probe-timeout",
    "appHealthThreshold": "--app-health-threshold",
    "placementHostAddress": "--placement-host-address",
    "schedulerHostAddress": "--scheduler-host-address", "runtimePath": "--runtime-path",
}
_BOOL_FLAGS = {"enableProfiling": "--enable-profiling", "appSSL": "--app-ssl",
               "enableAppHealthCheck": "--enable-app-health-check",
               "enableApiLogging": "--enable-api-logging"}
_SHARED = {"configFilePath", "appProtocol", "apiListenAddresses", "enableProfiling", "logLevel",
           "appMaxConcurrency", "placementHostAddress", "resourcesPath", "resourcesPaths",
           "appSSL", "maxBodySize", "readBufferSize", "enableAppHealthCheck",
           "appHealthCheckPath", "appHealthProbeInterval", "appHealthProbeTimeout",
           "appHealthThreshold", "enableApiLogging", "runtimePath", "env",
           "daprdLogDestination", "appLogDestination", "schedulerHostAddress"}
_APP_ONLY = {"appID", "appChannelAddress", "appPort", "daprHTTPPort", "daprGRPCPort",
             "profilePort", "command", "metricsPort", "unixDomainSocket",
             "daprInternalGRPCPort", "appDirPath", "containerImage",
             "containerImagePullPolicy", "createService"}
_LOG_DESTINATIONS = ("console", "file", "fileAndConsole")


def child_fields() -> dict[str, Any]:
    """What a ``pylotto run`` started by a template records about it (``pylotto list``)."""
    if ENV_CLI_PID not in os.environ:
        return {}
    return {"cli_pid": int(os.environ[ENV_CLI_PID]),
            "run_template_path": os.environ.get(ENV_PATH, ""),
            "run_template_name": os.environ.get(ENV_NAME, "")}


def keeps_sidecar() -> bool:
    """True in a ``pylotto run`` a template started: when its app's command exits, its
    sidecar keeps running until the template stops, as the Dapr CLI's ``run -f`` keeps
    ``daprd`` (cmd/run.go: only a stop signal ends a multi-app run)."""
    return ENV_CLI_PID in os.environ


def template_path(path: Path) -> Path:
    """``path`` itself, or the ``dapr.yaml`` in the folder ``path``."""
    if str(path) == "-":
        return path
    if path.is_dir():
        found = path / TEMPLATE_NAME
        if not found.is_file():
            raise ConfigError(f"--run-file {path}: no {TEMPLATE_NAME} in this folder")
        return found
    if not path.is_file():
        raise ConfigError(f"--run-file {path}: no such file")
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"--run-file {path}: not a YAML file")
    return path


@dataclass
class TemplateApp:
    app_id: str
    folder: Path
    args: list[str]
    """``pylotto run`` arguments, the app command after ``--``."""
    env: dict[str, str]
    daprd_log: str
    """``daprdLogDestination``: ``file``, ``console`` or ``fileAndConsole``."""
    app_log: str
    """``appLogDestination``."""

    @property
    def has_command(self) -> bool:
        return "--" in self.args


def _absolute(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    resolved = path if path.is_absolute() else (base / path)
    if not resolved.exists():
        raise ConfigError(f"run file: {value!r} ({resolved}) does not exist")
    return resolved.resolve()


def _paths(settings: dict[str, Any], base: Path) -> None:
    """Resolve the path settings of one section against ``base``, in place."""
    for key in ("configFilePath", "resourcesPath"):
        if settings.get(key):
            settings[key] = str(_absolute(base, str(settings[key])))
    paths = settings.get("resourcesPaths") or []
    if not isinstance(paths, list):
        raise ConfigError("run file: resourcesPaths must be a list")
    merged = [str(_absolute(base, str(p))) for p in paths]
    if settings.get("resourcesPath"):
        merged.append(settings.pop("resourcesPath"))
    if merged:
        settings["resourcesPaths"] = merged


def load(path: Path) -> tuple[str, list[TemplateApp]]:
    """The template's name and apps; ConfigError says what is wrong."""
    if str(path) == "-":
        text, base = sys.stdin.read(), Path.cwd()
    else:
        text, base = path.read_text(), path.resolve().parent
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"run file {path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"run file {path}: expected a mapping")
    if not raw.get("version"):
        raise ConfigError("required field 'version' not found in the provided run template "
                          "file")
    common = dict(raw.get("common") or {})
    unknown = set(common) - _SHARED
    if unknown:
        raise ConfigError(f"run file common: unknown or app-only keys {sorted(unknown)}")
    _paths(common, base)
    apps = []
    for entry in raw.get("apps") or []:
        if not isinstance(entry, dict) or not entry.get("appDirPath"):
            raise ConfigError("required field 'appDirPath' not found in the provided app "
                              "config file")
        settings = dict(entry)
        unknown = set(settings) - _SHARED - _APP_ONLY
        if unknown:
            raise ConfigError(f"run file app {settings['appDirPath']}: unknown keys "
                              f"{sorted(unknown)}")
        folder = _absolute(base, str(settings["appDirPath"]))
        _paths(settings, folder)
        apps.append(_app(folder, settings, common))
    if not apps:
        raise ConfigError("No apps to run")
    return str(raw.get("name") or ""), apps


def _app(folder: Path, settings: dict[str, Any], common: dict[str, Any]) -> TemplateApp:
    env = {str(k): str(v) for k, v in (common.get("env") or {}).items()}
    env.update({str(k): str(v) for k, v in (settings.get("env") or {}).items()})
    merged = {**{k: v for k, v in common.items() if k != "env"},
              **{k: v for k, v in settings.items() if v not in (None, "", [], 0, False)}}
    merged.setdefault("appID", folder.name)
    if "resourcesPaths" not in settings and (folder / ".dapr" / "resources").is_dir():
        merged["resourcesPaths"] = [str(folder / ".dapr" / "resources")]
    if "configFilePath" not in settings and (folder / ".dapr" / "config.yaml").is_file():
        merged["configFilePath"] = str(folder / ".dapr" / "config.yaml")
    destinations = []
    for key, default in (("daprdLogDestination", "file"), ("appLogDestination",
                                                           "fileAndConsole")):
        destination = str(merged.get(key) or default)
        if destination not in _LOG_DESTINATIONS:
            raise ConfigError(f"invalid log destination type: {destination}")
        destinations.append(destination)
    args: list[str] = []
    for key, flag in _VALUE_FLAGS.items():
        value = merged.get(key)
        if value not in (None, ""):
            if isinstance(value, int) and value < 0:
                continue
            args += [flag, str(value)]
    for key, flag in _BOOL_FLAGS.items():
        if merged.get(key):
            args.append(flag)
    for resources in merged.get("resourcesPaths") or []:
        args += ["--resources-path", str(resources)]
    command = settings.get("command") or []
    if not isinstance(command, list):
        raise ConfigError(f"run file app {merged['appID']}: command must be a list")
    if command:
        args += ["--", *map(str, command)]
    return TemplateApp(str(merged["appID"]), folder, args, env, *destinations)


def _pump(stream: IO[bytes], prefix: bytes, console: bool, log: IO[bytes] | None) -> None:
    for line in iter(stream.readline, b""):
        if console:
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()
        if log is not None:
            log.write(prefix + line)
            log.flush()
    stream.close()


class _LogFiles:
    """The log files of one template run, each ``<app id>_<kind>_<timestamp>.log`` in
    ``<appDirPath>/.dapr/logs`` as the Dapr CLI names them."""

    def __init__(self) -> None:
        self.opened: list[IO[bytes]] = []
        self.pumps: list[threading.Thread] = []

    def pump(self, stream: IO[bytes], prefix: bytes, console: bool,
             log: IO[bytes] | None) -> None:
        thread = threading.Thread(target=_pump, args=(stream, prefix, console, log),
                                  daemon=True)
        thread.start()
        self.pumps.append(thread)

    def open(self, app: TemplateApp, kind: str, destination: str) -> IO[bytes] | None:
        if destination == "console":
            return None
        folder = app.folder / ".dapr" / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d%H%M%S")
        opened = (folder / f"{app.app_id}_{kind}_{stamp}.log").open("ab")
        self.opened.append(opened)
        return opened

    def close(self) -> None:
        """Once the pumps have read their pipes to the end (bounded: an orphan of the app may
        hold its pipe open), close the files."""
        deadline = time.monotonic() + PUMP_DRAIN_SECONDS
        for thread in self.pumps:
            thread.join(max(deadline - time.monotonic(), 0.1))
        if any(thread.is_alive() for thread in self.pumps):
            return  # a pump still writes: the files close with the process
        for opened in self.opened:
            with contextlib.suppress(OSError):
                opened.close()


def _start(app: TemplateApp, command: list[str], env: dict[str, str],
           files: _LogFiles) -> subprocess.Popen[bytes]:
    """Start the app's ``pylotto run``, its sidecar's and its app's output pumped apart."""
    app_read = app_write = None
    if app.has_command:
        app_read, app_write = os.pipe()
        env = {**env, APP_OUTPUT_FD_ENV: str(app_write)}
    try:
        child = subprocess.Popen(command, cwd=app.folder, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 pass_fds=() if app_write is None else (app_write,))
    finally:
        if app_write is not None:
            os.close(app_write)
    assert child.stdout is not None
    files.pump(child.stdout, b"", app.daprd_log != "file",
               files.open(app, "daprd", app.daprd_log))
    if app_read is not None:
        files.pump(os.fdopen(app_read, "rb"), f"== APP - {app.app_id} == ".encode(),
                   app.app_log != "file", files.open(app, "app", app.app_log))
    return child


def run(path: Path, *, log_level: str, log_format: str) -> int:
    """Run every app of the template until a stop signal (an app whose command exits keeps
    its sidecar running; until every ``pylotto run`` ended, should all fail)."""
    path = template_path(path)
    name, apps = load(path)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    env_base = {**os.environ, ENV_CLI_PID: str(os.getpid()),
                ENV_PATH: "" if str(path) == "-" else str(path.resolve()), ENV_NAME: name}
    children: list[tuple[TemplateApp, subprocess.Popen[bytes]]] = []
    files = _LogFiles()
    failed = False
    try:
        for app in apps:
            print(f"Validating config and starting app {app.app_id!r}", flush=True)
            has_level = "--log-level" in app.args[:app.args.index("--")
                                                   if "--" in app.args else None]
            level = [] if has_level else ["--log-level", log_level]
            child = _start(app, [sys.executable, "-m", "pylotto", "run", *level, "--log-format",
                                 log_format, *app.args], {**env_base, **app.env}, files)
            children.append((app, child))
            folder = app.folder / ".dapr" / "logs"  # made even when unused, as the Dapr CLI
            folder.mkdir(parents=True, exist_ok=True)
            print(f"Writing log files to directory : {folder}", flush=True)
        while not stop.is_set() and any(c.poll() is None for _, c in children):
            stop.wait(0.2)
    finally:
        for _, child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for app, child in children:
            try:
                code = child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
            if code != 0:
                failed = True
                print(f"app {app.app_id!r} exited with code {code}", flush=True)
        files.close()
    return 1 if failed else 0
