"""The Dapr CLI's commands for apps run on this machine: ``pylotto list``, ``pylotto stop``,
``pylotto publish``, ``pylotto invoke`` (same flags, same output as ``dapr ...``). They find the
apps in the records ``pylotto run`` keeps (:mod:`pylotto.process.instances`)."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import yaml

from pylotto.process import instances

SUCCESS, FAILURE = "✅  ", "❌  "


def _fail(message: str) -> None:
    click.echo(f"{FAILURE}{message}", err=True)
    sys.exit(1)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def _request(instance: instances.Instance, socket_dir: str | None, method: str, path: str,
             body: bytes, content_type: str) -> tuple[int, str, bytes]:
    """(status, reason, body) of one call to the instance's Dapr HTTP API."""
    connection: http.client.HTTPConnection
    if socket_dir:
        connection = _UnixConnection(f"{socket_dir}/dapr-{instance.app_id}-http.socket", 60)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", instance.http_port, timeout=60)
    try:
        connection.request(method, path, body=body or None,
                           headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.reason, response.read()
    finally:
        connection.close()


def _find(app_id: str) -> instances.Instance | None:
    return next((i for i in instances.listed() if i.app_id == app_id), None)


def _payload(data: str | None, data_file: Path | None, what: str) -> bytes:
    if data is not None and data_file is not None:
        _fail(f"Only one of --data and --data-file allowed in the same {what} command")
    if data_file is not None:
        try:
            return data_file.read_bytes()
        except OSError as exc:
            _fail(f"Error reading payload from '{data_file}'. Error: {exc.strerror}")
    return (data or "").encode()


def _row(instance: instances.Instance, now: float) -> dict[str, Any]:
    return {
        "appId": instance.app_id, "httpPort": instance.http_port,
        "grpcPort": instance.grpc_port, "appPort": instance.app_port,
        "metricsEnabled": instance.metrics_enabled, "command": instance.command,
        "age": instances.age(instance.created, now),
        "created": time.strftime("%Y-%m-%d %H:%M.%S", time.localtime(instance.created)),
        "daprdPid": instance.pid, "cliPid": instance.cli_pid or instance.pid,
        "appPid": instance.app_pid, "runTemplatePath": instance.run_template_path,
        "runTemplateName": instance.run_template_name,
    }


_COLUMNS = (("APP ID", "appId"), ("HTTP PORT", "httpPort"), ("GRPC PORT", "grpcPort"),
            ("APP PORT", "appPort"), ("COMMAND", "command"), ("AGE", "age"),
            ("CREATED", "created"), ("DAPRD PID", "daprdPid"), ("CLI PID", "cliPid"),
            ("APP PID", "appPid"))


def _truncate(text: str, width: int = 20) -> str:
    return text if len(text) <= width else text[:width] + "..."


@click.command("list", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "table"]), default="table",
              help="The output format.")
@click.option("-k", "--kubernetes", is_flag=True, help="Refused: apps of this machine only.")
def list_apps(output: str, kubernetes: bool) -> None:
    """List the apps run with ``pylotto run`` on this machine."""
    if kubernetes:
        _fail("--kubernetes: pylotto lists the apps of this machine only")
    now = time.time()
    rows = [_row(i, now) for i in instances.listed()]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(rows, sort_keys=False), nl=False)
        return
    if not rows:
        click.echo("No Dapr instances found.")
        return
    table = [[h for h, _ in _COLUMNS]] + [
        [_truncate(str(r[k])) if k == "command" else str(r[k]) for _, k in _COLUMNS]
        for r in rows]
    widths = [max(len(line[c]) for line in table) for c in range(len(_COLUMNS))]
    for line in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                   .rstrip())


@click.command("stop", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--app-id", "app_ids", multiple=True, help="The app id to stop.")
@click.option("-f", "--run-file", type=click.Path(path_type=Path),
              help="Stop every app of this run template (a file, or a folder with dapr.yaml).")
@click.option("-k", "--kubernetes", is_flag=True, help="Refused: apps of this machine only.")
@click.argument("more_ids", nargs=-1)
def stop_apps(app_ids: tuple[str, ...], run_file: Path | None, kubernetes: bool,
              more_ids: tuple[str, ...]) -> None:
    """Stop apps run with ``pylotto run`` (their sidecar and their app)."""
    if kubernetes:
        _fail("--kubernetes: pylotto stops the apps of this machine only")
    running = instances.listed()
    if run_file is not None:
        from pylotto.core.errors import ConfigError
        from pylotto.process.run_template import template_path

        try:
            target = str(template_path(run_file).resolve())
        except ConfigError as exc:
            _fail(f"Failed to get run file path: {exc.message}")
        chosen = [i for i in running if i.run_template_path == target]
        if not chosen:
            _fail(f"Failed to stop Dapr and app processes: couldn't find apps with run file "
                  f"{target!r}")
        for pid in {i.cli_pid or i.pid for i in chosen}:
            instances.stop(instances.Instance(app_id="", http_port=0, grpc_port=0, app_port=0,
                                              command="", pid=pid))
        click.echo(f"{SUCCESS}Dapr and app processes stopped successfully")
        return
    for app_id in (*app_ids, *more_ids):
        instance = next((i for i in running if i.app_id == app_id), None)
        if instance is None:
            click.echo(f"{FAILURE}failed to stop app id {app_id}: couldn't find app id "
                       f"{app_id}", err=True)
            continue
        instances.stop(instance)
        click.echo(f"{SUCCESS}app stopped successfully: {app_id}")


@click.command("publish", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-i", "--publish-app-id", required=True, help="The id of the publishing app.")
@click.option("-p", "--pubsub", "pubsub_name", required=True, help="The pub/sub component.")
@click.option("-t", "--topic", required=True, help="The topic to publish to.")
@click.option("-d", "--data", help="The JSON data.")
@click.option("-f", "--data-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file holding the JSON data.")
@click.option("-m", "--metadata", help="The JSON publish metadata.")
@click.option("-u", "--unix-domain-socket", help="The folder of the app's Unix sockets.")
def publish(publish_app_id: str, pubsub_name: str, topic: str, data: str | None,
            data_file: Path | None, metadata: str | None,
            unix_domain_socket: str | None) -> None:
    """Publish an event through a running app's sidecar."""
    payload = _payload(data, data_file, "publish")
    query = ""
    if metadata:
        try:
            values = json.loads(metadata)
        except ValueError as exc:
            _fail(f"Error parsing metadata as JSON. Error: {exc}")
        query = "?" + "&".join(f"metadata.{quote(str(k))}={quote(str(v))}"
                               for k, v in values.items())
    instance = _find(publish_app_id)
    if instance is None:
        _fail(f"Error publishing topic {topic}: couldn't find a running Dapr instance")
    assert instance is not None
    content_type = "application/json"
    try:
        event = json.loads(payload) if payload else None
    except ValueError:
        event = None
    if isinstance(event, dict) and {"id", "source", "specversion", "type", "data"} <= set(event):
        content_type = "application/cloudevents+json"
    path = f"/v1.0/publish/{quote(pubsub_name)}/{quote(topic)}{query}"
    try:
        status, _, _ = _request(instance, unix_domain_socket, "POST", path, payload,
                                content_type)
    except OSError as exc:
        _fail(f"Error publishing topic {topic}: {exc}")
    if not 200 <= status < 300:
        _fail(f"Error publishing topic {topic}: unexpected status code {status} on publishing "
              f"to {topic} in {pubsub_name}")
    click.echo(f"{SUCCESS}Event published successfully")


@click.command("invoke", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--app-id", required=True, help="The app to invoke.")
@click.option("-m", "--method", required=True, help="The method to invoke.")
@click.option("-d", "--data", help="The JSON data.")
@click.option("-f", "--data-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file holding the JSON data.")
@click.option("-v", "--verb", default="POST", show_default=True, help="The HTTP verb.")
@click.option("-u", "--unix-domain-socket", help="The folder of the app's Unix sockets.")
def invoke(app_id: str, method: str, data: str | None, data_file: Path | None, verb: str,
           unix_domain_socket: str | None) -> None:
    """Invoke a method of a running app through its sidecar."""
    payload = _payload(data, data_file, "invoke")
    instance = _find(app_id)
    if instance is None:
        _fail(f"app ID {app_id} not found")
    assert instance is not None
    path = f"/v1.0/invoke/{quote(app_id)}/method/{method.lstrip('/')}"
    try:
        status, reason, body = _request(instance, unix_domain_socket, verb.upper(), path,
                                        payload, "application/json")
    except OSError as exc:
        _fail(str(exc))
    if not 200 <= status < 400:
        _fail(f"{status} {reason}")
    if body:
        click.echo(body.decode(errors="replace"))
    click.echo(f"{SUCCESS}App invoked successfully")


COMMANDS = (list_apps, stop_apps, publish, invoke)
