"""The ``pylotto`` command: ``run``, ``check-config``, ``version``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from pylotto.config import model as config
from pylotto.core.errors import ConfigError, StartError
from pylotto.observability import logs
from pylotto.process.loop import run_loop
from pylotto.version import __version__


@click.group()
@click.version_option(__version__, prog_name="pylotto")
def main() -> None:
    """pylotto: an application runtime (sidecar) serving Layotto's runtime API."""


LOG_LEVEL_NAMES = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
                   "error": "error", "fatal": "critical", "panic": "critical"}
"""``--log-level``: Dapr's names (and pylotto's warning) → pylotto's levels."""

def _refuse(flag: str, why: str) -> Any:
    """A click callback recording that ``flag`` was given although pylotto refuses it."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        given = value not in (None, False, (), -1)
        if given and not (flag.endswith("-host-address") and value == ""):
            ctx.meta.setdefault("refused", {})[flag] = why
        return value

    return callback


_NO_SCHEDULER = ("pylotto's workflows, jobs and actor reminders need no scheduler service to "
                 "reach; leave it out (or give it empty)")


def _placement_ignored(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--placement-host-address`` (``dapr run`` passes one by default): accepted and ignored,
    said once: pylotto places actors without a placement service (docs/actors.md)."""
    if value:
        click.echo(f"pylotto: --placement-host-address {value} ignored: actors are placed "
                   "without a placement service (docs/actors.md)", err=True)
    return value


@main.command(context_settings={"allow_interspersed_args": False,
                                "help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="RUNTIME_CONFIG",
              help="pylotto.yaml, a Layotto JSON config or a Dapr Configuration. Default: "
                   "embedded components.")
@click.option("--resources-path", "resources_paths", multiple=True,
              help="A folder of Dapr manifests (components, subscriptions, resiliency); "
                   "repeatable, or comma-separated.")
@click.option("-d", "--components-path", "components_paths", multiple=True,
              help="Deprecated in Dapr: --resources-path.")
@click.option("-a", "--app-id", help="This app's id (overrides the config; with an app "
              "command and none given, one is made up).")
@click.option("-p", "--app-port", type=int, help="The port the app listens on.")
@click.option("--app-grpc-port", "app_grpc_port", type=int,
              help="The app's Layotto AppCallback gRPC port, for pub/sub delivery.")
@click.option("--grpc-address", help="Layotto gRPC listen address (default 127.0.0.1:34904).")
@click.option("--actuator-address", help="Actuator listen address (default 127.0.0.1:34999).")
@click.option("-G", "--dapr-grpc-port", type=click.IntRange(-1, 65535),
              help="Dapr gRPC API port (default 50001; with an app command a free port; "
                   "0 turns it off).")
@click.option("-H", "--dapr-http-port", type=click.IntRange(-1, 65535),
              help="Dapr HTTP API port (default 3500; with an app command a free port; "
                   "0 turns it off).")
@click.option("-I", "--dapr-internal-grpc-port", type=click.IntRange(-1, 65535),
              help="The sidecar-to-sidecar port (used with mTLS).")
@click.option("-P", "--app-protocol", type=click.Choice(
    ["http", "https", "grpc", "grpcs", "h2c"], case_sensitive=False),
              help="What the app serves on --app-port (https, grpcs: TLS, the app's "
                   "certificate not checked; h2c: HTTP/2 without TLS).")
@click.option("--app-ssl", is_flag=True, help="Deprecated in Dapr: --app-protocol https "
              "(grpcs with --app-protocol grpc).")
@click.option("--app-channel-address", help="The address the app listens on "
              "(default 127.0.0.1).")
@click.option("--app-max-concurrency", type=int,
              help="Calls to the app at once (-1: no limit).")
@click.option("--enable-app-health-check", is_flag=True,
              help="Probe the app; while it fails, deliveries pause and invocations fail.")
@click.option("--app-health-check-path", help="HTTP path of the probe (default /healthz).")
@click.option("--app-health-probe-interval", type=click.IntRange(0),
              help="Seconds between probes (default 5).")
@click.option("--app-health-probe-timeout", type=click.IntRange(0),
              help="Milliseconds a probe may take (default 500).")
@click.option("--app-health-threshold", type=click.IntRange(0),
              help="Failures in a row that make the app unhealthy (default 3).")
@click.option("-M", "--metrics-port", type=click.IntRange(-1, 65535),
              help="A port serving /metrics (Prometheus) besides the actuator's.")
@click.option("--enable-api-logging", is_flag=True, help="Log every API call at INFO.")
@click.option("--max-body-size", help="The largest request body, e.g. 4Mi (default 64Mi).")
@click.option("--read-buffer-size", help="HTTP header buffer; pylotto's is 8Ki "
              "(larger: refused).")
@click.option("-u", "--unix-domain-socket", type=click.Path(file_okay=False, path_type=Path),
              help="Serve the Dapr APIs on Unix sockets in this folder instead of ports.")
@click.option("--dapr-listen-addresses", help="The address the APIs listen on "
              "(one address; default 127.0.0.1).")
@click.option("--allow-insecure-network", is_flag=True, default=None,
              envvar="PYLOTTO_ALLOW_INSECURE_NETWORK", show_envvar=True,
              help="Start even when an API listens on a network address with no API token "
                   "(refused otherwise: anyone who can connect could use every API).")
@click.option("-f", "--run-file", type=click.Path(path_type=Path),
              help="A run template (dapr.yaml, or a folder holding one): run every app in it.")
@click.option("--enable-profiling", is_flag=True, expose_value=False,
              callback=_refuse("--enable-profiling", "pylotto has no pprof endpoint (it is a "
                               "Python process: profile it with py-spy or cProfile)"))
@click.option("--profile-port", type=int, expose_value=False,
              callback=_refuse("--profile-port", "pylotto has no pprof endpoint"))
@click.option("--placement-host-address", expose_value=False, callback=_placement_ignored)
@click.option("--scheduler-host-address", expose_value=False,
              callback=_refuse("--scheduler-host-address", _NO_SCHEDULER))
@click.option("-k", "--kubernetes", is_flag=True, expose_value=False,
              callback=_refuse("--kubernetes", "pylotto runs apps on this machine only"))
@click.option("--mode", type=click.Choice(["standalone", "kubernetes"]), default="standalone",
              show_default=True, envvar="PYLOTTO_MODE",
              help="As daprd's --mode: kubernetes makes name resolution `kubernetes` (cluster "
                   "DNS) the default instead of mDNS.")
@click.option("--runtime-path", expose_value=False,
              callback=_refuse("--runtime-path", "pylotto is its own runtime: there is no "
                               "daprd to find"))
@click.option("--api-token", envvar="DAPR_API_TOKEN", show_envvar=True,
              help="Require this token (dapr-api-token) on every API call but health checks.")
@click.option("--app-api-token", envvar="APP_API_TOKEN", show_envvar=True,
              help="Send this token (dapr-api-token) on every call to the app.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where embedded components keep files (default ~/.local/share/pylotto).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(list(LOG_LEVEL_NAMES), case_sensitive=False),
              help="Dapr's levels (debug, info, warn, error, fatal, panic) or warning.")
@click.option("--log-format", default="text", show_default=True,
              type=click.Choice(["text", "json"]))
@click.option("--log-as-json", is_flag=True, help="--log-format json.")
@click.option("--uvloop/--no-uvloop", default=True, show_default=True,
              help="Run on uvloop when installed.")
@click.option("--dashboard/--no-dashboard", "dashboard", default=None,
              help="The dashboard at /dashboard on the actuator (default: on).")
@click.option("--hot-reload/--no-hot-reload", "hot_reload", default=None,
              help="Watch the component files and apply their changes while running "
                   "(default: on, or the config's hot_reload.enabled).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              envvar="PYLOTTO_WORKERS",
              help="Sidecar processes sharing the listen ports (SO_REUSEPORT); every "
                   "component must keep its data in a shared backend (with no file, the "
                   "embedded default's are shared: docs/operations.md).")
@click.argument("app_command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, config_path: Path | None, resources_paths: tuple[str, ...],
        components_paths: tuple[str, ...], app_id: str | None, app_port: int | None,
        app_grpc_port: int | None, grpc_address: str | None, actuator_address: str | None,
        dapr_grpc_port: int | None, dapr_http_port: int | None,
        dapr_internal_grpc_port: int | None, app_protocol: str | None, app_ssl: bool,
        app_channel_address: str | None, app_max_concurrency: int | None,
        enable_app_health_check: bool, app_health_check_path: str | None,
        app_health_probe_interval: int | None, app_health_probe_timeout: int | None,
        app_health_threshold: int | None, metrics_port: int | None, enable_api_logging: bool,
        max_body_size: str | None, read_buffer_size: str | None,
        unix_domain_socket: Path | None, dapr_listen_addresses: str | None,
        allow_insecure_network: bool | None, run_file: Path | None, api_token: str | None,
        app_api_token: str | None,
        data_dir: Path | None, log_level: str, log_format: str, log_as_json: bool,
        uvloop: bool, hot_reload: bool | None, dashboard: bool | None, workers: int,
        mode: str,
        app_command: tuple[str, ...]) -> None:
    """Run the sidecar (and the app) until SIGTERM or SIGINT, as ``dapr run`` does.

    With a command after ``--`` (``pylotto run -a orders -p 8000 -- python app.py``), also run
    the app: it starts once the sidecar is ready, with DAPR_HTTP_PORT, DAPR_GRPC_PORT, APP_ID...
    set (free ports when none are given), and both stop together. Exit code: 0 when stopped;
    1 when the app failed (exited non-zero by itself) or could not start; 2 when the
    configuration is refused. See docs/dapr.md for every flag.
    """
    if log_as_json:
        log_format = "json"
    level = LOG_LEVEL_NAMES[log_level.lower()]
    logs.setup(level, log_format)
    from pylotto.process import dapr_run, run_template

    try:
        flags = dapr_run.DaprRunFlags(
            app_protocol=app_protocol, app_ssl=app_ssl, app_channel_address=app_channel_address,
            app_max_concurrency=app_max_concurrency, internal_grpc_port=dapr_internal_grpc_port,
            metrics_port=metrics_port, unix_domain_socket=unix_domain_socket,
            listen_addresses=dapr_listen_addresses, max_body_size=max_body_size,
            read_buffer_size=read_buffer_size, enable_api_logging=enable_api_logging,
            enable_app_health_check=enable_app_health_check,
            app_health_check_path=app_health_check_path,
            app_health_probe_interval=app_health_probe_interval,
            app_health_probe_timeout=app_health_probe_timeout,
            app_health_threshold=app_health_threshold,
            refused=dict(ctx.meta.get("refused", {})))
        dapr_run.check_refused(flags)
        if run_file is not None:
            given = [p.get_error_hint(ctx) for p in ctx.command.params
                     if ctx.get_parameter_source(p.name or "") is
                     click.core.ParameterSource.COMMANDLINE
                     and p.name not in ("run_file", "log_level", "log_format", "log_as_json")]
            if given or app_command:
                click.echo("pylotto: with --run-file, these are ignored (set them in the run "
                           f"file): {', '.join(given) or 'the app command'}", err=True)
            sys.exit(run_template.run(run_file, log_level=level, log_format=log_format))
        if app_command:  # before anything loads: a command a shell would not find fails fast
            from pylotto.process.launcher import check_command

            check_command(app_command)
        cfg = config.load(config_path) if config_path else config.embedded_default()
        cfg = apply_overrides(cfg, app_id=app_id, app_port=app_port, app_grpc_port=app_grpc_port,
                              grpc_address=grpc_address, actuator_address=actuator_address,
                              dapr_grpc_port=dapr_grpc_port, dapr_http_port=dapr_http_port,
                              data_dir=data_dir, api_token=api_token,
                              app_api_token=app_api_token,
                              allow_insecure_network=allow_insecure_network)
        logs.name_app(cfg.app.id)
        explicit = {name for name, value in (
            ("dapr_http", dapr_http_port), ("dapr_grpc", dapr_grpc_port),
            ("layotto_grpc", grpc_address), ("actuator", actuator_address))
            if value is not None and value != -1}
        cfg = dapr_run.apply(cfg, flags, with_app=bool(app_command), explicit_ports=explicit)
        folders = [Path(f) for given in (*resources_paths, *components_paths)
                   for f in given.split(",") if f]
        for folder in folders:
            if not folder.is_dir():
                raise ConfigError(f"--resources-path {folder}: not a folder")
        if folders:
            cfg = with_manifests(cfg, folders,
                                 explicit_config=config_path is not None and cfg.dapr is None)
        if config_path is None or dapr_run.is_dapr_configuration(config_path):
            cfg = dapr_run.with_default_resolution(cfg, mode)
        if hot_reload is not None:
            cfg = cfg.model_copy(update={"hot_reload": cfg.hot_reload.model_copy(
                update={"enabled": hot_reload})})
        if dashboard is not None:
            cfg = cfg.model_copy(update={"dashboard": dashboard})
        from pylotto.process import instances
        from pylotto.process.hotreload import ComponentSources
        from pylotto.process.server import serve  # after logging is set up

        sources = ComponentSources(config_path, tuple(folders))
        if workers > 1:
            if app_command:
                raise ConfigError("--workers runs the sidecar only: start the app separately")
            from pylotto.process.workers import run_workers

            code = run_workers(cfg, sources, workers, use_uvloop=uvloop,
                               log_level=level, log_format=log_format)
        else:
            if not app_command:
                log.info("no application command found: running the sidecar only")
            log.info("Starting pylotto with id %s. HTTP Port: %s. gRPC Port: %s",
                     cfg.app.id or "(none)", _port_of(cfg.listen.dapr_http),
                     _port_of(cfg.listen.dapr_grpc))
            instance = instances.Instance(
                app_id=cfg.app.id, http_port=_int_port(cfg.listen.dapr_http),
                grpc_port=_int_port(cfg.listen.dapr_grpc), app_port=cfg.app.port or 0,
                command=" ".join(app_command), metrics_enabled=bool(cfg.listen.metrics),
                **run_template.child_fields())
            code = run_loop(serve(cfg, app_command, sources, instance=instance), uvloop)
    except ConfigError as exc:
        click.echo(f"pylotto: {exc.message}", err=True)
        sys.exit(exit_code_of(exc))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


log = logging.getLogger("pylotto.cli")


def exit_code_of(exc: ConfigError) -> int:
    """2 for a configuration refused; a start-up failure's own code (1 as daprd's for a port
    taken, 127 as a shell's for an app command not found)."""
    return exc.exit_code if isinstance(exc, StartError) else 2


def _port_of(address: str) -> str:
    if not address:
        return "off"
    return address if address.startswith("unix:") else address.rpartition(":")[2]


def _int_port(address: str) -> int:
    port = address.rpartition(":")[2]
    return int(port) if port.isdigit() and not address.startswith("unix:") else 0


def apply_overrides(cfg: config.RuntimeConfig, **values: Any) -> config.RuntimeConfig:
    app = cfg.app.model_copy(update={k: v for k, v in {
        "id": values["app_id"], "port": values["app_port"],
        "grpc_callback_port": values["app_grpc_port"],
        "api_token": _secret(values.get("app_api_token")),
    }.items() if v is not None})
    listen = cfg.listen.model_copy(update={k: v for k, v in {
        "layotto_grpc": values["grpc_address"], "actuator": values["actuator_address"],
        "dapr_grpc": _port_address(values.get("dapr_grpc_port")),
        "dapr_http": _port_address(values.get("dapr_http_port")),
        "allow_insecure_network": values.get("allow_insecure_network"),
    }.items() if v is not None})
    update: dict[str, Any] = {"app": app, "listen": listen}
    if values.get("api_token"):
        update["api_token"] = _secret(values["api_token"])
    if values["data_dir"] is not None:
        update["data_dir"] = values["data_dir"]
    return cfg.model_copy(update=update)


def with_manifests(cfg: config.RuntimeConfig, folders: list[Path], *,
                   explicit_config: bool) -> config.RuntimeConfig:
    """``cfg`` plus the components and subscriptions of the Dapr manifests in ``folders``.
    With no config file, the manifests' components replace the embedded default instead of
    adding to it."""
    from pylotto.config import manifests

    loaded, subscriptions = manifests.load(folders, cfg.app.id)
    resiliency = manifests.load_resiliency(folders, cfg.app.id) or cfg.resiliency
    cfg = manifests.with_configuration(cfg, folders)  # a Dapr kind: Configuration
    base = cfg.components if explicit_config else []
    source = ", ".join(str(f) for f in folders)
    merged = cfg.model_copy(update={
        "components": [*base, *loaded],
        "subscriptions": [*cfg.subscriptions, *subscriptions],
        "resiliency": resiliency,
        "source": f"{cfg.source} + {source}" if explicit_config else source,
    })
    config.validate_components(merged)
    return merged


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None


def _port_address(port: int | None) -> str | None:
    """``--dapr-*-port``: None (or -1, Dapr's "not given") keeps the config, 0 turns the
    listener off."""
    if port is None or port == -1:
        return None
    return f"127.0.0.1:{port}" if port else ""


@main.command("injector")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, envvar="PYLOTTO_INJECTOR_CERT",
              help="The webhook's TLS certificate (PEM; the API server checks it).")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, envvar="PYLOTTO_INJECTOR_KEY", help="Its private key (PEM).")
@click.option("--address", default="0.0.0.0:4000", show_default=True,
              help="host:port to serve HTTPS on.")
@click.option("--sidecar-image", default="pylotto:latest", show_default=True,
              envvar="PYLOTTO_SIDECAR_IMAGE",
              help="The sidecar's image when a pod's annotations name none.")
@click.option("--image-pull-policy", default="IfNotPresent", show_default=True,
              type=click.Choice(["Always", "IfNotPresent", "Never"]))
@click.option("--resources-configmap", default="pylotto-resources", show_default=True,
              help="The ConfigMap of Dapr manifests mounted into each sidecar "
                   "(pylotto.io/resources overrides it per pod).")
@click.option("--namespace", "namespaces", multiple=True,
              help="Inject only in this namespace (repeatable; default: every namespace).")
@click.option("--exclude-namespace", "excluded", multiple=True,
              help="Never inject in this namespace (repeatable; default: kube-system, "
                   "kube-public, kube-node-lease).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(list(LOG_LEVEL_NAMES), case_sensitive=False))
def injector(cert_file: Path, key_file: Path, address: str, sidecar_image: str,
             image_pull_policy: str, resources_configmap: str, namespaces: tuple[str, ...],
             excluded: tuple[str, ...], log_level: str) -> None:
    """Serve the sidecar injector: a Kubernetes mutating admission webhook (POST /mutate)
    that adds the pylotto sidecar to pods annotated for Dapr or Layotto (docs/deploy.md)."""
    from pylotto.deploy import injector as webhook

    logs.setup(LOG_LEVEL_NAMES[log_level.lower()], "text")
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit():
        raise click.BadParameter(f"{address!r} is not host:port", param_hint="--address")
    options = webhook.InjectorOptions(
        sidecar_image=sidecar_image, pull_policy=image_pull_policy,
        resources_config_map=resources_configmap, namespaces=frozenset(namespaces),
        excluded_namespaces=frozenset(excluded or webhook.DEFAULT_EXCLUDED))
    sys.exit(run_loop(webhook.serve(options, host.strip("[]") or "0.0.0.0", int(port),
                                    cert_file, key_file), use_uvloop=False))


@main.group()
def cert() -> None:
    """Certificates for mTLS between sidecars (local use; see docs/operations.md)."""


@cert.command("ca")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for ca.crt and ca.key.")
@click.option("--days", default=365, show_default=True)
def cert_ca(out: Path, days: int) -> None:
    """Create a certificate authority."""
    from pylotto.security.certs import make_ca

    crt, key = make_ca(out, days)
    click.echo(f"wrote {crt} and {key}")


@cert.command("app")
@click.option("--app-id", required=True, help="The app the certificate identifies.")
@click.option("--ca", "ca_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder holding ca.crt and ca.key.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--days", default=90, show_default=True)
def cert_app(app_id: str, ca_dir: Path, out: Path, days: int) -> None:
    """Create a certificate (and key) for one app's sidecar, signed by the CA."""
    from pylotto.security.certs import make_app_cert

    crt, key = make_app_cert(app_id, ca_dir, out, days)
    click.echo(f"wrote {crt} and {key}")


CHECK_OK, CHECK_ERROR, CHECK_WARNINGS = 0, 1, 3
"""``check-config`` exit codes (2 is click's usage error): clean; refused (the config would not
start); accepted with warnings (something in it is not done)."""


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@main.command("check-config")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def check_config(path: Path) -> None:
    """Validate a config file (pylotto.yaml, Layotto JSON), a Dapr manifest file or a Dapr
    resources folder (components, subscriptions, resiliency, Configuration).

    Exit code 0: no warnings; 1: errors (the config is refused); 3: accepted with warnings.
    """
    from pylotto.config import manifest_check

    logs.setup("warning")
    if path.is_dir() or manifest_check.is_manifest_file(path):
        _check_manifests(path)
    if path.is_dir():  # not reached: _check_manifests exits
        return
    counter = _Counter()
    logging.getLogger("pylotto").addHandler(counter)
    try:
        cfg = config.load(path)
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(CHECK_ERROR)
    finally:
        logging.getLogger("pylotto").removeHandler(counter)
    verdict = f"ok with {counter.count} warning(s)" if counter.count else "ok"
    click.echo(f"{path}: {verdict} — app id {cfg.app.id or '(none)'}, "
               f"{len(cfg.components)} components")
    for spec in cfg.components:
        click.echo(f"  {spec.capability:<14} {spec.name:<20} {spec.type}")
    sys.exit(CHECK_WARNINGS if counter.count else CHECK_OK)


def _check_manifests(path: Path) -> None:
    from pylotto.config import manifest_check

    logging.getLogger().handlers[:] = []  # warnings are printed below, once, as findings
    report = manifest_check.check(path)
    for finding in report.findings:
        label = "error" if finding.error else "warning"
        click.echo(f"{label}: {finding.where}: {finding.message}", err=True)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items())) or "no manifests"
    if report.errors:
        click.echo(f"{path}: refused — {report.errors} error(s); {kinds}")
        sys.exit(CHECK_ERROR)
    verdict = f"ok with {report.warnings} warning(s)" if report.warnings else "ok"
    click.echo(f"{path}: {verdict} — {kinds}")
    sys.exit(CHECK_WARNINGS if report.warnings else CHECK_OK)


@main.command("plugins")
def list_plugins() -> None:
    """List installed plugins: component types (entry points ``pylotto.components``) and API
    plugins (``pylotto.apis``), with the package providing each. See docs/plugins.md."""
    from pylotto import plugins
    from pylotto.core import registry

    for title, group in (("component types", registry.ENTRY_POINT_GROUP),
                         ("API plugins", plugins.ENTRY_POINT_GROUP)):
        found = plugins.installed(group)
        click.echo(f"{title} ({group}): {len(found) or 'none'}")
        for info in found:
            click.echo(f"  {info.name:<24} {info.target:<52} {info.distribution}")


def _add_dapr_commands() -> None:
    from pylotto import cli_dapr

    for command in cli_dapr.COMMANDS:
        main.add_command(command)


_add_dapr_commands()

if __name__ == "__main__":
    main()
