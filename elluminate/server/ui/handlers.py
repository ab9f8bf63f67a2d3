"""The viewer's pages and actions (aiohttp handlers of the ``/ui`` sub-application).

Every handler but sign-in and the assets runs signed in: the middleware in
:mod:`elluminate.server.ui` has checked the session (and, for a POST, its CSRF token) and
put the session and the project's :class:`~elluminate.server.store.projects.Principal` on the
request. Handlers read through :mod:`elluminate.server.ui.data` only.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any, cast

import jinja2
from aiohttp import web
from yarl import URL

from ..api.auth import PRINCIPAL_KEY
from ..api.errors import HTTPError
from ..api.http import DB_KEY, ENGINE_KEY
from ..api.sse import stream_task
from ..store.ui_queries import VERDICTS, Verdict
from . import data
from .charts import bar_chart
from .render import render
from .security import CSRF_FIELD
from .sessions import COOKIE_NAME, LOGIN_COOKIE_NAME, Session, SessionStore, new_token

log = logging.getLogger("elluminate.server.ui")

routes = web.RouteTableDef()

EXPERIMENTS_PER_PAGE = 25
RESPONSES_PER_PAGE = 50
MAX_RESPONSES_PER_PAGE = 200
ENTRIES_PER_PAGE = 50
DIFFERING_ROWS_PER_PAGE = 20
MAX_KEY_LENGTH = 1024


@dataclass
class UiState:
    """What the viewer keeps per server: its templates and its sessions."""

    env: jinja2.Environment
    sessions: SessionStore
    #: the cookie path (the sub-application's prefix)
    cookie_path: str


if hasattr(web, "RequestKey"):  # aiohttp >= 3.13
    SESSION_KEY: web.RequestKey[Session] = web.RequestKey("elluminate_ui_session", Session)
else:  # pragma: no cover - older aiohttp: a plain string key
    SESSION_KEY = cast("web.RequestKey[Session]", "elluminate_ui_session")
STATE_KEY: web.AppKey[UiState] = web.AppKey("elluminate_ui_state", UiState)


# ---- helpers ------------------------------------------------------------------------------


def state(request: web.Request) -> UiState:
    return request.app[STATE_KEY]


def source(request: web.Request) -> data.Source:
    """The signed-in project's data source."""
    return data.Source(
        request.config_dict[DB_KEY],
        request.config_dict[ENGINE_KEY],
        request[PRINCIPAL_KEY].project_id,
    )


def redirect(location: str, status: int = 303) -> web.Response:
    """A redirect answer (303: the browser follows with a GET)."""
    return web.Response(status=status, headers={"Location": location})


def url_for(request: web.Request, name: str, **parts: Any) -> URL:
    return request.app.router[name].url_for(**{k: str(v) for k, v in parts.items()})


def query_int(request: web.Request, name: str, *, minimum: int = 1) -> int | None:
    """An optional integer query parameter (400 with a message for anything else)."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise HTTPError(400, f"{name} must be a whole number of at least {minimum}, not {raw!r}")
    return value


def page_of(request: web.Request) -> int:
    return query_int(request, "page") or 1


def path_int(request: web.Request, name: str) -> int:
    return int(request.match_info[name])  # the route's pattern admits digits only


async def page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render a signed-in page: the project, the session's form token and messages added."""
    session = request[SESSION_KEY]
    project = await data.project(source(request))
    full = {
        "project": project,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf_token,
        "flashes": session.take_flashes(),
        **context,
    }
    return render(state(request).env, request, template, full, status=status)


def safe_next(request: web.Request, value: str | None) -> str:
    """Where to go after sign-in: a path of this viewer only (never another site)."""
    home = str(url_for(request, "experiments"))
    if not value:
        return home
    target = URL(value)
    if target.is_absolute() or target.scheme or not target.path.startswith(home):
        return home
    if value.startswith("//") or "\\" in value:
        return home
    return str(target)


# ---- sign-in ------------------------------------------------------------------------------


def _login_page(
    request: web.Request, *, error: str | None = None, status: int = 200, next_url: str = ""
) -> web.Response:
    token = new_token()
    response = render(
        state(request).env,
        request,
        "login.html",
        {
            "error": error,
            "csrf_field": CSRF_FIELD,
            "csrf_token": token,
            "next": next_url,
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE_NAME,
        token,
        httponly=True,
        samesite="Strict",
        path=state(request).cookie_path,
        secure=request.secure,
    )
    return response


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.Response:
    """The sign-in form (a signed-in browser goes straight to the experiments)."""
    next_url = safe_next(request, request.query.get("next"))
    sessions = state(request).sessions
    if sessions.get(request.cookies.get(COOKIE_NAME)) is not None:
        return redirect(next_url)
    return _login_page(request, next_url=next_url)


@routes.post("/login", name="login_submit")
async def login_submit(request: web.Request) -> web.Response:
    """Check the API key with the API's own check; on success start a session."""
    form = await request.post()
    next_url = safe_next(request, str(form.get("next") or ""))
    sent, expected = form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE_NAME)
    if not (
        isinstance(sent, str) and expected and hmac.compare_digest(sent.encode(), expected.encode())
    ):
        return _login_page(
            request,
            error="The sign-in form expired or came from another site; please sign in again.",
            status=403,
            next_url=next_url,
        )
    key = form.get("api_key")
    key = key.strip() if isinstance(key, str) else ""
    if not key:
        return _login_page(request, error="Enter a project API key.", status=400, next_url=next_url)
    principal = None
    if len(key) <= MAX_KEY_LENGTH:
        principal = await data.authenticate_key(request.config_dict[DB_KEY], key)
    if principal is None:
        log.info("viewer sign-in with an invalid API key")
        return _login_page(
            request,
            error="Invalid API key: use a project API key of this server.",
            status=401,
            next_url=next_url,
        )
    ui = state(request)
    ui.sessions.delete(request.cookies.get(COOKIE_NAME))
    session = ui.sessions.create(key, principal)
    log.info("viewer sign-in to project %d", principal.project_id)
    response = redirect(next_url)
    response.set_cookie(
        COOKIE_NAME,
        session.id,
        httponly=True,
        samesite="Lax",
        path=ui.cookie_path,
        secure=request.secure,
    )
    response.del_cookie(LOGIN_COOKIE_NAME, path=ui.cookie_path)
    return response


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.Response:
    """End the session (server-side) and drop its cookie."""
    ui = state(request)
    ui.sessions.delete(request[SESSION_KEY].id)
    response = redirect(str(url_for(request, "login")))
    response.del_cookie(COOKIE_NAME, path=ui.cookie_path)
    return response


# ---- experiments --------------------------------------------------------------------------


@routes.get("/", name="experiments")
async def experiments(request: web.Request) -> web.Response:
    """The experiment list: filters by name, template and collection; paginated."""
    filters = data.ExperimentFilters(
        name=request.query.get("name", "").strip(),
        template=request.query.get("template", "").strip(),
        collection_id=query_int(request, "collection"),
    )
    found, options = await data.experiment_list(
        source(request), filters, page_of(request), EXPERIMENTS_PER_PAGE
    )
    return await page(
        request,
        "experiments.html",
        {"page": found, "filters": filters, "options": options, "nav": "experiments"},
    )


def _response_filters(request: web.Request, detail: data.ExperimentDetail) -> data.ResponseFilters:
    criterion_id = query_int(request, "criterion")
    if criterion_id is not None and criterion_id not in {c.id for c in detail.criteria}:
        raise HTTPError(400, f"criterion {criterion_id} is not a criterion of this experiment")
    raw = request.query.get("verdict", "").strip().lower()
    verdict: Verdict | None = None
    for known in VERDICTS:
        if raw == known:
            verdict = known
    if raw and verdict is None:
        raise HTTPError(400, f"verdict must be one of {', '.join(VERDICTS)}, not {raw!r}")
    return data.ResponseFilters(
        criterion_id=criterion_id,
        verdict=verdict,
        failed_only=request.query.get("failed", "") in ("1", "on", "true"),
    )


@routes.get(r"/experiments/{experiment_id:\d+}", name="experiment")
async def experiment(request: web.Request) -> web.Response:
    """One experiment: results per criterion, totals, live progress, the responses."""
    experiment_id = path_int(request, "experiment_id")
    src = source(request)
    detail = await data.experiment_detail(src, experiment_id)
    filters = _response_filters(request, detail)
    size = query_int(request, "size") or RESPONSES_PER_PAGE
    if size > MAX_RESPONSES_PER_PAGE:
        raise HTTPError(400, f"size must be at most {MAX_RESPONSES_PER_PAGE}, not {size}")
    responses = await data.response_page(src, experiment_id, filters, page_of(request), size)
    others = [c for c in await data.experiment_choices(src) if c[0] != experiment_id]
    chart = bar_chart([(c.text, [c.pass_rate]) for c in detail.criteria])
    events = None
    if detail.progress is not None:
        events = str(
            url_for(request, "experiment_events", experiment_id=experiment_id).with_query(
                task_id=detail.progress.task_id
            )
        )
    return await page(
        request,
        "experiment.html",
        {
            "detail": detail,
            "responses": responses,
            "filters": filters,
            "verdicts": VERDICTS,
            "chart": chart,
            "events_url": events,
            "others": others,
            "nav": "experiments",
        },
    )


@routes.get(r"/experiments/{experiment_id:\d+}/events", name="experiment_events")
async def experiment_events(request: web.Request) -> web.StreamResponse:
    """The run's progress as Server-Sent Events: the API's generation stream, through the
    session (an ``EventSource`` cannot send an API key)."""
    experiment_id = path_int(request, "experiment_id")
    await data.experiment_exists(source(request), experiment_id)
    task_id = request.query.get("task_id", "").strip()
    if not task_id:
        raise HTTPError(400, "task_id is required")
    return await stream_task(request, task_id, "experiment", experiment_id)


@routes.post(r"/experiments/{experiment_id:\d+}/cancel", name="experiment_cancel")
async def experiment_cancel(request: web.Request) -> web.Response:
    """Cancel the run (the API's cancel), then back to the experiment."""
    experiment_id = path_int(request, "experiment_id")
    session = request[SESSION_KEY]
    try:
        await data.cancel_experiment(source(request), experiment_id)
        session.flash("ok", "The run was cancelled.")
    except HTTPError as exc:
        if exc.status != 409:
            raise
        session.flash("error", exc.detail)
    return redirect(str(url_for(request, "experiment", experiment_id=experiment_id)))


@routes.post(r"/experiments/{experiment_id:\d+}/retry-failed", name="experiment_retry")
async def experiment_retry(request: web.Request) -> web.Response:
    """Retry failed and missing responses (the API's retry-failed), then back."""
    experiment_id = path_int(request, "experiment_id")
    session = request[SESSION_KEY]
    try:
        task_id = await data.retry_failed(source(request), experiment_id)
        session.flash(
            "ok",
            "Retrying the failed and missing responses."
            if task_id
            else "Nothing to retry: every response and rating is there.",
        )
    except HTTPError as exc:
        if exc.status != 409:
            raise
        session.flash("error", exc.detail)
    return redirect(str(url_for(request, "experiment", experiment_id=experiment_id)))


@routes.get("/compare", name="compare")
async def compare(request: web.Request) -> web.Response:
    """Two experiments side by side (pick them with ``a`` and ``b``)."""
    src = source(request)
    choices = await data.experiment_choices(src)
    a_id, b_id = query_int(request, "a"), query_int(request, "b")
    comparison = None
    chart = None
    if a_id is not None and b_id is not None:
        comparison = await data.compare(src, a_id, b_id, page_of(request), DIFFERING_ROWS_PER_PAGE)
        chart = bar_chart(
            [(c.text, [c.a, c.b]) for c in comparison.criteria],
            series=[comparison.a.experiment.name, comparison.b.experiment.name],
        )
    return await page(
        request,
        "compare.html",
        {
            "choices": choices,
            "a_id": a_id,
            "b_id": b_id,
            "comparison": comparison,
            "chart": chart,
            "nav": "compare",
        },
    )


# ---- templates, collections, criterion sets -----------------------------------------------


@routes.get("/templates", name="templates")
async def templates(request: web.Request) -> web.Response:
    names = await data.template_list(source(request))
    return await page(request, "templates.html", {"names": names, "nav": "templates"})


@routes.get(r"/templates/{template_id:\d+}", name="template")
async def template(request: web.Request) -> web.Response:
    """A template version, all versions of its name, and a difference of two versions."""
    detail = await data.template_detail(
        source(request),
        path_int(request, "template_id"),
        query_int(request, "from"),
        query_int(request, "to"),
    )
    return await page(request, "template.html", {"detail": detail, "nav": "templates"})


@routes.get("/collections", name="collections")
async def collections(request: web.Request) -> web.Response:
    items = await data.collection_list(source(request))
    return await page(request, "collections.html", {"items": items, "nav": "collections"})


@routes.get(r"/collections/{collection_id:\d+}", name="collection")
async def collection(request: web.Request) -> web.Response:
    detail = await data.collection_detail(
        source(request), path_int(request, "collection_id"), page_of(request), ENTRIES_PER_PAGE
    )
    return await page(request, "collection.html", {"detail": detail, "nav": "collections"})


@routes.get("/criterion-sets", name="criterion_sets")
async def criterion_sets(request: web.Request) -> web.Response:
    items = await data.criterion_set_list(source(request))
    return await page(request, "criterion_sets.html", {"items": items, "nav": "criterion_sets"})


@routes.get(r"/criterion-sets/{set_id:\d+}", name="criterion_set")
async def criterion_set(request: web.Request) -> web.Response:
    detail = await data.criterion_set_detail(source(request), path_int(request, "set_id"))
    return await page(request, "criterion_set.html", {"detail": detail, "nav": "criterion_sets"})


async def not_found(request: web.Request) -> web.Response:
    """Any other path under the viewer (registered last)."""
    raise HTTPError(404, f"no page at {request.path}")


async def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """An error answer as a page (with the navigation when signed in)."""
    context = {"status": status, "message": message, "nav": ""}
    if SESSION_KEY in request and PRINCIPAL_KEY in request:
        return await page(request, "error.html", context, status=status)
    return render(
        state(request).env,
        request,
        "error.html",
        context,
        status=status,
    )


__all__ = ["SESSION_KEY", "STATE_KEY", "UiState", "error_page", "not_found", "routes"]
