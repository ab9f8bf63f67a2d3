"""The web viewer (``/ui/``) over HTTP, without a browser: sign-in and sessions, CSRF, headers,
escaping, project isolation, filters and pagination, the buttons, the pure helpers.

The browser tests (real Chromium) are in ``tests/ui``. Here a plain aiohttp session plays the
browser (cookies, forms), next to the API test client that creates the data.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from configparser import ConfigParser
from fnmatch import fnmatch
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from elluminate.server import ServerConfig, create_app
from elluminate.server.ui import compare, present
from elluminate.server.ui.charts import bar_chart
from elluminate.server.ui.security import CSP
from elluminate.server.ui.sessions import Session, SessionStore

P = "/api/v0/projects/1"
API_KEY = "test-key-0123456789"  # the key of the ``client`` fixture's server (conftest.py)
ROOT = Path(__file__).resolve().parents[2]
UI_PACKAGE = ROOT / "elluminate" / "server" / "ui"
SCRIPT = "<script>window.__xss = 1</script>"
ATTRIBUTE = '"><img src=x onerror="window.__xss = 2">'


class Viewer:
    """A cookie-keeping HTTP session against the test server: what a browser does."""

    def __init__(self, session: aiohttp.ClientSession, base: URL) -> None:
        self.session = session
        self.base = base

    def url(self, path: str) -> URL:
        return self.base.join(URL(path))

    async def get(self, path: str, **kw: Any) -> tuple[aiohttp.ClientResponse, str]:
        resp = await self.session.get(self.url(path), allow_redirects=False, **kw)
        return resp, await resp.text()

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> tuple[Any, str]:
        resp = await self.session.post(self.url(path), data=data, allow_redirects=False, **kw)
        return resp, await resp.text()

    async def sign_in(self, key: str) -> aiohttp.ClientResponse:
        resp, html = await self.get("/ui/login")
        assert resp.status == 200, html
        resp, html = await self.post(
            "/ui/login", {"csrf_token": csrf_of(html), "api_key": key, "next": "/ui/"}
        )
        return resp

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


@pytest.fixture
async def viewer(client: Any) -> AsyncIterator[Viewer]:
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield Viewer(session, client.make_url("/"))


@pytest.fixture
async def signed_in(viewer: Viewer, client: Any) -> Viewer:
    resp = await viewer.sign_in(client.key)
    assert resp.status == 303, await resp.text()
    return viewer


async def finished_experiment(
    client: Any, h: Any, *, rows: list[dict[str, Any]], criteria: list[str], name: str = ""
) -> dict[str, Any]:
    fx = await h.make_fixture(client, rows=rows, criteria=criteria)
    exp = await h.create_experiment(client, fx, name or None, generate=True)
    final = await h.run_to_end(client, exp)
    assert final["status"] == "SUCCESS", final
    return await client.ok("GET", f"{P}/experiments/{exp['id']}")  # type: ignore[no-any-return]


# ---- entry points and sign-in ----------------------------------------------------------


async def test_root_redirects_browsers_and_answers_api_clients(viewer: Viewer) -> None:
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    resp, _ = await viewer.get("/", headers={"Accept": html})
    assert resp.status == 302 and resp.headers["Location"] == "/ui/"
    for accept in ("*/*", "application/json", ""):
        resp, body = await viewer.get("/", headers={"Accept": accept} if accept else {})
        assert resp.status == 200 and resp.content_type == "application/json", body
    resp, _ = await viewer.get("/ui")
    assert resp.status == 302 and resp.headers["Location"] == "/ui/"


async def test_pages_need_a_session_and_the_api_key_header_is_not_one(
    viewer: Viewer, client: Any
) -> None:
    for path in ("/ui/", "/ui/experiments/1", "/ui/compare?a=1&b=2", "/ui/templates"):
        for headers in ({}, {"X-API-Key": client.key}):
            resp, _ = await viewer.get(path, headers=headers)
            assert resp.status == 303, path
            location = URL(resp.headers["Location"])
            assert location.path == "/ui/login" and location.query["next"] == path
    resp, _ = await viewer.post("/ui/experiments/1/cancel", {"csrf_token": "x"})
    assert resp.status == 303 and URL(resp.headers["Location"]).path == "/ui/login"


async def test_sign_in_keeps_the_key_on_the_server(viewer: Viewer, client: Any) -> None:
    resp, html = await viewer.get("/ui/login?next=/ui/templates")
    assert resp.status == 200 and 'type="password"' in html
    login_cookie = resp.cookies["elluminate_signin"]
    assert login_cookie["httponly"] and login_cookie["samesite"] == "Strict"
    resp, _ = await viewer.post(
        "/ui/login",
        {"csrf_token": csrf_of(html), "api_key": client.key, "next": "/ui/templates"},
    )
    assert resp.status == 303 and resp.headers["Location"] == "/ui/templates"
    cookie = resp.cookies["elluminate_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/ui"
    assert client.key not in cookie.value and client.key not in resp.headers["Location"]
    for path in ("/ui/templates", "/ui/", "/ui/collections"):
        resp, html = await viewer.get(path)
        assert resp.status == 200, html
        assert client.key not in html
        assert "Default project" in html


async def test_sign_in_refuses_bad_keys_and_forms_from_elsewhere(
    viewer: Viewer, client: Any
) -> None:
    resp, html = await viewer.get("/ui/login")
    resp, html = await viewer.post("/ui/login", {"csrf_token": csrf_of(html), "api_key": "wrong"})
    assert resp.status == 401 and "Invalid API key" in html
    assert viewer.cookie("elluminate_session") is None
    # every form gets a fresh token (the answer carries the next one)
    resp, html = await viewer.post("/ui/login", {"csrf_token": csrf_of(html), "api_key": "  "})
    assert resp.status == 400 and "Enter a project API key" in html
    resp, html = await viewer.post(
        "/ui/login", {"csrf_token": csrf_of(html), "api_key": "x" * 5000}
    )
    assert resp.status == 401
    # a form posted from another site carries no (or another) token: refused, no session
    resp, html = await viewer.post("/ui/login", {"csrf_token": "forged", "api_key": client.key})
    assert resp.status == 403 and viewer.cookie("elluminate_session") is None
    resp, html = await viewer.post("/ui/login", {"api_key": client.key})
    assert resp.status == 403 and viewer.cookie("elluminate_session") is None


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/ui/", "/api/v0/projects", "/ui\\..\\x"]
)
async def test_sign_in_never_redirects_off_the_viewer(
    viewer: Viewer, client: Any, target: str
) -> None:
    resp, html = await viewer.get("/ui/login")
    resp, _ = await viewer.post(
        "/ui/login", {"csrf_token": csrf_of(html), "api_key": client.key, "next": target}
    )
    assert resp.status == 303 and resp.headers["Location"] == "/ui/"


async def test_sign_out_ends_the_session_on_the_server(signed_in: Viewer) -> None:
    resp, html = await signed_in.get("/ui/")
    old = signed_in.cookie("elluminate_session")
    assert old
    resp, _ = await signed_in.post("/ui/logout", {"csrf_token": "wrong"})
    assert resp.status == 403
    resp, _ = await signed_in.post("/ui/logout", {"csrf_token": csrf_of(html)})
    assert resp.status == 303 and resp.headers["Location"] == "/ui/login"
    assert signed_in.cookie("elluminate_session") is None
    signed_in.session.cookie_jar.update_cookies({"elluminate_session": old}, signed_in.url("/ui/"))
    resp, _ = await signed_in.get("/ui/")
    assert resp.status == 303  # the old id is worth nothing after sign-out


async def test_a_removed_key_ends_its_sessions(signed_in: Viewer, db_path: Path) -> None:
    resp, _ = await signed_in.get("/ui/")
    assert resp.status == 200
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM api_keys")
    conn.commit()
    conn.close()
    resp, _ = await signed_in.get("/ui/")
    assert resp.status == 303 and URL(resp.headers["Location"]).path == "/ui/login"


async def test_viewer_paths_do_not_open_the_api(viewer: Viewer) -> None:
    for path in (
        "/ui/../api/v0/projects",
        "/ui/%2e%2e/api/v0/projects",
        "/ui%2F..%2Fapi/v0/projects",
    ):
        raw = URL(str(viewer.base).rstrip("/") + path, encoded=True)  # sent as written
        resp = await viewer.session.get(raw, allow_redirects=False)
        body = await resp.text()
        # an API path needs its key; a viewer path is a page of the viewer (sign-in first)
        assert resp.status in (303, 401, 404), (path, resp.status, body)
        assert '"items"' not in body and "Default project" not in body


# ---- headers and assets -------------------------------------------------------------------


async def test_every_page_sends_the_security_headers(signed_in: Viewer, client: Any) -> None:
    for path in ("/ui/login", "/ui/", "/ui/nowhere", "/ui/assets/viewer.js"):
        resp, _ = await signed_in.get(path)
        assert resp.headers["Content-Security-Policy"] == CSP, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Server-Timing"].startswith("app;dur=")
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert "frame-ancestors 'none'" in CSP
    resp, html = await signed_in.get("/ui/")
    assert resp.headers["Cache-Control"] == "no-store"
    resp, _ = await signed_in.get("/ui/nowhere")
    assert resp.status == 404 and resp.content_type == "text/html"


async def test_assets_are_served_by_the_server_and_nothing_comes_from_elsewhere(
    viewer: Viewer,
) -> None:
    for name, kind in (
        ("viewer.css", "text/css"),
        ("viewer.js", "javascript"),
        ("favicon.svg", "svg"),
    ):
        resp, body = await viewer.get(f"/ui/assets/{name}")  # public: the sign-in page uses them
        assert resp.status == 200 and kind in resp.content_type, name
        assert body
    for path in ("/ui/assets/../sessions.py", "/ui/assets/%2e%2e/sessions.py"):
        raw = URL(str(viewer.base).rstrip("/") + path, encoded=True)  # sent as written
        resp = await viewer.session.get(raw, allow_redirects=False)
        assert resp.status in (303, 403, 404) and "SessionStore" not in await resp.text()
    for path in [
        *UI_PACKAGE.joinpath("templates").iterdir(),
        *UI_PACKAGE.joinpath("assets").iterdir(),
    ]:
        text = path.read_text()
        for url in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"']*", text):
            assert url == "http://www.w3.org/2000/svg", f"{path.name} loads {url}"
        assert "style=" not in text, f"{path.name}: inline styles are blocked by the CSP"
        assert "<script>" not in text and "onclick" not in text, path.name


def test_templates_and_assets_are_package_data() -> None:
    parser = ConfigParser()
    parser.read(ROOT / "setup.cfg")
    patterns = [
        p.strip() for p in parser["options.package_data"]["elluminate.server.ui"].split(",")
    ]
    files = [
        f.relative_to(UI_PACKAGE).as_posix()
        for folder in ("templates", "assets")
        for f in (UI_PACKAGE / folder).iterdir()
    ]
    assert files
    missing = [f for f in files if not any(fnmatch(f, p) for p in patterns)]
    assert not missing, f"not installed with the package: {missing}"


# ---- content ------------------------------------------------------------------------------


async def test_user_strings_are_escaped_everywhere(
    signed_in: Viewer, client: Any, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(
        client,
        rows=[{"topic": SCRIPT}, {"topic": ATTRIBUTE}],
        criteria=[f"Is it safe {SCRIPT}?", f"Quoted {ATTRIBUTE}"],
        template="Explain {{topic}} " + ATTRIBUTE,
    )
    exp = await h.create_experiment(client, fx, f"exp {SCRIPT} {ATTRIBUTE}", generate=True)
    await h.run_to_end(client, exp)
    await client.ok("POST", f"{P}/experiments", json=h.experiment_body(fx, f"second {ATTRIBUTE}"))
    pages = [
        "/ui/",
        f"/ui/experiments/{exp['id']}",
        f"/ui/compare?a={exp['id']}&b={exp['id']}",
        f"/ui/templates/{fx.template_id}",
        f"/ui/collections/{fx.collection_id}",
        f"/ui/criterion-sets/{fx.set_id}",
        "/ui/criterion-sets",
        "/ui/collections",
        "/ui/templates",
    ]
    for path in pages:
        resp, html = await signed_in.get(path)
        assert resp.status == 200, (path, html[:500])
        assert SCRIPT not in html and "<img" not in html, path
        assert "onerror=" not in html.replace("onerror=&#34;", "").replace("onerror=&quot;", ""), (
            path
        )
    _, html = await signed_in.get(f"/ui/experiments/{exp['id']}")
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html  # shown as text
    assert unescape(ATTRIBUTE.replace('"', "&#34;")) in unescape(html)


async def test_experiment_page_shows_the_results_of_the_api(
    signed_in: Viewer, client: Any, tasks_helpers: Any
) -> None:
    rows = [{"topic": "AI"}, {"topic": "cats ECHO_NO"}, {"topic": "tea"}, {"topic": "ECHO_FAIL"}]
    exp = await finished_experiment(
        client, tasks_helpers, rows=rows, criteria=["Is it clear?", "Is it short?"]
    )
    results = exp["results"]
    resp, html = await signed_in.get(f"/ui/experiments/{exp['id']}")
    assert resp.status == 200
    assert f'id="pass-rate">{present.percent(results["mean_all_ratings"]["yes"])}<' in html
    assert 'id="responses-count">4<' in html and 'id="failed-count">1<' in html
    assert f'id="input-tokens">{sum(results["input_tokens_per_response"]):,}<' in html
    for cid, mean in results["mean_rating_by_criterion_id"].items():
        row = re.search(rf'<tr data-criterion-id="{cid}">.*?</tr>', html, re.S)
        assert row and present.percent(mean["yes"]) in row.group(0)
    assert "<svg" in html and 'class="bar s0"' in html
    assert "generation failed" in html and html.count("data-response-id=") == 4
    assert 'id="retry-failed"' in html and 'id="cancel"' not in html
    # the list computes its numbers with aggregate queries: the same as ``results``
    _, html = await signed_in.get("/ui/")
    row = re.search(rf'<tr data-experiment-id="{exp["id"]}">.*?</tr>', html, re.S)
    assert row is not None
    rate = present.percent(results["mean_all_ratings"]["yes"])
    assert f'data-field="pass-rate">{rate}<' in row.group(0)
    assert 'data-field="responses">4<' in row.group(0)
    assert 'data-field="failed">1<' in row.group(0) and "SUCCESS" in row.group(0)


async def test_response_filters_and_pages_load_one_page_only(
    signed_in: Viewer, client: Any, tasks_helpers: Any
) -> None:
    rows = [{"topic": f"t{i} ECHO_NO" if i % 3 == 0 else f"t{i}"} for i in range(120)]
    rows[5] = {"topic": "ECHO_FAIL"}
    exp = await finished_experiment(
        client, tasks_helpers, rows=rows, criteria=["Is it clear?", "ECHO_NO always"]
    )
    eid = exp["id"]
    criteria = {c["criterion_str"]: c["id"] for c in exp["criterion_set"]["criteria"]}
    clear, always_no = criteria["Is it clear?"], criteria["ECHO_NO always"]

    async def shown(query: str) -> tuple[int, str]:
        resp, html = await signed_in.get(f"/ui/experiments/{eid}?{query}")
        assert resp.status == 200, html[:1000]
        return html.count("data-response-id="), html

    count, html = await shown("")
    assert count == 50 and "1&ndash;50 of 120 responses" in html
    count, html = await shown("page=3")
    assert count == 20 and "101&ndash;120 of 120 responses" in html
    count, html = await shown("size=10&page=2")
    assert count == 10
    no_clear = sum(1 for i in range(120) if i % 3 == 0 and i != 5)  # ECHO_NO rows, rated NO
    count, html = await shown(f"criterion={clear}&verdict=no")
    assert count == no_clear and f"of {no_clear} responses" in html
    count, html = await shown(f"criterion={clear}&verdict=yes&size=200")
    assert count == 119 - no_clear
    count, _ = await shown(f"criterion={always_no}&verdict=yes")
    assert count == 0
    count, html = await shown("failed=1")
    assert count == 1 and "generation failed" in html
    count, _ = await shown("verdict=unrated")
    assert count == 1  # the failed row has no rating
    for bad in ("verdict=maybe", "criterion=abc", "criterion=999999", "page=0", "size=500"):
        resp, html = await signed_in.get(f"/ui/experiments/{eid}?{bad}")
        assert resp.status == 400, bad
        assert "error-message" in html


async def test_comparison_lists_the_rows_whose_verdicts_differ(
    signed_in: Viewer, client: Any, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(
        client,
        rows=[{"topic": "AI"}, {"topic": "cats"}, {"topic": "tea"}],
        criteria=["Is it clear?"],
    )
    b_template = await client.ok(
        "POST",
        f"{P}/prompt_templates",
        json={"name": "B", "messages": [{"role": "user", "content": "Say {{topic}} ECHO_NO"}]},
    )
    a = await h.create_experiment(client, fx, "A", generate=True)
    b = await h.create_experiment(
        client, fx, "B", generate=True, prompt_template_id=b_template["id"]
    )
    await h.run_to_end(client, a)
    await h.run_to_end(client, b)
    resp, html = await signed_in.get(f"/ui/compare?a={a['id']}&b={b['id']}")
    assert resp.status == 200
    assert 'id="differing-count">3<' in html and html.count('class="pair"') == 3
    row = re.search(r'<tr data-criterion="Is it clear\?">.*?</tr>', html, re.S)
    assert row is not None
    assert "100.0%" in row.group(0) and "0.0%" in row.group(0) and "-100.0 pp" in row.group(0)
    assert "Echo: Explain AI" in html and "Echo: Say AI ECHO_NO" in html
    resp, html = await signed_in.get(f"/ui/compare?a={a['id']}&b={a['id']}")
    assert 'id="differing-count">0<' in html


# ---- isolation ----------------------------------------------------------------------------


async def test_a_session_sees_only_its_own_project(
    viewer: Viewer, client: Any, tasks_helpers: Any, other: tuple[int, dict[str, str]]
) -> None:
    mine = await finished_experiment(
        client, tasks_helpers, rows=[{"topic": "AI"}], criteria=["ok?"], name="mine-exp"
    )
    _, headers = other
    resp = await viewer.sign_in(headers["X-API-Key"])
    assert resp.status == 303
    resp, html = await viewer.get("/ui/")
    assert resp.status == 200 and "mine-exp" not in html and ">other<" in html
    template_id = mine["prompt_template"]["id"]
    for path in (
        f"/ui/experiments/{mine['id']}",
        f"/ui/experiments/{mine['id']}/events?task_id=x",
        f"/ui/compare?a={mine['id']}&b={mine['id']}",
        f"/ui/templates/{template_id}",
        f"/ui/collections/{mine['collection']['id']}",
        f"/ui/criterion-sets/{mine['criterion_set']['id']}",
    ):
        resp, html = await viewer.get(path)
        assert resp.status == 404, path
        assert "mine-exp" not in html
    _, html = await viewer.get("/ui/")
    resp, _ = await viewer.post(
        f"/ui/experiments/{mine['id']}/retry-failed", {"csrf_token": csrf_of(html)}
    )
    assert resp.status == 404


# ---- the buttons --------------------------------------------------------------------------


async def test_cancel_needs_the_csrf_token_and_revokes_the_run(
    aiohttp_client: Any, db_path: Path, tasks_helpers: Any
) -> None:
    config = ServerConfig(
        db_path=db_path, api_key=API_KEY, llm="echo", echo_latency=0.03, max_concurrency=1
    )
    api = await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        ui = Viewer(session, api.make_url("/"))
        assert (await ui.sign_in(API_KEY)).status == 303
        h = tasks_helpers
        fx = await h.make_fixture(api, rows=[{"topic": f"t{i}"} for i in range(60)])
        exp = await h.create_experiment(api, fx, generate=True)
        _, html = await ui.get(f"/ui/experiments/{exp['id']}")
        assert 'id="cancel"' in html and 'id="live"' in html and "data-stream=" in html
        for token in ({}, {"csrf_token": "forged"}):
            resp, _ = await ui.post(f"/ui/experiments/{exp['id']}/cancel", token)
            assert resp.status == 403
        assert (await api.ok("GET", f"{P}/experiments/{exp['id']}"))["generation_task_id"]
        resp, _ = await ui.post(
            f"/ui/experiments/{exp['id']}/cancel", {"csrf_token": csrf_of(html)}
        )
        assert resp.status == 303
        resp, html = await ui.get(resp.headers["Location"])
        assert re.search(r'id="status"[^>]*>REVOKED<', html) and "The run was cancelled." in html
        assert 'id="cancel"' not in html and 'id="retry-failed"' in html
        resp, _ = await ui.post(
            f"/ui/experiments/{exp['id']}/cancel", {"csrf_token": csrf_of(html)}
        )
        _, html = await ui.get(f"/ui/experiments/{exp['id']}")
        assert "has no running task to cancel" in html  # 409 shown as a message
        # retry-failed resumes what the cancel left undone
        resp, _ = await ui.post(
            f"/ui/experiments/{exp['id']}/retry-failed", {"csrf_token": csrf_of(html)}
        )
        assert resp.status == 303
        got = await api.ok("GET", f"{P}/experiments/{exp['id']}")
        assert got["generation_task_id"]
        final = await h.run_to_end(api, got, timeout=60)
        assert final["status"] == "SUCCESS"


async def test_live_progress_streams_through_the_session(
    signed_in: Viewer, client: Any, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "AI"}, {"topic": "tea"}])
    exp = await h.create_experiment(client, fx, generate=True)
    task_id = exp["generation_task_id"]
    resp = await signed_in.session.get(
        signed_in.url(f"/ui/experiments/{exp['id']}/events"),
        params={"task_id": task_id, "polling_interval": "0.1"},
    )
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    body = await asyncio.wait_for(resp.text(), 30)
    assert '"status":"SUCCESS"' in body
    resp, _ = await signed_in.get(f"/ui/experiments/{exp['id']}/events")
    assert resp.status == 400


async def test_retry_failed_regenerates_the_failed_rows(
    signed_in: Viewer, client: Any, tasks_helpers: Any
) -> None:
    exp = await finished_experiment(
        client, tasks_helpers, rows=[{"topic": "AI"}, {"topic": "ECHO_FAIL"}], criteria=["ok?"]
    )
    _, html = await signed_in.get(f"/ui/experiments/{exp['id']}")
    resp, _ = await signed_in.post(
        f"/ui/experiments/{exp['id']}/retry-failed", {"csrf_token": csrf_of(html)}
    )
    assert resp.status == 303
    _, html = await signed_in.get(f"/ui/experiments/{exp['id']}")
    assert "Retrying the failed and missing responses." in html


async def test_template_versions_and_their_difference(signed_in: Viewer, client: Any) -> None:
    body = {"name": "Explainer", "messages": [{"role": "user", "content": "Explain {{x}}."}]}
    v1 = await client.ok("POST", f"{P}/prompt_templates", json=body)
    body["messages"][0]["content"] = "Explain {{x}} with an example."
    v2 = await client.ok("POST", f"{P}/prompt_templates", json=body)
    assert v2["version"] == v1["version"] + 1
    _, html = await signed_in.get("/ui/templates")
    assert "Explainer" in html and ">2</td>" in html
    resp, html = await signed_in.get(f"/ui/templates/{v2['id']}?from={v1['id']}&to={v2['id']}")
    assert resp.status == 200
    assert '<span class="remove">-Explain {{x}}.</span>' in html
    assert '<span class="add">+Explain {{x}} with an example.</span>' in html
    resp, _ = await signed_in.get(f"/ui/templates/{v2['id']}?from=999999")
    assert resp.status == 404


# ---- pure helpers -------------------------------------------------------------------------


def test_sessions_expire_and_stay_bounded() -> None:
    now = [0.0]
    store = SessionStore(idle_seconds=10, max_age_seconds=100, max_sessions=2, clock=lambda: now[0])
    principal: Any = object()
    a = store.create("key-a", principal)
    assert store.get(a.id) is a and a.csrf_ok(a.csrf_token) and not a.csrf_ok("x")
    assert not a.csrf_ok(None) and "key-a" not in repr(a)
    now[0] = 9
    assert store.get(a.id) is a  # used: idle time restarts
    now[0] = 18
    assert store.get(a.id) is a
    now[0] = 29
    assert store.get(a.id) is None  # idle too long
    b = store.create("key-b", principal)
    for t in range(1, 12):
        now[0] = 29 + t * 9
        assert store.get(b.id) is b
    now[0] = 29 + 101
    assert store.get(b.id) is None  # too old, however busy
    c, d, e = (store.create(k, principal) for k in "cde")
    assert len(store) == 2 and store.get(c.id) is None and store.get(e.id) is e
    store.delete(e.id)
    assert store.get(e.id) is None and store.get(d.id) is d


def test_flashes_are_shown_once() -> None:
    session = Session("id", "key", object(), "token", 0.0, 0.0)  # type: ignore[arg-type]
    session.flash("ok", "done")
    assert session.take_flashes() == [("ok", "done")] and session.take_flashes() == []


def test_compare_rows_pairs_rows_and_finds_differences() -> None:
    names = {1: "clear?", 2: "short?", 3: "other?"}
    a = compare.collect(
        [
            (1, 10, 1, 0, 1, "YES"),
            (1, 10, 1, 0, 2, "YES"),
            (2, 11, 1, 0, 1, "YES"),
            (3, 12, 1, 1, None, None),  # generation failed, no rating
            (4, 13, 1, 0, 1, None),  # failed rating
            (5, 14, 1, 0, 1, "NO"),
        ],
        names.__getitem__,
    )
    b = compare.collect(
        [
            (7, 10, 1, 0, 1, "YES"),
            (7, 10, 1, 0, 3, "NO"),
            (8, 11, 1, 0, 1, "NO"),
            (9, 12, 1, 0, 1, "YES"),
            (10, 13, 1, 0, 1, "YES"),
            (11, 15, 1, 0, 1, "NO"),
        ],
        names.__getitem__,
    )
    result = compare.compare_rows(a, b, ["clear?"])
    assert (result.matched, result.only_a, result.only_b) == (4, 1, 1)
    assert [(d.key, d.criteria, d.generation) for d in result.differing] == [
        ((11, 1), frozenset({"clear?"}), False),
        ((12, 1), frozenset({"clear?"}), True),
        ((13, 1), frozenset({"clear?"}), False),
    ]


def test_present_helpers() -> None:
    assert present.percent(2 / 3) == "66.7%" and present.percent(None) == "\u2013"
    assert present.signed_points(-0.125) == "-12.5 pp" and present.signed_points(0.5) == "+50.0 pp"
    assert present.seconds(3.14159) == "3.14 s" and present.seconds(125) == "2 min 05 s"
    assert present.seconds(7260) == "2 h 01 min"
    assert present.page_numbers(1, 1) == [1]
    assert present.page_numbers(10, 20) == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert present.page_numbers(2, 4) == [1, 2, 3, 4]
    assert (
        present.response_text(
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
            ]
        )
        == "a"
    )
    assert present.variables({"n": 1, "s": "x"}) == [("n", "1"), ("s", "x")]
    lines = present.text_diff("a\nb\nc", "a\nB\nc")
    assert [(line.kind, line.text) for line in lines if line.kind != "hunk"] == [
        ("context", "a"),
        ("remove", "b"),
        ("add", "B"),
        ("context", "c"),
    ]
    assert present.text_diff("same", "same") == []


def test_bar_chart_geometry() -> None:
    chart = bar_chart([("clear?", [0.5]), ("short?", [None])])
    assert [g.bars[0].width for g in chart.groups] == [chart.bar_width / 2, 0.0]
    assert [g.bars[0].text for g in chart.groups] == ["50.0%", "\u2013"]
    two = bar_chart([("x" * 100, [1.0, 0.25])], series=["A", "B"])
    assert len(two.groups[0].bars) == 2 and two.groups[0].label.endswith("\u2026")
    assert two.groups[0].title == "x" * 100
