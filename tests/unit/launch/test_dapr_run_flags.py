"""Reading ``dapr run`` flags and run templates (the Dapr CLI's rules)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pylotto.config.model import RuntimeConfig, embedded_default
from pylotto.core.errors import ConfigError
from pylotto.process import dapr_run, run_template


@pytest.mark.parametrize(("text", "size"), [
    ("4Mi", 4 * 1024 * 1024), ("512Ki", 512 * 1024), ("10M", 10_000_000), ("4096", 4096),
    ("1Gi", 1024**3), ("-1", dapr_run.UNLIMITED_BYTES)])
def test_sizes_are_kubernetes_quantities(text: str, size: int) -> None:
    assert dapr_run.parse_quantity("--max-body-size", text) == size


def test_a_bad_size_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a size"):
        dapr_run.parse_quantity("--max-body-size", "4 megabytes")


def test_with_an_app_every_listener_not_given_gets_a_free_port() -> None:
    cfg = dapr_run.apply(embedded_default(), dapr_run.DaprRunFlags(), with_app=True,
                         explicit_ports={"dapr_http"})
    listen = cfg.listen
    assert listen.dapr_http == "127.0.0.1:3500"  # given (here: the default kept)
    ports = {listen.dapr_grpc, listen.layotto_grpc, listen.actuator}
    assert len(ports) == 3 and not ports & {"127.0.0.1:50001", "127.0.0.1:34904",
                                            "127.0.0.1:34999"}
    assert cfg.app.id.count("-") == 2  # made up


def test_ports_a_config_file_sets_are_kept() -> None:
    cfg = RuntimeConfig.model_validate({"listen": {"dapr_grpc": "127.0.0.1:50123"},
                                        "source": "pylotto.yaml"})
    out = dapr_run.apply(cfg, dapr_run.DaprRunFlags(), with_app=True, explicit_ports=set())
    assert out.listen.dapr_grpc == "127.0.0.1:50123"
    assert out.listen.dapr_http != "127.0.0.1:3500"


def test_without_an_app_the_defaults_stay() -> None:
    cfg = dapr_run.apply(embedded_default(), dapr_run.DaprRunFlags(), with_app=False,
                         explicit_ports=set())
    assert cfg.listen.dapr_http == "127.0.0.1:3500" and cfg.app.id == ""


def test_app_ssl_is_https() -> None:
    flags = dapr_run.DaprRunFlags(app_ssl=True)
    assert dapr_run.app_protocol(flags) == "https"
    assert dapr_run.app_protocol(dapr_run.DaprRunFlags(app_protocol="grpc",
                                                       app_ssl=True)) == "grpcs"
    assert dapr_run.app_protocol(dapr_run.DaprRunFlags(app_protocol="H2C")) == "h2c"


def test_health_check_defaults_are_dapr_s() -> None:
    cfg = dapr_run.apply(embedded_default(), dapr_run.DaprRunFlags(
        enable_app_health_check=True, app_health_probe_timeout=200), with_app=False,
        explicit_ports=set())
    check = cfg.app.health_check
    assert check is not None
    assert (check.path, check.interval_seconds, check.timeout_seconds, check.threshold) == (
        "/healthz", 5.0, 0.2, 3)


def test_a_run_template_as_the_dapr_cli_reads_it(tmp_path: Path) -> None:
    (tmp_path / "orders" / ".dapr" / "resources").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "web").mkdir()
    (tmp_path / "dapr.yaml").write_text(yaml.safe_dump({
        "version": 1, "name": "shop",
        "common": {"resourcesPath": "./shared", "logLevel": "warn", "env": {"A": "1", "B": "1"},
                   "enableApiLogging": True},
        "apps": [
            {"appDirPath": "./orders", "appPort": 8001, "command": ["python", "app.py"],
             "env": {"B": "2"}, "appLogDestination": "console",
             "daprdLogDestination": "console"},
            {"appID": "frontend", "appDirPath": "./web", "daprHTTPPort": 3601,
             "logLevel": "debug", "appProtocol": "grpc"},
        ]}))
    name, apps = run_template.load(tmp_path / "dapr.yaml")
    assert name == "shop"
    orders, web = apps
    assert orders.app_id == "orders"  # the folder's name
    assert orders.env == {"A": "1", "B": "2"}
    assert (orders.daprd_log, orders.app_log) == ("console", "console")
    assert (web.daprd_log, web.app_log) == ("file", "fileAndConsole")  # the Dapr CLI's defaults
    assert orders.has_command and not web.has_command
    assert orders.args[-3:] == ["--", "python", "app.py"]

    def value(args: list[str], flag: str) -> str:
        return args[args.index(flag) + 1]

    assert value(orders.args, "--app-port") == "8001"
    assert value(orders.args, "--log-level") == "warn"
    assert value(orders.args, "--resources-path") == str(
        (tmp_path / "orders/.dapr/resources").resolve())
    assert "--enable-api-logging" in orders.args
    assert value(web.args, "--resources-path") == str((tmp_path / "shared").resolve())
    assert value(web.args, "--log-level") == "debug"
    assert value(web.args, "--dapr-http-port") == "3601"
    assert value(web.args, "--app-protocol") == "grpc"
    assert "--" not in web.args


@pytest.mark.parametrize(("template", "message"), [
    ({"apps": [{"appDirPath": "."}]}, "required field 'version'"),
    ({"version": 1, "apps": [{"appID": "x"}]}, "required field 'appDirPath'"),
    ({"version": 1, "apps": []}, "No apps to run"),
    ({"version": 1, "apps": [{"appDirPath": "./missing"}]}, "does not exist"),
    ({"version": 1, "apps": [{"appDirPath": ".", "appLogDestination": "syslog"}]},
     "invalid log destination type: syslog"),
    ({"version": 1, "apps": [{"appDirPath": ".", "colour": "red"}]}, "unknown keys"),
])
def test_template_errors(tmp_path: Path, template: dict[str, object], message: str) -> None:
    (tmp_path / "dapr.yaml").write_text(yaml.safe_dump(template))
    with pytest.raises(ConfigError, match=message):
        run_template.load(tmp_path / "dapr.yaml")


def test_listener_flags(tmp_path: Path) -> None:
    flags = dapr_run.DaprRunFlags(internal_grpc_port=45000, metrics_port=45001,
                                  listen_addresses="0.0.0.0", unix_domain_socket=tmp_path)
    cfg = dapr_run.apply(embedded_default().model_copy(update={"app": embedded_default().app
                                                               .model_copy(update={"id": "x"})}),
                         flags, with_app=False, explicit_ports=set())
    listen = cfg.listen
    assert listen.internal_grpc == "0.0.0.0:45000"
    assert listen.metrics == "0.0.0.0:45001"
    assert listen.layotto_grpc == "0.0.0.0:34904"
    assert listen.dapr_http == f"unix:{tmp_path.resolve()}/dapr-x-http.socket"
    assert listen.dapr_grpc == f"unix:{tmp_path.resolve()}/dapr-x-grpc.socket"


def test_app_flags() -> None:
    flags = dapr_run.DaprRunFlags(app_channel_address="127.0.0.9", app_max_concurrency=-1,
                                  enable_api_logging=True, max_body_size="2Mi")
    cfg = dapr_run.apply(embedded_default(), flags, with_app=False, explicit_ports=set())
    assert (cfg.app.host, cfg.app.max_concurrency) == ("127.0.0.9", None)
    assert cfg.api_logging and cfg.max_body_bytes == 2 * 1024 * 1024
