"""Collections and their entries (CONTRACT.md 4.2, 4.3): the HTTP handlers.

The repositories are :mod:`..store.collections`, :mod:`..store.columns` (columns and the
stored form of rows: values coerced to the column type, a row key that is not a column yet
adds a TEXT column) and :mod:`..store.entries`. Each request's writes run in one transaction
that first locks the collection row, so writers of one collection take turns on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from elluminate.schemas import (
    ColumnTypeEnum,
    CreateCollectionRequest,
    CreateEntryRequest,
    UpdateCollectionRequest,
    UpdateEntryRequest,
)

from ..store import collections as store
from ..store import entries
from ..store.columns import ColumnSpec, InvalidCell, InvalidColumns
from ..store.common import live_row
from ..store.database import loads
from ..store.views import Views
from .collection_rules import cell_rules, check_collection_name, check_collection_rows
from .errors import HTTPError, bad_gateway, bad_request, conflict, not_found, unprocessable
from .http import (
    check_name,
    check_no_nul,
    get_db,
    get_providers,
    json_response,
    json_type_name,
    no_content,
    page_response,
    path_id,
    project_id,
    query_bool,
    query_int,
    query_str,
    read_json,
)
from .sse import get_engine

log = logging.getLogger("elluminate.server.api.collections")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/collections"
ONE = BASE + r"/{collection_id:\d+}"
ENTRIES = ONE + "/entries"
ENTRY = ENTRIES + r"/{entry_id:\d+}"

_line_decoder = msgspec.json.Decoder()


# ---- request checks ----------------------------------------------------------------------


def parse_columns(raw: list[Any] | None, *, what: str = "columns") -> list[ColumnSpec]:
    """Validate requested columns (a bare string is a TEXT column of that name)."""
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(raw or []):
        where = f"{what}[{index}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise unprocessable(f"{where} must be a column object or a column name")
        name = check_name(item.get("name"), what=f"{where}.name")
        if name in seen:
            raise unprocessable(f"{where}: duplicate column name {name!r}")
        seen.add(name)
        column_type: ColumnTypeEnum | None = None
        if item.get("column_type") is not None:
            try:
                column_type = ColumnTypeEnum(item["column_type"])
            except ValueError:
                allowed = ", ".join(t.value for t in ColumnTypeEnum)
                raise unprocessable(
                    f"{where}.column_type must be one of {allowed}, got {item['column_type']!r}"
                ) from None
        default = item.get("default_value")
        if default is not None and not isinstance(default, str):
            raise unprocessable(f"{where}.default_value must be a string")
        values = item.get("categorical_values")
        if values is not None and (
            not isinstance(values, list) or not all(isinstance(v, str) for v in values)
        ):
            raise unprocessable(f"{where}.categorical_values must be a list of strings")
        column_id = item.get("id")
        if column_id is not None and (
            not isinstance(column_id, int) or isinstance(column_id, bool)
        ):
            raise unprocessable(f"{where}.id must be an integer")
        specs.append(ColumnSpec(name, column_type, default, values, column_id))
    return specs


def _check_keys(rows: Iterable[Mapping[str, Any]]) -> None:
    """422 for the first row key that cannot be a column name (keys become columns)."""
    for name in dict.fromkeys(k for values in rows for k in values):
        check_name(name, what=f"column name {name[:40]!r}")


def _writable(collection: Any) -> None:
    if collection["read_only"]:
        raise bad_request(
            f"collection {collection['name']!r} is read-only; set read_only=false with "
            f"PUT .../collections/{collection['id']} to change its entries"
        )


def _check_row(values: Any, what: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise unprocessable(f"{what} must be a JSON object (column name -> value)")
    return values


def _name_conflict(exc: store.NameTaken) -> HTTPError:
    return conflict(str(exc), collection_id=exc.existing_id)


# ---- collections -----------------------------------------------------------------------


@routes.get(BASE)
async def list_collections(request: web.Request) -> web.Response:
    """Paginated; ``name`` (exact) and ``compatible_prompt_template_id`` filters."""
    pid = project_id(request)
    name = query_str(request, "name")
    template_id = query_int(request, "compatible_prompt_template_id")
    async with get_db(request).connect() as conn:
        placeholders: list[str] | None = None
        if template_id is not None:
            template = await live_row(conn, "prompt_templates", "prompt template", pid, template_id)
            placeholders = loads(template["placeholders"])
        stmt, params = store.list_parameters(
            pid, name=None if name is None else name.strip(), placeholders=placeholders
        )
        views = Views(conn, pid)

        async def build(rows: list[Any]) -> list[Any]:
            return [await views.collection_row(r) for r in rows]

        return await page_response(request, conn, stmt, params, build)


@routes.get(ONE)
async def get_collection(request: web.Request) -> web.Response:
    """The collection with all its entries inline."""
    collection_id = path_id(request, "collection_id", "collection")
    async with get_db(request).connect() as conn:
        collection = await Views(conn, project_id(request)).collection_with_entries(collection_id)
    return json_response(collection)


def _prepare_collection_body(data: dict[str, Any]) -> None:
    columns = data.get("columns")
    if isinstance(columns, list):
        data["columns"] = [{"name": c} if isinstance(c, str) else c for c in columns]


@routes.post(BASE)
async def create_collection(request: web.Request) -> web.Response:
    """Create a collection (409 on a duplicate name) with optional columns and rows."""
    body, _ = await read_json(
        request,
        CreateCollectionRequest,
        defaults={"description": "", "read_only": False, "collection_type": "STANDARD"},
        prepare=_prepare_collection_body,
    )
    name = check_name(body.name)
    specs = parse_columns(body.columns)
    rows = [(_check_row(v, f"variables[{i}]"), None) for i, v in enumerate(body.variables or [])]
    db, pid = get_db(request), project_id(request)
    async with db.begin() as conn:
        await check_collection_name(conn, pid, name)
        try:
            collection_id = await store.create_collection(
                conn,
                pid,
                name=name,
                description=body.description or "",
                read_only=body.read_only,
                collection_type=body.collection_type.value,
                environment_config=body.environment_config,
                columns=specs,
            )
        except store.NameTaken as exc:
            raise _name_conflict(exc) from None
        if rows:
            _check_keys(values for values, _ in rows)
            collection = await store.collection_row(conn, pid, collection_id)
            async with cell_rules():
                await entries.insert_entries(conn, collection, rows)
        await check_collection_rows(conn, pid, collection_id)
    log.debug("created collection %r (id %d, %d rows)", name, collection_id, len(rows))
    async with db.connect() as conn:
        created = await Views(conn, pid).collection_with_entries(collection_id)
    return json_response(created, status=201)


@routes.put(ONE)
async def update_collection(request: web.Request) -> web.Response:
    """Rename, describe, toggle read_only, set environment_config, or reshape the columns.

    ``columns`` is the desired final list: missing columns are dropped, new ones created,
    existing ones (matched by ``id``, else by name) renamed/retyped and reordered.
    """
    body, raw = await read_json(request, UpdateCollectionRequest, prepare=_prepare_collection_body)
    collection_id = path_id(request, "collection_id", "collection")
    name = check_name(body.name)
    specs = None if body.columns is None else parse_columns(body.columns)
    env = raw.get("environment_config")
    if env is not None and not isinstance(env, dict):
        raise unprocessable("environment_config must be a JSON object or null")
    db, pid = get_db(request), project_id(request)
    async with db.begin() as conn:
        collection = await store.collection_row(conn, pid, collection_id, lock=True)
        await check_collection_name(conn, pid, name, current=collection["name"])
        try:
            await store.update_collection(
                conn,
                collection,
                name=name,
                description=body.description,
                read_only=body.read_only,
                set_environment="environment_config" in raw,
                environment_config=env,
                columns=specs,
            )
        except store.NameTaken as exc:
            raise _name_conflict(exc) from None
        except InvalidColumns as exc:
            raise unprocessable(str(exc)) from None
        except InvalidCell as exc:
            raise bad_request(f"{exc}; change the values first, nothing was stored") from None
        await check_collection_rows(conn, pid, collection_id)
    async with db.connect() as conn:
        updated = await Views(conn, pid).collection(collection_id)
    return json_response(updated)


@routes.delete(ONE)
async def delete_collection(request: web.Request) -> web.Response:
    """Delete a collection (hidden instead when experiments still use its rows)."""
    collection_id = path_id(request, "collection_id", "collection")
    async with get_db(request).begin() as conn:
        await store.collection_row(conn, project_id(request), collection_id, lock=True)
        await store.delete_collection(conn, collection_id)
    return no_content()


# ---- entries ---------------------------------------------------------------------------


@routes.get(ENTRIES)
async def list_entries(request: web.Request) -> web.Response:
    collection_id = path_id(request, "collection_id", "collection")
    pid = project_id(request)
    async with get_db(request).connect() as conn:
        views = Views(conn, pid)
        await views.collection(collection_id)
        stmt, params = entries.live_rows_query(collection_id)

        async def build(rows: list[Any]) -> list[Any]:
            return [await views.template_variables_row(r) for r in rows]

        return await page_response(request, conn, stmt, params, build)


@routes.get(ENTRY)
async def get_entry(request: web.Request) -> web.Response:
    collection_id = path_id(request, "collection_id", "collection")
    entry_id = path_id(request, "entry_id", "collection entry")
    async with get_db(request).connect() as conn:
        views = Views(conn, project_id(request))
        entry = await views.template_variables(entry_id, collection_id=collection_id)
    return json_response(entry)


async def _generate_row(
    request: web.Request, template: Any, existing_rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """A new row for ``template``'s placeholders, unlike ``existing_rows`` (the newest)."""
    placeholders: list[str] = loads(template["placeholders"])
    if not placeholders:
        raise unprocessable(
            f"prompt template {template['id']} has no {{{{placeholders}}}}: there is nothing "
            "to generate; send input_values instead"
        )
    try:
        from ..evaluation import prompts
        from ..evaluation.providers import ProviderError

        provider = get_providers(request).default()
    except (ImportError, ValueError) as exc:
        raise HTTPError(503, f"the server's LLM provider is not available: {exc}") from None
    existing = [
        {k: str(v) for k, v in values.items() if k in placeholders} for values in existing_rows
    ]
    try:
        values = await get_engine(request).llm(  # under the LLM call limit, as tasks are
            lambda: prompts.generate_test_case(
                provider, loads(template["messages"]), placeholders, existing=existing
            )
        )
    except ProviderError as exc:
        raise bad_gateway(f"test case generation failed: {exc}") from None
    return dict(values)


@routes.post(ENTRIES)
async def create_entry(request: web.Request) -> web.Response:
    """Add one row: ``input_values`` as given, or generated for ``prompt_template_id``."""
    body, _ = await read_json(request, CreateEntryRequest)
    collection_id = path_id(request, "collection_id", "collection")
    if (body.input_values is None) == (body.prompt_template_id is None):
        raise unprocessable(
            "give exactly one of input_values (a row to add) or prompt_template_id "
            "(generate a row for that template)"
        )
    db, pid = get_db(request), project_id(request)
    values = body.input_values
    template: Any = None
    recent: list[dict[str, Any]] = []
    async with db.connect() as conn:
        _writable(await store.collection_row(conn, pid, collection_id))
        if body.prompt_template_id is not None:
            template = await live_row(
                conn, "prompt_templates", "prompt template", pid, body.prompt_template_id
            )
            recent = await entries.recent_input_values(conn, collection_id)
    if template is not None:
        values = await _generate_row(request, template, recent)  # no transaction open
    assert values is not None
    async with db.begin() as conn:
        collection = await store.collection_row(conn, pid, collection_id, lock=True)
        _writable(collection)  # it may have changed during the generation
        _check_keys([values])
        async with cell_rules():
            (entry_id,) = await entries.insert_entries(
                conn, collection, [(values, body.environment_config)]
            )
        await check_collection_rows(conn, pid, collection_id)
    async with db.connect() as conn:
        entry = await Views(conn, pid).template_variables(entry_id)
    return json_response(entry, status=201)


@routes.put(ENTRY)
async def update_entry(request: web.Request) -> web.Response:
    """Replace a row's values (and its environment_config when given)."""
    body, raw = await read_json(request, UpdateEntryRequest)
    collection_id = path_id(request, "collection_id", "collection")
    entry_id = path_id(request, "entry_id", "collection entry")
    db, pid = get_db(request), project_id(request)
    async with db.begin() as conn:
        collection = await store.collection_row(conn, pid, collection_id, lock=True)
        _writable(collection)
        row = await entries.live_entry(conn, collection_id, entry_id)
        if row is None:
            raise not_found("collection entry", entry_id)
        env = (
            body.environment_config
            if "environment_config" in raw
            else loads(row["environment_config"])
        )
        _check_keys([body.input_values])
        async with cell_rules():
            await entries.update_entry(conn, collection, entry_id, body.input_values, env)
        await check_collection_rows(conn, pid, collection_id)
    async with db.connect() as conn:
        entry = await Views(conn, pid).template_variables(entry_id)
    return json_response(entry)


@routes.delete(ENTRY)
async def delete_entry(request: web.Request) -> web.Response:
    collection_id = path_id(request, "collection_id", "collection")
    entry_id = path_id(request, "entry_id", "collection entry")
    async with get_db(request).begin() as conn:
        _writable(await store.collection_row(conn, project_id(request), collection_id, lock=True))
        if await entries.live_entry(conn, collection_id, entry_id) is None:
            raise not_found("collection entry", entry_id)
        await entries.delete_entry(conn, entry_id)
    return no_content()


@routes.delete(ENTRIES)
async def delete_all_entries(request: web.Request) -> web.Response:
    """Remove every row of the collection (rows used by experiments are hidden, not lost)."""
    collection_id = path_id(request, "collection_id", "collection")
    async with get_db(request).begin() as conn:
        _writable(await store.collection_row(conn, project_id(request), collection_id, lock=True))
        await entries.delete_all_entries(conn, collection_id)
    return no_content()


async def _read_upload(request: web.Request) -> bytes:
    """The uploaded JSONL: the multipart part ``file``, or the raw body."""
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    try:
        return await _read_file_part(request)
    except (ValueError, AssertionError, LookupError, RuntimeError, HttpProcessingError) as exc:
        raise unprocessable(
            f"malformed multipart body ({exc}); send multipart/form-data with a part 'file'"
        ) from None


async def _read_file_part(request: web.Request) -> bytes:
    limit = request.client_max_size
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            raise unprocessable(
                "multipart body has no part named 'file': upload the JSONL rows as 'file'"
            )
        if getattr(part, "name", None) != "file" or not isinstance(part, BodyPartReader):
            await part.release()
            continue
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await part.read_chunk(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
            chunks.append(chunk)
        return b"".join(chunks)


def parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    """Rows of a JSONL upload (422 naming the first bad line; blank lines are skipped).

    A body that is one JSON array of objects is accepted too.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise unprocessable(f"the upload is not UTF-8 text: {exc}") from None
    maybe_nul = "\\u0000" in text
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            rows = _line_decoder.decode(stripped)
        except msgspec.DecodeError as exc:
            raise unprocessable(f"the upload is not valid JSON: {exc}") from None
        except RecursionError:
            raise unprocessable("the upload is nested too deeply") from None
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise unprocessable(
                    f"item {index}: expected a JSON object, got {json_type_name(row)}"
                )
            if maybe_nul:
                check_no_nul(row, what=f"item {index}: ")
        return list(rows)
    result: list[dict[str, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            row = _line_decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise unprocessable(f"line {number}: invalid JSON ({exc}); nothing was added") from None
        except RecursionError:
            raise unprocessable(f"line {number}: nested too deeply; nothing was added") from None
        if not isinstance(row, dict):
            raise unprocessable(
                f"line {number}: expected a JSON object (one row per line), got "
                f"{json_type_name(row)}; nothing was added"
            )
        if maybe_nul:
            check_no_nul(row, what=f"line {number}: ")
        result.append(row)
    return result


@routes.post(ENTRIES + "/batches")
async def upload_entries(request: web.Request) -> web.Response:
    """Add many rows from a JSONL upload; returns only the newly created rows."""
    collection_id = path_id(request, "collection_id", "collection")
    skip_existing = query_bool(request, "skip_existing")
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        _writable(await store.collection_row(conn, pid, collection_id))
    rows = parse_jsonl(await _read_upload(request))
    async with db.begin() as conn:
        collection = await store.collection_row(conn, pid, collection_id, lock=True)
        _writable(collection)
        _check_keys(rows)
        async with cell_rules():
            new_ids = await entries.insert_entries(
                conn, collection, [(r, None) for r in rows], skip_existing=skip_existing
            )
        await check_collection_rows(conn, pid, collection_id)
    async with db.connect() as conn:
        views = Views(conn, pid)
        added = [
            await views.template_variables_row(r)
            for r in await entries.entries_by_ids(conn, collection_id, new_ids)
        ]
    log.debug("collection %d: %d of %d uploaded rows added", collection_id, len(new_ids), len(rows))
    return json_response(added, status=201)
