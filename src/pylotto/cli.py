"""The ``pylotto`` command: ``run``, ``check-config``, ``version``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from pylotto import __version__
from pylotto.config import model as config
from pylotto.core.errors import ConfigError
from pylotto.observability import logs
from pylotto.process.loop import run_loop


@click.group()
@click.version_option(__version__, prog_name="pylotto")
def main() -> None:
    """pylotto: an application runtime (sidecar) serving Layotto's runtime API."""


@main.command(context_settings={"allow_interspersed_args": False})
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="RUNTIME_CONFIG",
              help="pylotto.yaml or a Layotto JSON config. Default: embedded components.")
@click.option("--resources-path", "resources_paths", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A folder of Dapr component manifests (kind: Component) to load; "
                   "repeatable. --components-path is the same.")
@click.option("--components-path", "components_paths", multiple=True, hidden=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--app-id", help="This app's id (overrides the config).")
@click.option("--app-port", type=int, help="The app's HTTP port, for service invocation.")
@click.option("--app-grpc-port", "app_grpc_port", type=int,
              help="The app's Layotto AppCallback gRPC port, for pub/sub delivery.")
@click.option("--grpc-address", help="Layotto gRPC listen address (default 127.0.0.1:34904).")
@click.option("--actuator-address", help="Actuator listen address (default 127.0.0.1:34999).")
@click.option("--dapr-grpc-port", type=click.IntRange(0, 65535),
              help="Dapr gRPC API port on 127.0.0.1 (default 50001; 0 turns it off).")
@click.option("--dapr-http-port", type=click.IntRange(0, 65535),
              help="Dapr HTTP API port on 127.0.0.1 (default 3500; 0 turns it off).")
@click.option("--app-protocol", type=click.Choice(["http", "grpc"]),
              help="What the app serves on --app-port: HTTP, or Dapr's AppCallback gRPC.")
@click.option("--api-token", envvar="DAPR_API_TOKEN", show_envvar=True,
              help="Require this token (dapr-api-token) on every API call but health checks.")
@click.option("--app-api-token", envvar="APP_API_TOKEN", show_envvar=True,
              help="Send this token (dapr-api-token) on every call to the app.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where embedded components keep files (default ~/.local/share/pylotto).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", default="text", show_default=True,
              type=click.Choice(["text", "json"]))
@click.option("--uvloop/--no-uvloop", default=True, show_default=True,
              help="Run on uvloop when installed.")
@click.option("--hot-reload/--no-hot-reload", "hot_reload", default=None,
              help="Watch the component files and apply their changes while running "
                   "(default: on, or the config's hot_reload.enabled).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              envvar="PYLOTTO_WORKERS",
              help="Sidecar processes sharing the listen ports (SO_REUSEPORT); every "
                   "component must keep its data in a shared backend.")
@click.argument("app_command", nargs=-1, type=click.UNPROCESSED)
def run(
    config_path: Path | None,
    resources_paths: tuple[Path, ...],
    components_paths: tuple[Path, ...],
    app_id: str | None,
    app_port: int | None,
    app_grpc_port: int | None,
    grpc_address: str | None,
    actuator_address: str | None,
    dapr_grpc_port: int | None,
    dapr_http_port: int | None,
    app_protocol: str | None,
    api_token: str | None,
    app_api_token: str | None,
    data_dir: Path | None,
    log_level: str,
    log_format: str,
    uvloop: bool,
    hot_reload: bool | None,
    workers: int,
    app_command: tuple[str, ...],
) -> None:
    """Run the sidecar until SIGTERM or SIGINT.

    With a command after ``--`` (``pylotto run --app-id orders --app-port 8000 -- python
    app.py``), also run the app: it starts once the sidecar is ready, with DAPR_HTTP_PORT,
    DAPR_GRPC_PORT, APP_ID... set, and both stop together (exit code: the app's).
    """
    logs.setup(log_level, log_format)
    try:
        cfg = config.load(config_path) if config_path else config.embedded_default()
        cfg = apply_overrides(cfg, app_id=app_id, app_port=app_port, app_grpc_port=app_grpc_port,
                              grpc_address=grpc_address, actuator_address=actuator_address,
                              dapr_grpc_port=dapr_grpc_port, dapr_http_port=dapr_http_port,
                              app_protocol=app_protocol, data_dir=data_dir,
                              api_token=api_token, app_api_token=app_api_token)
        folders = [*resources_paths, *components_paths]
        if folders:
            cfg = with_manifests(cfg, folders,
                                 explicit_config=config_path is not None and cfg.dapr is None)
        if hot_reload is not None:
            cfg = cfg.model_copy(update={"hot_reload": cfg.hot_reload.model_copy(
                update={"enabled": hot_reload})})
        from pylotto.process.hotreload import ComponentSources
        from pylotto.process.server import serve  # after logging is set up

        sources = ComponentSources(config_path, tuple(folders))
        if workers > 1:
            if app_command:
                raise ConfigError("--workers runs the sidecar only: start the app separately")
            from pylotto.process.workers import run_workers

            code = run_workers(cfg, sources, workers, use_uvloop=uvloop,
                               log_level=log_level, log_format=log_format)
        else:
            code = run_loop(serve(cfg, app_command, sources), uvloop)
    except ConfigError as exc:
        click.echo(f"pylotto: {exc.message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def apply_overrides(cfg: config.RuntimeConfig, **values: Any) -> config.RuntimeConfig:
    app = cfg.app.model_copy(update={k: v for k, v in {
        "id": values["app_id"], "port": values["app_port"],
        "grpc_callback_port": values["app_grpc_port"], "protocol": values.get("app_protocol"),
        "api_token": _secret(values.get("app_api_token")),
    }.items() if v is not None})
    listen = cfg.listen.model_copy(update={k: v for k, v in {
        "layotto_grpc": values["grpc_address"], "actuator": values["actuator_address"],
        "dapr_grpc": _port_address(values.get("dapr_grpc_port")),
        "dapr_http": _port_address(values.get("dapr_http_port")),
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
    """``--dapr-*-port``: None keeps the config, 0 turns the listener off."""
    if port is None:
        return None
    return f"127.0.0.1:{port}" if port else ""


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
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def check_config(path: Path) -> None:
    """Validate a config file: sections, component types and metadata.

    Exit code 0: no warnings; 1: errors (the config is refused); 3: accepted with warnings.
    """
    logs.setup("warning")
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


if __name__ == "__main__":
    main()
