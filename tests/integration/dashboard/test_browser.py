"""The dashboard in a real browser, over a real `ledgerflow dev` with an API token: sign in,
the list and its filters, an instance's timeline, raising an event from the page and seeing
the status change live (SSE, no reload), escaping, and the shape of a workflow.

One server, one browser and one signed-in page for the module. With
LEDGERFLOW_SCREENSHOTS=docs the tests save the README's screenshots into docs/."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.processes import ProcessGroup, start_ledgerflow, wait_for
from tests.integration.dashboard.browser import chromium

pytestmark = pytest.mark.integration

TOKEN = "dashboard-s3cret"
HEADERS = {"dapr-api-token": TOKEN}
REPO = Path(__file__).resolve().parents[3]
XSS = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"


def _screenshot(page: Any, name: str, tmp: Path) -> None:
    target = REPO / "docs" if os.environ.get("LEDGERFLOW_SCREENSHOTS") == "docs" else tmp
    page.screenshot(path=str(target / f"dashboard-{name}.png"), full_page=True)


def _state(base: str, instance_id: str) -> dict[str, Any]:
    return httpx.get(f"{base}/v1.0/workflows/dapr/{instance_id}", headers=HEADERS, timeout=5).json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ledgerflow dev` with the shop app and three orders: one waiting for approval, one
    approved, one rejected; and an instance whose input and custom status hold markup."""
    tmp = tmp_path_factory.mktemp("dashboard")
    group = ProcessGroup(tmp / "logs")
    env = {"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp / 'dev.db'}", "LEDGERFLOW_BROKER_URL": "memory://localhost/",
           "LEDGERFLOW_APP_ID": "shop", "LEDGERFLOW_API_TOKEN": TOKEN, "DAPR_API_TOKEN": None}
    try:
        base = start_ledgerflow(group, "dev", ["dev", "tests/integration/dashboard/shop.py"], env)
        start = f"{base}/v1.0/workflows/dapr"
        for n in (1, 2, 3):
            httpx.post(f"{start}/FulfilOrder/start?instanceID=order-{n}", json={"items": 4}, headers=HEADERS)
        httpx.post(f"{start}/Echo/start?instanceID=markup-1", json=XSS, headers=HEADERS).raise_for_status()
        for n in (1, 2, 3):
            wait_for(lambda n=n: "awaiting" in _state(base, f"order-{n}")["properties"].get(
                "dapr.workflow.custom_status", ""), timeout=30, message=f"order-{n} waits for approval", logs=group)
        for n, approved in ((2, True), (3, False)):
            httpx.post(f"{start}/order-{n}/raiseEvent/approval", json={"approved": approved}, headers=HEADERS)
            wait_for(lambda n=n: _state(base, f"order-{n}")["runtimeStatus"] == "COMPLETED", timeout=30,
                     message=f"order-{n} completes", logs=group)
        yield base
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def page(browser: Any, server: str) -> Iterator[Any]:
    """A page signed in through the form (as test_the_dashboard_needs_the_api_token shows)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(15_000)
    p.goto(f"{server}/ui/")
    p.fill("input[name=token]", TOKEN)
    p.click("#signin")
    p.wait_for_url(f"{server}/ui/")
    yield p
    context.close()


def test_the_dashboard_needs_the_api_token(browser: Any, server: str) -> None:
    context = browser.new_context()
    try:
        p = context.new_page()
        p.goto(f"{server}/ui/instances/order-2")
        assert "/ui/signin" in p.url and TOKEN not in p.url
        p.fill("input[name=token]", "wrong")
        p.click("#signin")
        assert "not the API token" in p.text_content("[role=alert]")
        p.fill("input[name=token]", TOKEN)
        p.click("#signin")
        p.wait_for_url(f"{server}/ui/instances/order-2")
        assert TOKEN not in p.url
        session = next(c for c in context.cookies() if c["name"] == "ledgerflow_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict" and TOKEN not in session["value"]
        assert p.evaluate("document.cookie") == ""  # nothing for scripts to read
    finally:
        context.close()
    assert httpx.get(f"{server}/ui/", follow_redirects=False).status_code == 303
    assert httpx.get(f"{server}/v1.0/workflows/dapr/order-2").status_code == 401  # the API still wants the header


def test_the_list_shows_every_instance_and_filters_them(page: Any, server: str, tmp_path: Path) -> None:
    page.goto(f"{server}/ui/")
    ids = page.eval_on_selector_all("tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    assert {"order-1", "order-2", "order-3", "markup-1", "order-2:0007"} <= set(ids)
    assert ids.index("markup-1") < ids.index("order-1")  # newest first
    assert page.wait_for_selector("#counts .total").text_content() == f"{len(ids)} in all"
    _screenshot(page, "list", tmp_path)
    page.check("input[name=status][value=COMPLETED]")
    page.fill("input[name=name]", "FulfilOrder")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*status=COMPLETED.*"))
    ids = page.eval_on_selector_all("tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    assert sorted(ids) == ["order-2", "order-3"]
    page.fill("input[name=name]", "")
    page.uncheck("input[name=status][value=COMPLETED]")
    page.fill("input[name=idPrefix]", "order-2")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*idPrefix=order-2.*"))
    assert sorted(page.eval_on_selector_all("tr[data-id]", "rows => rows.map(r => r.dataset.id)")) == [
        "order-2", "order-2:0007"]


def test_an_instance_shows_its_timeline_children_and_parent(page: Any, server: str, tmp_path: Path) -> None:
    page.goto(f"{server}/ui/?idPrefix=order-2")
    page.click("a:text-is('order-2')")
    page.wait_for_url(f"{server}/ui/instances/order-2")
    bars = page.eval_on_selector_all("g.bar", "bars => bars.map(b => [b.dataset.kind, b.dataset.label])")
    activities = [label for kind, label in bars if kind == "activity"]
    assert activities.count("pack_item") == 4 and "pack_item (attempt 2)" in activities and "charge" in activities
    assert ["child", "ShipOrder"] in bars and ["timer", "timer"] in bars and ["retry", "retry delay"] in bars
    assert ["event", "event approval"] in bars
    assert page.locator("g.bar.st-failed").count() == 1  # the attempt that failed, as its own bar
    assert "RuntimeError: the scanner missed item order-2/1" in page.text_content("table.history")
    assert '"receipt": "charged order-2"' in page.text_content("pre.output")
    _screenshot(page, "instance", tmp_path)
    page.click(".children a:text-is('order-2:0007')")
    page.wait_for_url(f"{server}/ui/instances/order-2:0007")
    assert page.text_content("a.parent") == "order-2"


def test_raising_an_event_from_the_page_changes_the_status_live(page: Any, server: str) -> None:
    page.goto(f"{server}/ui/instances/order-1")
    assert page.text_content("#live h1 .status") == "RUNNING"
    page.wait_for_selector("#live-dot.on")  # the change feed is connected
    page.evaluate("window.__same_page = true")
    page.once("dialog", lambda dialog: dialog.accept())
    page.fill("input[name=event]", "approval")
    page.fill("textarea[name=data]", '{"approved": true}')
    page.click("form.raise button[type=submit]")
    assert page.wait_for_selector("#action-result p.result").text_content() == "Event 'approval' raised."
    page.wait_for_selector("#live h1 .status:text-is('COMPLETED')")
    assert page.evaluate("window.__same_page") is True  # updated in place, not reloaded


def test_markup_in_input_and_custom_status_is_shown_as_text(page: Any, server: str) -> None:
    for path in ("/ui/instances/markup-1", "/ui/?idPrefix=markup"):
        page.goto(f"{server}{path}")
        page.wait_for_timeout(100)
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src=x]").count() == 0
    shown = json.dumps(XSS)  # input and custom status are JSON text
    assert page.text_content("td.custom") == shown
    page.goto(f"{server}/ui/instances/markup-1")
    assert page.text_content("pre.input") == shown and page.text_content("pre.custom-status") == shown


def test_the_shape_of_a_workflow_is_drawn_from_its_runs(page: Any, server: str, tmp_path: Path) -> None:
    page.goto(f"{server}/ui/workflows/FulfilOrder")
    items = page.eval_on_selector_all("svg.shape text.item", "ts => ts.map(t => t.firstChild.textContent)")
    assert any(t.startswith("pack_item ×4 parallel") and "retr" in t for t in items), items
    assert any(t.startswith("timer") for t in items) and any(t.startswith("child workflow ShipOrder") for t in items)
    assert any(t.startswith("wait for event approval") for t in items) and any(t.startswith("charge") for t in items)
    ends = page.eval_on_selector_all("svg.shape g.end text", "ts => ts.map(t => t.textContent)")
    assert sorted(ends) == ["COMPLETED · 1", "COMPLETED · 2"] or sorted(ends) == ["COMPLETED · 1", "COMPLETED · 1"]
    _screenshot(page, "workflow", tmp_path)
