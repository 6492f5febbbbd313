"""``pylotto run`` where ``dapr run`` stood (issue 16, items 1, 2, 12): Dapr apps written with the
plain SDK (tests/e2e/apps/dapr_cli_app.py), started with ``dapr run``'s flags, no name
resolution configured and no ports given; ``pylotto list / stop / publish / invoke``; the exit
codes of a stopped run; multi-app run from a run template. The flags of ``dapr run``:
test_dapr_run_options.py."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.dapr_run import (
    APP,
    WAIT_SECONDS,
    Run,
    call,
    cli,
    pylotto_run,
    unique,
)
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


# ---- item 1: exit codes -----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_exits_0_even_when_the_signal_ends_the_app(
        runs: list[Run], tmp_path: Path, sig: signal.Signals) -> None:
    """The app handles no signal, so SIGTERM kills it (-15): the run still exits 0, as the
    Dapr CLI does after a stop signal (it exited 241 before)."""
    run = pylotto_run(runs, tmp_path / "a", "-a", unique("stopped"))
    run.wait_for("APP-READY")
    assert run.signal(sig) == 0, run.output()
    assert "pylotto stopped" in run.output()


def test_a_run_stopped_by_pylotto_stop_exits_0(runs: list[Run], tmp_path: Path) -> None:
    app_id = unique("stopme")
    run = pylotto_run(runs, tmp_path / "a", "-a", app_id)
    run.wait_for("APP-READY")
    listed = json.loads(cli("list", "-o", "json").stdout)
    assert [row["appId"] for row in listed] == [app_id]
    stopped = cli("stop", "--app-id", app_id)
    assert f"app stopped successfully: {app_id}" in stopped.stdout, stopped.stderr
    assert run.wait() == 0, run.output()
    assert cli("list").stdout.strip() == "No Dapr instances found."


@pytest.mark.parametrize(("code", "line"), [
    ("sys.exit(3)", "The App process exited with error code: 3"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "The App process was terminated by signal: SIGKILL"),
])
def test_an_app_that_fails_by_itself_makes_the_run_exit_1(
        runs: list[Run], tmp_path: Path, code: str, line: str) -> None:
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "data"), "--", sys.executable,
                               "-c", f"import os, signal, sys; {code}"])
    runs.append(run.start())
    assert run.wait() == 1, run.output()
    assert line in run.output()


def test_an_app_that_exits_0_makes_the_run_exit_0(runs: list[Run], tmp_path: Path) -> None:
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "data"), "--",
                               sys.executable, "-c", "print('done')"])
    runs.append(run.start())
    assert run.wait() == 0, run.output()
    assert "Exited App successfully" in run.output()


# ---- item 2: apps find each other; free ports ---------------------------------------------


def test_two_apps_invoke_each_other_by_app_id_with_no_configuration(
        runs: list[Run], tmp_path: Path) -> None:
    """Two ``pylotto run`` apps, no name-resolution config and no sidecar ports given: each
    gets free ports in its environment, and each invokes the other by app id (mDNS)."""
    first, second = unique("orders"), unique("checkout")
    one = pylotto_run(runs, tmp_path / "one", "--app-id", first, "--app-port", str(free_port()),
                      env={"PEER": second})
    two = pylotto_run(runs, tmp_path / "two", "-a", second, "-p", str(free_port()),
                      env={"PEER": first})
    for run, peer in ((one, second), (two, first)):
        run.wait_for("APP-READY")
        reply = next(line for line in run.output().splitlines() if line.startswith("reply "))
        assert json.loads(reply.removeprefix("reply ")) == {
            "app": peer, "path": "/orders", "got": '{"from": "me"}'}
    env_one, env_two = one.app_env(), two.app_env()
    assert env_one["APP_ID"] == first and env_two["APP_ID"] == second
    assert env_one["APP_CHANNEL_ADDRESS"] == "127.0.0.1" and env_one["APP_PROTOCOL"] == "http"
    ports_one = {env_one["DAPR_HTTP_PORT"], env_one["DAPR_GRPC_PORT"]}
    ports_two = {env_two["DAPR_HTTP_PORT"], env_two["DAPR_GRPC_PORT"]}
    assert not ports_one & ports_two and not ports_one & {"3500", "50001"}
    table = cli("list").stdout
    assert first in table and second in table and "APP ID" in table
    rows = {r["appId"]: r for r in json.loads(cli("list", "-o", "json").stdout)}
    assert str(rows[first]["httpPort"]) == env_one["DAPR_HTTP_PORT"]
    assert str(rows[second]["grpcPort"]) == env_two["DAPR_GRPC_PORT"]
    assert cli("stop", "-a", first, second).returncode == 0
    assert one.wait() == 0 and two.wait() == 0


def test_dapr_host_ip_is_the_address_announced_to_name_resolution(
        runs: list[Run], tmp_path: Path) -> None:
    """As daprd: a sidecar announces DAPR_HOST_IP (with its own port) to name resolution."""
    wide, narrow = unique("wide"), unique("narrow")
    pylotto_run(runs, tmp_path / "wide", "-a", wide, "-p", str(free_port()),
                "--dapr-listen-addresses", "0.0.0.0", "--allow-insecure-network",
                env={"DAPR_HOST_IP": "127.0.0.2"})
    pylotto_run(runs, tmp_path / "narrow", "-a", narrow, "-p", str(free_port()),
                env={"DAPR_HOST_IP": "127.0.0.3"})  # it listens on 127.0.0.1 only
    port = free_port()
    caller = pylotto_run(runs, tmp_path / "caller", "-a", unique("caller"), "-H", str(port),
                         "-G", str(free_port()), app=False)
    caller.wait_for("You're up and running")
    base = f"http://127.0.0.1:{port}/v1.0/invoke"
    deadline = time.monotonic() + WAIT_SECONDS
    while (answer := call("POST", f"{base}/{wide}/method/orders", b"{}"))[0] != 200:
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    assert json.loads(answer[1])["app"] == wide  # reached at 127.0.0.2
    while (answer := call("POST", f"{base}/{narrow}/method/orders", b"{}"))[0] != 500 or \
            b"couldn't find service" in answer[1]:
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    # found, at the address it announced, where nothing listens
    assert b"127.0.0.3" in answer[1], answer


def test_an_app_id_is_made_up_when_none_is_given(runs: list[Run], tmp_path: Path) -> None:
    run = pylotto_run(runs, tmp_path / "a", env={"EXIT_AFTER_PEER": "1"})
    assert run.wait() == 0, run.output()
    made_up = json.loads((run.state / "env.json").read_text())["APP_ID"]
    assert made_up and made_up.count("-") == 2


# ---- item 12: commands ------------------------------------------------------------------


def test_publish_and_invoke_commands(runs: list[Run], tmp_path: Path) -> None:
    app_id = unique("subscriber")
    run = pylotto_run(runs, tmp_path / "a", "-a", app_id, "-p", str(free_port()))
    run.wait_for("APP-READY")
    run.wait_for("subscribed to topic orders")  # the in-memory broker keeps nothing before
    published = cli("publish", "--publish-app-id", app_id, "--pubsub", "in-memory",
                    "--topic", "orders", "--data", '{"orderId": 7}')
    assert published.returncode == 0 and "Event published successfully" in published.stdout
    events = run.state / "events.jsonl"
    deadline = time.monotonic() + 20
    while not events.exists():
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.05)
    assert json.loads(events.read_text().splitlines()[0])["data"] == {"orderId": 7}
    invoked = cli("invoke", "-a", app_id, "-m", "orders", "-d", '{"x": 1}')
    assert invoked.returncode == 0, invoked.stderr
    answer, done = invoked.stdout.strip().splitlines()
    assert json.loads(answer) == {"app": app_id, "path": "/orders", "got": '{"x": 1}'}
    assert done.endswith("App invoked successfully")
    missing = cli("invoke", "-a", unique("nobody"), "-m", "x")
    assert missing.returncode == 1 and "not found" in missing.stderr
    missing = cli("publish", "-i", unique("nobody"), "-p", "in-memory", "-t", "t", "-d", "{}")
    assert missing.returncode == 1 and "couldn't find a running Dapr instance" in missing.stderr


# ---- item 12: multi-app run ---------------------------------------------------------------


def test_run_template_runs_every_app_and_stop_run_file_stops_them(
        runs: list[Run], tmp_path: Path) -> None:
    """Logs as the Dapr CLI writes them: ``<appDirPath>/.dapr/logs/<id>_daprd_<ts>.log`` and
    ``<id>_app_<ts>.log`` by ``daprdLogDestination`` (default file) and
    ``appLogDestination`` (default fileAndConsole), the app's lines ``== APP - <id> ==``."""
    first, second = unique("tpl-orders"), unique("tpl-checkout")
    for folder in ("orders", "checkout"):
        (tmp_path / "apps" / folder).mkdir(parents=True)
    template = tmp_path / "apps" / "dapr.yaml"
    template.write_text(yaml.safe_dump({
        "version": 1,
        "common": {"env": {"STATE_DIR": str(tmp_path / "state-common")}, "logLevel": "info"},
        "apps": [
            {"appID": first, "appDirPath": "./orders", "appPort": free_port(),
             "command": [sys.executable, str(APP)],
             "env": {"PEER": second, "STATE_DIR": str(tmp_path / "state-orders")}},
            {"appID": second, "appDirPath": "./checkout", "appPort": free_port(),
             "command": [sys.executable, str(APP)], "appLogDestination": "file",
             "daprdLogDestination": "console",
             "env": {"PEER": first, "STATE_DIR": str(tmp_path / "state-checkout")}},
        ]}))
    run = Run(tmp_path / "runner", ["run", "-f", str(template.parent)])
    runs.append(run.start())
    run.wait_for(f"== APP - {first} == reply ")
    run.wait_for(f"Starting pylotto with id {second}")  # its sidecar: on the console
    logs = {app: tmp_path / "apps" / folder / ".dapr" / "logs"
            for app, folder in ((first, "orders"), (second, "checkout"))}

    def log_text(app: str, kind: str, text: str) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = list(logs[app].glob(f"{app}_{kind}_*.log"))
            assert len(found) <= 1
            if found and text in found[0].read_text():
                return found[0].read_text()
            assert time.monotonic() < deadline, (app, kind, found, run.output())
            time.sleep(0.1)

    assert re.fullmatch(rf"{first}_daprd_\d{{14}}\.log",
                        next(logs[first].glob("*_daprd_*")).name)
    daprd_log = log_text(first, "daprd", f"Starting pylotto with id {first}")
    assert "== APP" not in daprd_log
    assert f"== APP - {first} == reply " in log_text(first, "app", "reply ")
    assert f"== APP - {second} == reply " in log_text(second, "app", "reply ")
    assert not list(logs[second].glob("*_daprd_*"))  # console only
    console = run.output()
    assert f"Starting pylotto with id {first}" not in console  # file only
    assert f"== APP - {second} ==" not in console  # file only
    assert f"Writing log files to directory : {logs[first]}" in console
    rows = json.loads(cli("list", "-o", "json").stdout)
    assert {r["appId"] for r in rows} == {first, second}
    assert {r["runTemplatePath"] for r in rows} == {str(template.resolve())}
    assert {r["cliPid"] for r in rows} == {run.process.pid if run.process else 0}
    stopped = cli("stop", "-f", str(template))
    assert "Dapr and app processes stopped successfully" in stopped.stdout, stopped.stderr
    assert run.wait() == 0, run.output()


def test_a_template_app_that_exits_leaves_its_sidecar_running(
        runs: list[Run], tmp_path: Path) -> None:
    """The Dapr CLI's ``run -f``: an app's exit is logged, its daprd keeps serving until the
    template is stopped, and the run then exits 1 because that app failed."""
    quitter, port = unique("tpl-quitter"), free_port()
    (tmp_path / "apps" / "quitter").mkdir(parents=True)
    template = tmp_path / "apps" / "dapr.yaml"
    template.write_text(yaml.safe_dump({"version": 1, "apps": [
        {"appID": quitter, "appDirPath": "./quitter", "daprHTTPPort": port,
         "command": [sys.executable, "-c", "import sys; print('bye', flush=True); sys.exit(3)"],
         "appLogDestination": "console", "daprdLogDestination": "console"}]}))
    run = Run(tmp_path / "runner", ["run", "-f", str(template)])
    runs.append(run.start())
    run.wait_for("The App process exited with error code: 3")
    time.sleep(1)
    assert run.process is not None and run.process.poll() is None, run.output()
    base = f"http://127.0.0.1:{port}/v1.0"
    assert call("GET", f"{base}/healthz")[0] == 204  # the sidecar still serves
    assert call("GET", f"{base}/metadata")[0] == 200
    stopped = cli("stop", "-f", str(template))
    assert "Dapr and app processes stopped successfully" in stopped.stdout, stopped.stderr
    assert run.wait() == 1, run.output()  # the app failed: the run's code, as dapr run -f


def test_run_template_errors_are_the_dapr_cli_s(tmp_path: Path) -> None:
    template = tmp_path / "dapr.yaml"
    template.write_text(yaml.safe_dump({"apps": [{"appDirPath": "."}]}))
    result = cli("run", "-f", str(template))
    assert result.returncode == 2
    assert "required field 'version' not found" in result.stderr
    template.write_text(yaml.safe_dump({"version": 1, "apps": [{"appID": "x"}]}))
    result = cli("run", "-f", str(template))
    assert "required field 'appDirPath' not found" in result.stderr
