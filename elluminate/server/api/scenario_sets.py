"""Scenario sets, their fields and scenarios (CONTRACT.md 4.11): the HTTP handlers.

The repository is :mod:`..store.scenarios`. Bodies that do not fit the wire structs answer
422 (an empty goal included: ``ScenarioIn`` strips and requires it); rule violations
(names, field names, unknown field keys) answer 400 with a message that says what to fix,
and nothing is stored. Each request's writes run in one transaction that first locks the set.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from elluminate.schemas import (
    CreateScenarioSetRequest,
    Scenario,
    ScenarioBatchRequest,
    ScenarioField,
    ScenarioFieldRequest,
    ScenarioIn,
    ScenarioSet,
    UpdateScenarioSetRequest,
)

from ..store import scenarios as store
from ..store.common import like_escaped
from ..store.connection import Connection
from ..store.entries import entries_by_ids, live_rows_query
from .errors import bad_request, unprocessable
from .http import (
    check_name,
    get_db,
    json_response,
    no_content,
    page_response,
    path_id,
    project_id,
    query_str,
    read_json,
)
from .operations import operation

log = logging.getLogger("elluminate.server.api.scenario_sets")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/scenario-sets"
ONE = BASE + r"/{scenario_set_id:\d+}"
FIELDS = ONE + "/fields"
FIELD = FIELDS + r"/{field_id:\d+}"
SCENARIOS = ONE + "/scenarios"
SCENARIO = SCENARIOS + r"/{scenario_id:\d+}"


def _set_id(request: web.Request) -> int:
    return path_id(request, "scenario_set_id", "scenario set")


def _rules(exc: store.ScenarioRuleError) -> Exception:
    return bad_request(str(exc))


@contextlib.asynccontextmanager
async def _writable_set(
    request: web.Request, set_id: int
) -> AsyncIterator[tuple[Connection, Any]]:
    """A transaction that changes a scenario set: its row locked, a built-in set refused,
    and a broken set rule answered 400 (nothing written)."""
    try:
        async with get_db(request).begin() as conn:
            row = await store.set_row(conn, project_id(request), set_id, lock=True)
            store.check_writable(row)
            yield conn, row
    except store.ScenarioRuleError as exc:
        raise _rules(exc) from None


# ---- scenario sets ------------------------------------------------------------------------


@routes.get(BASE)
@operation(
    response=ScenarioSet,
    paginated=True,
    query={"name_search": (str, "part of the name (case-insensitive)")},
)
async def list_scenario_sets(request: web.Request) -> web.Response:
    """Paginated; ``name_search`` keeps sets whose name contains it (ignoring case)."""
    pid = project_id(request)
    params: dict[str, Any] = {"pid": pid}
    search = query_str(request, "name_search")
    if search is not None and search.strip() and search.strip().lower() not in ("none", "null"):
        params["search"] = like_escaped(search.strip().lower())
    async with get_db(request).connect() as conn:

        async def build(rows: list[Any]) -> list[ScenarioSet]:
            return await store.set_structs(conn, rows)

        return await page_response(
            request, conn, store.list_statement("search" in params), params, build
        )


@routes.get(ONE)
@operation(response=ScenarioSet)
async def get_scenario_set(request: web.Request) -> web.Response:
    """One scenario set with its declared fields and scenario count."""
    set_id = _set_id(request)
    async with get_db(request).connect() as conn:
        return json_response(await store.set_struct(conn, project_id(request), set_id))


@routes.post(BASE)
@operation(request=CreateScenarioSetRequest, response=ScenarioSet, status=201, errors=(400,))
async def create_scenario_set(request: web.Request) -> web.Response:
    """Create a set (a name is generated when none is given) with its declared fields."""
    body, _ = await read_json(
        request, CreateScenarioSetRequest, defaults={"description": "", "fields": []}
    )
    name = None if body.name is None else check_name(body.name)
    db, pid = get_db(request), project_id(request)
    try:
        fields = store.check_field_names(body.fields or [])
        async with db.begin() as conn:
            if name is None:
                name = await store.unused_name(conn, pid)
            else:
                await store.check_name_free(conn, pid, name)
            set_id = await store.create_set(
                conn, pid, name=name, description=body.description or "", fields=fields
            )
    except store.ScenarioRuleError as exc:
        raise _rules(exc) from None
    log.debug("created scenario set %r (id %d, fields %s)", name, set_id, fields)
    async with db.connect() as conn:
        return json_response(await store.set_struct(conn, pid, set_id), status=201)


@routes.put(ONE)
@operation(request=UpdateScenarioSetRequest, response=ScenarioSet, errors=(400,))
async def update_scenario_set(request: web.Request) -> web.Response:
    """Rename or describe a set (keys left out or null are kept)."""
    body, _ = await read_json(request, UpdateScenarioSetRequest)
    set_id = _set_id(request)
    db, pid = get_db(request), project_id(request)
    try:
        async with db.begin() as conn:
            row = await store.set_row(conn, pid, set_id, lock=True)
            store.check_writable(row)
            name = row["name"] if body.name is None else check_name(body.name)
            if name != row["name"]:
                await store.check_name_free(conn, pid, name, exclude_id=set_id)
            description = row["description"] if body.description is None else body.description
            await store.update_set(conn, row, name=name, description=description)
    except store.ScenarioRuleError as exc:
        raise _rules(exc) from None
    async with db.connect() as conn:
        return json_response(await store.set_struct(conn, pid, set_id))


@routes.delete(ONE)
@operation(status=204, errors=(400,))
async def delete_scenario_set(request: web.Request) -> web.Response:
    """Delete a set with its fields and scenarios (hidden instead when experiments used it)."""
    set_id = _set_id(request)
    try:
        async with get_db(request).begin() as conn:
            row = await store.set_row(conn, project_id(request), set_id, lock=True)
            if row["is_platform_builtin"]:
                store.check_writable(row)
            await store.delete_set(conn, row)
    except store.ScenarioRuleError as exc:
        raise _rules(exc) from None
    return no_content()


# ---- fields ---------------------------------------------------------------------------------


def _field_name(value: Any) -> str:
    if not isinstance(value, str):
        raise unprocessable("name must be a string")
    return value


@routes.post(FIELDS)
@operation(request=ScenarioFieldRequest, response=ScenarioField, status=201, errors=(400,))
async def add_field(request: web.Request) -> web.Response:
    """Declare a field; every existing scenario gets its ``default_value``."""
    body, _ = await read_json(request, ScenarioFieldRequest)
    set_id = _set_id(request)
    async with _writable_set(request, set_id) as (conn, row):
        column = await store.add_field(conn, row, _field_name(body.name), body.default_value or "")
    return json_response(store.field_struct(column), status=201)


@routes.put(FIELD)
@operation(request=ScenarioFieldRequest, response=ScenarioField, errors=(400,))
async def rename_field(request: web.Request) -> web.Response:
    """Rename a declared field (the key is renamed in every scenario)."""
    body, _ = await read_json(request, ScenarioFieldRequest)
    set_id = _set_id(request)
    field_id = path_id(request, "field_id", "scenario field")
    async with _writable_set(request, set_id) as (conn, row):
        column = await store.rename_field(conn, row, field_id, _field_name(body.name))
    return json_response(store.field_struct(column))


@routes.delete(FIELD)
@operation(status=204, errors=(400,))
async def delete_field(request: web.Request) -> web.Response:
    """Drop a declared field (its key leaves every scenario)."""
    set_id = _set_id(request)
    field_id = path_id(request, "field_id", "scenario field")
    async with _writable_set(request, set_id) as (conn, row):
        await store.delete_field(conn, row, field_id)
    return no_content()


# ---- scenarios ------------------------------------------------------------------------------


@routes.get(SCENARIOS)
@operation(response=Scenario, paginated=True)
async def list_scenarios(request: web.Request) -> web.Response:
    """The set's scenarios, paginated, in creation order."""
    set_id = _set_id(request)
    async with get_db(request).connect() as conn:
        row = await store.set_row(conn, project_id(request), set_id)
        stmt, params = live_rows_query(row["collection_id"])

        async def build(rows: list[Any]) -> list[Scenario]:
            return [store.scenario_struct(r) for r in rows]

        return await page_response(request, conn, stmt, params, build)


@routes.get(SCENARIO)
@operation(response=Scenario)
async def get_scenario(request: web.Request) -> web.Response:
    """One scenario (every declared field in ``field_values``)."""
    set_id = _set_id(request)
    scenario_id = path_id(request, "scenario_id", "scenario")
    async with get_db(request).connect() as conn:
        row = await store.set_row(conn, project_id(request), set_id)
        return json_response(
            store.scenario_struct(await store.scenario_row(conn, row, scenario_id))
        )


def _values(item: ScenarioIn, fields: list[str], where: str = "") -> dict[str, Any]:
    try:
        return store.scenario_values(
            item.goal, item.expected_conversation_outcome, item.field_values or {}, fields
        )
    except store.ScenarioRuleError as exc:
        raise bad_request(f"{where}{exc}; nothing was stored") from None


@routes.post(SCENARIOS)
@operation(request=ScenarioIn, response=Scenario, status=201, errors=(400,))
async def add_scenario(request: web.Request) -> web.Response:
    """Add one scenario (``goal`` and ``expected_conversation_outcome`` are stripped)."""
    body, _ = await read_json(request, ScenarioIn, defaults={"field_values": {}})
    set_id = _set_id(request)
    db, pid = get_db(request), project_id(request)
    try:
        async with db.begin() as conn:
            row = await store.set_row(conn, pid, set_id, lock=True)
            store.check_writable(row)
            values = _values(body, await store.field_names(conn, row))
            (scenario_id,) = await store.add_scenarios(conn, row, [values])
            created = await store.scenario_row(conn, row, scenario_id)
    except store.ScenarioRuleError as exc:
        raise _rules(exc) from None
    return json_response(store.scenario_struct(created), status=201)


@routes.post(SCENARIOS + "/batch")
@operation(request=ScenarioBatchRequest, response=list[Scenario], status=201, errors=(400,))
async def add_scenarios(request: web.Request) -> web.Response:
    """Add many scenarios; the answer lists only the new ones. Every item is checked first
    (nothing is stored when one is wrong); ``skip_existing`` skips scenarios equal to a
    stored one (declared fields left out count with their defaults) or to an earlier item."""
    body, _ = await read_json(request, ScenarioBatchRequest, defaults={"skip_existing": False})
    set_id = _set_id(request)
    db, pid = get_db(request), project_id(request)
    try:
        async with db.begin() as conn:
            row = await store.set_row(conn, pid, set_id, lock=True)
            if not body.scenarios:
                return json_response([], status=201)
            store.check_writable(row)
            fields = await store.field_names(conn, row)
            rows = [
                _values(item, fields, f"scenarios[{i}]: ") for i, item in enumerate(body.scenarios)
            ]
            ids = await store.add_scenarios(conn, row, rows, skip_existing=body.skip_existing)
            created = await entries_by_ids(conn, row["collection_id"], ids)
    except store.ScenarioRuleError as exc:
        raise _rules(exc) from None
    log.debug("scenario set %d: %d of %d scenarios added", set_id, len(ids), len(body.scenarios))
    return json_response([store.scenario_struct(r) for r in created], status=201)


@routes.put(SCENARIO)
@operation(request=ScenarioIn, response=Scenario, errors=(400,))
async def update_scenario(request: web.Request) -> web.Response:
    """Replace a scenario (declared fields left out reset to their default)."""
    body, _ = await read_json(request, ScenarioIn, defaults={"field_values": {}})
    set_id = _set_id(request)
    scenario_id = path_id(request, "scenario_id", "scenario")
    async with _writable_set(request, set_id) as (conn, row):
        values = _values(body, await store.field_names(conn, row))
        await store.replace_scenario(conn, row, scenario_id, values)
        updated = await store.scenario_row(conn, row, scenario_id)
    return json_response(store.scenario_struct(updated))


@routes.delete(SCENARIO)
@operation(status=204, errors=(400,))
async def delete_scenario(request: web.Request) -> web.Response:
    """Delete a scenario (hidden instead when an experiment used it)."""
    set_id = _set_id(request)
    scenario_id = path_id(request, "scenario_id", "scenario")
    async with _writable_set(request, set_id) as (conn, row):
        await store.delete_scenario(conn, row, scenario_id)
    return no_content()
