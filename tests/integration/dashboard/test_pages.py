"""The dashboard in-process (Starlette's TestClient over SQLite): keyset pages and filters of
the list, the sign-in gate, CSRF on actions, and escaping. No workflow runs here; the browser
tests run them."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledgerflow.api import ApiSettings, create_app
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from security import context as sec_context
from security.certs import init_certs
from tests.integration.stacks import Stack, embedded_stack  # noqa: F401

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

TOKEN = "t0ken"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[WorkflowManager]:
    m = WorkflowManager(Settings(database_url=f"sqlite:///{tmp_path / 'lf.db'}", broker_url="memory://localhost/",
                                 app_id="pages"))
    yield m
    m.close()


def client(manager: WorkflowManager, token: str | None = None) -> Any:
    from starlette.testclient import TestClient

    return TestClient(create_app(manager, ApiSettings(token=token)), raise_server_exceptions=True)


def ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'href="(/ui/\?{rel}=[^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_pages_follow_the_keyset_both_ways_and_cover_every_instance_once(manager: WorkflowManager) -> None:
    for n in range(120):
        manager.schedule("Work", instance_id=f"w-{n:03d}")
    with client(manager) as c:
        first = c.get("/ui/").text
        assert link(first, "before") is None and "120 in all" in c.get("/ui/counts").text
        seen, page, pages = ids(first), first, [ids(first)]
        while (after := link(page, "after")) is not None:
            page = c.get(after).text
            pages.append(ids(page))
            seen += ids(page)
        assert [len(p) for p in pages] == [50, 50, 20]
        assert seen == sorted(seen, reverse=True) and len(set(seen)) == 120  # newest first, none twice
        back = link(page, "before")
        assert back is not None and ids(c.get(back).text) == pages[1]
        oldest = c.get("/ui/?sort=oldest").text
        assert ids(oldest)[:2] == ["w-000", "w-001"]


def test_filters_combine_and_a_prefix_is_not_a_pattern(manager: WorkflowManager) -> None:
    for instance_id, name in (("a_1", "Alpha"), ("ab1", "Alpha"), ("a_2", "Beta"), ("zz", "Beta")):
        manager.schedule(name, instance_id=instance_id)
    manager.suspend("zz")
    with client(manager) as c:
        assert sorted(ids(c.get("/ui/?idPrefix=a_").text)) == ["a_1", "a_2"]  # `_` is not a wildcard
        assert ids(c.get("/ui/?idPrefix=a_&name=Alpha").text) == ["a_1"]
        assert ids(c.get("/ui/?status=SUSPENDED").text) == ["zz"]
        counts = c.get("/ui/counts?status=SUSPENDED&idPrefix=a").text  # counts leave the status filter out
        assert "3 in all" in counts and re.search(r"PENDING</span> 3", counts)
        future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        assert ids(c.get(f"/ui/?createdFrom={future}").text) == []
        assert len(ids(c.get(f"/ui/?createdTo={future}").text)) == 4
        assert ids(c.get("/ui/?appID=other").text) == []
        bad = c.get("/ui/?status=NOPE")
        assert bad.status_code == 400 and "unknown status" in bad.text


def test_the_gate_keeps_the_token_out_of_urls_and_the_session_in_a_strict_cookie(manager: WorkflowManager) -> None:
    manager.schedule("Work", instance_id="w-1")
    with client(manager, TOKEN) as c:
        answer = c.get("/ui/instances/w-1", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/signin?next=%2Fui%2Finstances%2Fw-1"
        form = c.get(answer.headers["location"]).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        wrong = c.post("/ui/signin", data={"csrf": csrf, "token": "nope", "next": "/ui/"})
        assert wrong.status_code == 401
        no_csrf = c.post("/ui/signin", data={"token": TOKEN, "next": "/ui/"})
        assert no_csrf.status_code == 403
        ok = c.post("/ui/signin", data={"csrf": csrf, "token": TOKEN, "next": "//evil.example/"},
                    follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/ui/"  # no open redirect
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie and TOKEN not in cookie
        assert c.get("/ui/instances/w-1").status_code == 200
        assert c.post("/ui/instances/w-1/suspend").status_code == 200  # answered, but refused:
        assert manager.state("w-1").runtime_status.name == "PENDING"
        assert c.get("/v1.0/workflows/dapr/w-1").status_code == 401  # the API still wants the header


def test_actions_need_this_browsers_csrf_value_and_origin(manager: WorkflowManager) -> None:
    manager.schedule("Work", instance_id="w-1")
    with client(manager) as c:
        c.get("/ui/")
        csrf = c.cookies.get("ledgerflow_csrf")
        refused = c.post("/ui/instances/w-1/suspend", headers={"x-csrf-token": "forged"})
        assert "Refused" in refused.text
        cross = c.post("/ui/instances/w-1/suspend", headers={"x-csrf-token": csrf, "origin": "https://evil.example"})
        assert "Refused" in cross.text and manager.state("w-1").runtime_status.name == "PENDING"
        done = c.post("/ui/instances/w-1/suspend", headers={"x-csrf-token": csrf, "origin": "http://testserver"})
        assert "Suspended." in done.text and manager.state("w-1").runtime_status.name == "SUSPENDED"
        bad_json = c.post("/ui/instances/w-1/raise", data={"event": "go", "data": "{nope"},
                          headers={"x-csrf-token": csrf})
        assert "not valid JSON" in bad_json.text
        assert "Not resumed: the instance is" not in c.post("/ui/instances/w-1/resume",
                                                            headers={"x-csrf-token": csrf}).text
        assert "no longer exists" in c.post("/ui/instances/gone/terminate", headers={"x-csrf-token": csrf}).text


def test_user_data_is_escaped_everywhere(manager: WorkflowManager) -> None:
    markup = "<script>alert(1)</script>"
    manager.schedule("Work", instance_id="x-1", input={"note": markup})
    with client(manager) as c:
        for path in ("/ui/", "/ui/instances/x-1", "/ui/workflows/Work"):
            page = c.get(path).text
            assert markup not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in c.get("/ui/instances/x-1").text
        assert c.get("/ui/instances/nope").status_code == 404
        assert c.get("/ui/workflows/%3Cb%3E").text.count("<b>") == 0



@pytest.fixture
def signing_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    certs = tmp_path / "certs"
    monkeypatch.setenv("LEDGERFLOW_SIGNING", "on")
    monkeypatch.setenv("LEDGERFLOW_CERTS_DIR", str(certs))
    monkeypatch.setenv("LEDGERFLOW_RESOURCES_DIR", str(tmp_path / "resources"))
    yield certs
    sec_context.reset_cache()


def test_a_signed_history_shows_its_verification_and_a_tampered_one_the_failed_check(
        signing_env: Path, embedded_stack: Stack) -> None:
    init_certs(signing_env, embedded_stack.env["LEDGERFLOW_APP_ID"], key_type="p256")
    sec_context.reset_cache()
    iid = embedded_stack.client.schedule_new_workflow("chaining", input="go")
    embedded_stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    manager = WorkflowManager(Settings.from_env())
    try:
        with client(manager) as c:
            assert "signed; the history verified" in c.get(f"/ui/instances/{iid}").text
            engine = sa.create_engine(embedded_stack.env["LEDGERFLOW_DATABASE_URL"])
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE history_events SET payload = replace(payload, 'go+', 'go-') "
                                     "WHERE instance_id = :i"), {"i": iid})
            engine.dispose()
            page = c.get(f"/ui/instances/{iid}").text
            assert "verification failed" in page and "digest" in page
    finally:
        manager.close()


def test_another_apps_instance_is_reached_with_its_app_id(manager: WorkflowManager) -> None:
    manager.schedule("Billing", instance_id="b-1", app_id="billing")
    with client(manager) as c:
        listed = c.get("/ui/?appID=billing").text
        assert ids(listed) == ["b-1"] and 'href="/ui/instances/b-1?appID=billing"' in listed
        assert c.get("/ui/instances/b-1").status_code == 404  # this server's own app has no b-1
        assert c.get("/ui/instances/b-1?appID=billing").status_code == 200
        assert c.get("/ui/instances/b-1?appID=bad%20app").status_code == 400
        assert "No recorded run" in c.get("/ui/workflows/Billing?appID=pages").text
        assert "latest 1 run:" in c.get("/ui/workflows/Billing?appID=billing").text
        csrf = c.cookies.get("ledgerflow_csrf")
        assert "Suspended." in c.post("/ui/instances/b-1/suspend?appID=billing", headers={"x-csrf-token": csrf}).text
        assert manager.state("b-1").runtime_status.name == "SUSPENDED"
