"""The dashboard as a user sees it: a real ``pylotto run``, traffic on its APIs, and the page
opened in headless Chromium (Debian's, driven by Playwright), asserting what is on screen.
Screenshots are kept in ``test-artifacts/dashboard/`` (``PYLOTTO_ARTIFACTS`` moves it)."""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pylotto.client import Client, EventStatus
from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("PYLOTTO_ARTIFACTS",
                                Path(__file__).parents[2] / "test-artifacts")) / "dashboard"
TOKEN = "dash-token"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: scripts/start-services.sh installs it",
                    pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def traffic(car: Sidecar) -> None:
    stub = car.stub()
    for n in range(5):
        stub.SaveState(runtime_pb2.SaveStateRequest(store_name="in-memory", states=[
            runtime_pb2.StateItem(key=f"d{n}", value=b"v")]))
    stub.GetState(runtime_pb2.GetStateRequest(store_name="in-memory", key="d0"))
    with pytest.raises(grpc.RpcError):
        stub.GetState(runtime_pb2.GetStateRequest(store_name="nope", key="k"))


def test_dashboard_shows_components_requests_subscriptions_errors_and_traces(
        tmp_path: Path, browser: Browser) -> None:
    car = Sidecar(tmp_path, extra_args=["--log-level", "info"])
    car.extra_config = {"tracing": {"exporter": "none"}}
    car.start()
    try:
        assert f"dashboard: http://127.0.0.1:{car.actuator_port}/dashboard" in car.logs()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{car.actuator_url}/dashboard")
        expect(page.locator("#status")).to_contain_text("updated")
        components = page.locator("#components tbody tr")
        expect(components.filter(has_text="state.in-memory")).to_have_count(1)
        expect(page.locator("#components .badge.UP").first).to_be_visible()
        assert page.locator("#components .badge.DOWN").count() == 0
        with Client(car.grpc_address) as client, \
                client.subscribe("in-memory", "dash-topic") as subscription:
            events = iter(subscription)
            traffic(car)
            for body in (b"a", b"b"):
                client.publish_event("in-memory", "dash-topic", body)
                subscription.ack(next(events))
            client.publish_event("in-memory", "dash-topic", b"c")  # dropped by the app: the
            subscription.ack(next(events), EventStatus.DROP)  # sidecar warns, a recent error
            save = page.locator("#apis tbody tr").filter(has_text="SaveState")
            expect(save).to_have_count(1)
            expect(save.locator("td").nth(6)).to_have_text("5")  # total
            get = page.locator("#apis tbody tr").filter(has_text="GetState")
            expect(get.locator("td").nth(7)).to_have_text("1")  # one failed: an error
            expect(save.locator("svg.spark polyline").first).to_have_attribute(
                "points", re.compile(r"\S+ \S+"))  # a chart of two samples or more
            sub = page.locator("#subscriptions tbody tr").filter(has_text="dash-topic")
            expect(sub.locator("td").nth(3)).to_have_text("2")  # delivered
            expect(sub.locator("td").nth(5)).to_have_text("1")  # dropped
        expect(page.locator("#component_calls tbody tr").filter(
            has_text="state store in-memory")).to_have_count(1)
        expect(page.locator("#errors tbody tr").filter(
            has_text="DROP status returned")).to_have_count(1)
        expect(page.locator("#runtime")).to_contain_text("workflow workers connected")
        trace = page.locator("#traces tr.trace").filter(has_text="SaveState").first
        expect(trace).to_be_visible()
        shot(page, "overview")
        trace.click()
        spans = page.locator("#traces table.spans tr")
        expect(spans.filter(has_text="state store in-memory")).to_have_count(1)
        expect(spans.filter(has_text="rpc.method=SaveState")).to_have_count(1)
        expect(spans.filter(has_text="db.operation.name=set")).to_have_count(1)
        shot(page, "trace")
        page.close()
    finally:
        car.stop()


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_with_an_api_token_the_dashboard_needs_it_once(tmp_path: Path,
                                                       browser: Browser) -> None:
    car = Sidecar(tmp_path, env={"DAPR_API_TOKEN": TOKEN}).start()
    try:
        base = f"{car.actuator_url}/dashboard"
        assert status_of(base) == 401
        assert status_of(f"{base}/api/snapshot") == 401
        assert status_of(f"{base}?token=wrong") == 401
        assert status_of(f"{base}/api/snapshot", {"dapr-api-token": TOKEN}) == 200
        assert status_of(f"{car.actuator_url}/actuator/info?token={TOKEN}") == 401  # only here
        page = browser.new_page()
        page.goto(f"{base}?token={TOKEN}")
        assert page.url == base  # the token left the address bar for a cookie
        expect(page.locator("#status")).to_contain_text("updated")
        expect(page.locator("#components tbody tr").filter(
            has_text="state.in-memory")).to_have_count(1)
        shot(page, "with-token")
        page.close()
    finally:
        car.stop()


def test_no_dashboard_flag_turns_it_off(tmp_path: Path) -> None:
    car = Sidecar(tmp_path, extra_args=["--no-dashboard"]).start()
    try:
        assert status_of(f"{car.actuator_url}/dashboard") == 404
        assert status_of(f"{car.actuator_url}/actuator/health/liveness") == 200
        assert "dashboard:" not in car.logs()
    finally:
        car.stop()


def test_on_a_network_actuator_the_dashboard_needs_a_token(tmp_path: Path) -> None:
    car = Sidecar(tmp_path / "open")
    car.extra_listen = {"actuator": f"0.0.0.0:{car.actuator_port}"}  # a pod's probes
    car.start()
    try:
        assert status_of(f"{car.actuator_url}/dashboard") == 404
        assert status_of(f"{car.actuator_url}/actuator/health/readiness") == 200
        assert "reachable from the network and there is no API token" in car.logs()
    finally:
        car.stop()
    guarded = Sidecar(tmp_path / "guarded", env={"DAPR_API_TOKEN": TOKEN})
    guarded.extra_listen = {"actuator": f"0.0.0.0:{guarded.actuator_port}"}
    guarded.start()
    try:
        assert status_of(f"{guarded.actuator_url}/dashboard") == 401
        assert status_of(f"{guarded.actuator_url}/dashboard/api/snapshot",
                         {"dapr-api-token": TOKEN}) == 200
    finally:
        guarded.stop()
