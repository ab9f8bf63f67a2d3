"""Collections and their entries (CONTRACT.md 4.2, 4.3).

Rows are stored complete: every column present, values coerced to the column type (TEXT-like
columns hold strings), so ``skip_existing`` compares the stored (typed) form. A row key that
is not a column yet adds a TEXT column (existing rows get its default value).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from elluminate.schemas import (
    CollectionType,
    ColumnTypeEnum,
    CreateCollectionRequest,
    CreateEntryRequest,
    UpdateCollectionRequest,
    UpdateEntryRequest,
)

from ..store.database import Database, dumps, dumps_canonical, loads, now
from ..store.views_sync import SyncViews
from .errors import HTTPError, bad_gateway, bad_request, conflict, not_found, unprocessable
from .http import (
    check_name,
    get_db,
    get_providers,
    json_response,
    json_type_name,
    live_row,
    no_content,
    paginate,
    path_id,
    project_id,
    query_bool,
    query_int,
    query_str,
    read_json,
)
from .prompt_templates import template_row

log = logging.getLogger("elluminate.server.api.collections")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/collections"
ONE = BASE + r"/{collection_id:\d+}"
ENTRIES = ONE + "/entries"
ENTRY = ENTRIES + r"/{entry_id:\d+}"

TEXT_LIKE = frozenset(
    {
        ColumnTypeEnum.TEXT,
        ColumnTypeEnum.CATEGORY,
        ColumnTypeEnum.RAW_INPUT,
        ColumnTypeEnum.PERSONA_GOAL,
    }
)
_line_decoder = msgspec.json.Decoder()


# ---- columns ---------------------------------------------------------------------------


@dataclass
class ColumnSpec:
    """A requested column (from a create/update body)."""

    name: str
    column_type: ColumnTypeEnum | None = None
    default_value: str | None = None
    categorical_values: list[str] | None = None
    id: int | None = None


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


def _default_type(name: str, collection_type: str) -> ColumnTypeEnum:
    if collection_type == CollectionType.AGENTIC.value and name == "instruction":
        return ColumnTypeEnum.RAW_INPUT
    return ColumnTypeEnum.TEXT


def load_columns(db: Database, collection_id: int) -> list[sqlite3.Row]:
    """The columns of a collection in position order."""
    return db.fetchall(
        "SELECT * FROM collection_columns WHERE collection_id = ? ORDER BY column_position, id",
        (collection_id,),
    )


def _insert_column(
    db: Database, collection_id: int, spec: ColumnSpec, position: int, collection_type: str
) -> None:
    db.execute(
        "INSERT INTO collection_columns (collection_id, name, column_type, default_value, "
        "column_position, categorical_values) VALUES (?, ?, ?, ?, ?, ?)",
        (
            collection_id,
            spec.name,
            (spec.column_type or _default_type(spec.name, collection_type)).value,
            spec.default_value or "",
            position,
            dumps(spec.categorical_values),
        ),
    )


def coerce_value(value: Any, column: sqlite3.Row) -> Any:
    """A row value in the stored form of ``column`` (TEXT-like columns hold strings)."""
    if value is None:
        return column["default_value"]
    if ColumnTypeEnum(column["column_type"]) not in TEXT_LIKE:
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return dumps(value)


def normalize_values(values: dict[str, Any], columns: list[sqlite3.Row]) -> dict[str, Any]:
    """A complete row: every column, in column order, coerced; missing ones get defaults."""
    return {c["name"]: coerce_value(values.get(c["name"]), c) for c in columns}


def row_identity(values: dict[str, Any], environment_config: Any) -> str:
    """Identity hash of a stored row (``skip_existing`` compares these)."""
    canonical = dumps_canonical({"v": values, "e": environment_config})
    return hashlib.sha256(canonical.encode()).hexdigest()


def _rewrite_rows(
    db: Database, collection_id: int, columns: list[sqlite3.Row], renames: dict[str, str]
) -> None:
    """Rewrite every row for a new column list (``renames``: new name -> old name)."""
    rows = db.fetchall(
        "SELECT id, input_values, environment_config FROM template_variables "
        "WHERE collection_id = ?",
        (collection_id,),
    )
    updates = []
    for row in rows:
        old = loads(row["input_values"])
        values = {}
        for column in columns:
            source = renames.get(column["name"], column["name"])
            values[column["name"]] = old[source] if source in old else coerce_value(None, column)
        env = loads(row["environment_config"])
        updates.append((dumps(values), row_identity(values, env), row["id"]))
    db.executemany(
        "UPDATE template_variables SET input_values = ?, identity_hash = ? WHERE id = ?", updates
    )


def ensure_columns(db: Database, collection: sqlite3.Row, keys: Iterable[str]) -> list[sqlite3.Row]:
    """Add a TEXT column for every key that is not a column yet; return all columns."""
    columns = load_columns(db, collection["id"])
    known = {c["name"] for c in columns}
    missing = [k for k in dict.fromkeys(keys) if k not in known]
    if not missing:
        return columns
    position = max((c["column_position"] for c in columns), default=-1) + 1
    for offset, name in enumerate(missing):
        check_name(name, what=f"column name {name[:40]!r}")
        _insert_column(
            db, collection["id"], ColumnSpec(name), position + offset, collection["collection_type"]
        )
    columns = load_columns(db, collection["id"])
    _rewrite_rows(db, collection["id"], columns, {})
    return columns


def insert_entries(
    db: Database,
    collection: sqlite3.Row,
    rows: Sequence[tuple[dict[str, Any], dict[str, Any] | None]],
    *,
    skip_existing: bool = False,
) -> list[int]:
    """Insert rows ``(input_values, environment_config)``; returns the new ids.

    ``skip_existing`` skips rows whose stored form exists already (or earlier in ``rows``).
    Must run inside a transaction.
    """
    keys = (k for values, _ in rows for k in values)
    columns = ensure_columns(db, collection, keys)
    seen: set[str] = set()
    if skip_existing:
        seen = {
            r[0]
            for r in db.fetchall(
                "SELECT identity_hash FROM template_variables WHERE collection_id = ? "
                "AND deleted_at IS NULL",
                (collection["id"],),
            )
        }
    ts = now()
    new_ids: list[int] = []
    for values, env in rows:
        stored = normalize_values(values, columns)
        identity = row_identity(stored, env)
        if skip_existing:
            if identity in seen:
                continue
            seen.add(identity)
        new_ids.append(
            db.insert(
                "INSERT INTO template_variables (collection_id, input_values, environment_config, "
                "identity_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (collection["id"], dumps(stored), dumps(env), identity, ts, ts),
            )
        )
    if new_ids:
        db.execute("UPDATE collections SET updated_at = ? WHERE id = ?", (ts, collection["id"]))
    return new_ids


def retire_row_criteria(db: Database, row_ids: Sequence[int]) -> None:
    """Delete (or hide, when ratings use them) the criteria specific to these rows.

    A row-specific criterion rates only its row; ``NULL`` means "every row", so it must go
    before its row does (the foreign key would otherwise turn it into a criterion for every
    row). Inside the caller's transaction.
    """
    for start in range(0, len(row_ids), 500):
        chunk = list(row_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for (criterion_id,) in db.fetchall(
            f"SELECT id FROM criteria WHERE template_variables_id IN ({marks}) "
            "AND deleted_at IS NULL",
            chunk,
        ):
            db.delete_or_hide("criteria", criterion_id)


def live_row_ids(db: Database, collection_id: int) -> list[int]:
    """Ids of the collection's rows that are not deleted."""
    return [
        r[0]
        for r in db.fetchall(
            "SELECT id FROM template_variables WHERE collection_id = ? AND deleted_at IS NULL",
            (collection_id,),
        )
    ]


def collection_row(db: Database, pid: int, collection_id: int) -> sqlite3.Row:
    """The (non-deleted) collection row of this project, or 404."""
    return live_row(db, "collections", "collection", pid, collection_id)


def _writable(collection: sqlite3.Row) -> None:
    if collection["read_only"]:
        raise bad_request(
            f"collection {collection['name']!r} is read-only; set read_only=false with "
            f"PUT .../collections/{collection['id']} to change its entries"
        )


def _name_taken(db: Database, pid: int, name: str, exclude_id: int | None = None) -> int | None:
    return db.fetchval(  # type: ignore[no-any-return]
        "SELECT id FROM collections WHERE project_id = ? AND name = ? AND deleted_at IS NULL "
        "AND id IS NOT ?",
        (pid, name, exclude_id),
    )


def _check_row(values: Any, what: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise unprocessable(f"{what} must be a JSON object (column name -> value)")
    return values


# ---- collections -----------------------------------------------------------------------


@routes.get(BASE)
async def list_collections(request: web.Request) -> web.Response:
    """Paginated; ``name`` (exact) and ``compatible_prompt_template_id`` filters."""
    db, pid = get_db(request), project_id(request)
    where = ["c.project_id = ?", "c.deleted_at IS NULL"]
    params: list[Any] = [pid]
    name = query_str(request, "name")
    if name is not None:
        where.append("c.name = ?")
        params.append(name.strip())
    template_id = query_int(request, "compatible_prompt_template_id")
    if template_id is not None:
        template = template_row(db, pid, template_id)
        where.append(
            "NOT EXISTS (SELECT 1 FROM json_each(?) p WHERE p.value NOT IN "
            "(SELECT name FROM collection_columns WHERE collection_id = c.id))"
        )
        params.append(template["placeholders"])
    views = SyncViews(db, pid)
    return paginate(
        db,
        request,
        select="SELECT c.* FROM collections c",
        where=" AND ".join(where),
        params=params,
        order_by="c.id",
        build=lambda rows: [views.collection_row(r) for r in rows],
    )


@routes.get(ONE)
async def get_collection(request: web.Request) -> web.Response:
    """The collection with all its entries inline."""
    collection_id = path_id(request, "collection_id", "collection")
    views = SyncViews(get_db(request), project_id(request))
    return json_response(views.collection_with_entries(collection_id))


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
    with db.transaction():
        existing = _name_taken(db, pid, name)
        if existing is not None:
            raise conflict(
                f"a collection named {name!r} already exists (id {existing})",
                collection_id=existing,
            )
        ts = now()
        collection_id = db.insert(
            "INSERT INTO collections (project_id, name, description, read_only, collection_type, "
            "environment_config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pid,
                name,
                body.description or "",
                int(body.read_only),
                body.collection_type.value,
                dumps(body.environment_config),
                ts,
                ts,
            ),
        )
        for position, spec in enumerate(specs):
            _insert_column(db, collection_id, spec, position, body.collection_type.value)
        collection = collection_row(db, pid, collection_id)
        insert_entries(db, collection, rows)
    log.debug("created collection %r (id %d, %d rows)", name, collection_id, len(rows))
    return json_response(SyncViews(db, pid).collection_with_entries(collection_id), status=201)


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
    env_given = "environment_config" in raw
    env = raw.get("environment_config")
    if env is not None and not isinstance(env, dict):
        raise unprocessable("environment_config must be a JSON object or null")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        collection = collection_row(db, pid, collection_id)
        other = _name_taken(db, pid, name, exclude_id=collection_id)
        if other is not None:
            raise conflict(
                f"a collection named {name!r} already exists (id {other})", collection_id=other
            )
        ts = now()
        db.execute(
            "UPDATE collections SET name = ?, description = COALESCE(?, description), "
            "read_only = COALESCE(?, read_only), updated_at = ? WHERE id = ?",
            (
                name,
                body.description,
                None if body.read_only is None else int(body.read_only),
                ts,
                collection_id,
            ),
        )
        if env_given:
            db.execute(
                "UPDATE collections SET environment_config = ? WHERE id = ?",
                (dumps(env), collection_id),
            )
        if specs is not None:
            _reshape_columns(db, collection, specs)
    return json_response(SyncViews(db, pid).collection(collection_id))


def _reshape_columns(db: Database, collection: sqlite3.Row, specs: list[ColumnSpec]) -> None:
    collection_id = collection["id"]
    current = {c["id"]: c for c in load_columns(db, collection_id)}
    by_name = {c["name"]: c for c in current.values()}
    matched: list[tuple[ColumnSpec, sqlite3.Row | None]] = []
    for index, spec in enumerate(specs):
        if spec.id is not None:
            if spec.id not in current:
                raise unprocessable(
                    f"columns[{index}].id {spec.id} is not a column of this collection"
                )
            matched.append((spec, current[spec.id]))
        else:
            matched.append((spec, by_name.get(spec.name)))
    kept = {row["id"] for _, row in matched if row is not None}
    if len(kept) != sum(1 for _, row in matched if row is not None):
        raise unprocessable("columns: the same existing column appears twice")
    for column_id in set(current) - kept:
        db.execute("DELETE FROM collection_columns WHERE id = ?", (column_id,))
    for _, row in matched:  # free the names first, so swaps and renames never collide
        if row is not None:
            db.execute(
                "UPDATE collection_columns SET name = ? WHERE id = ?",
                (f"\x00tmp{row['id']}", row["id"]),
            )
    renames: dict[str, str] = {}
    for position, (spec, row) in enumerate(matched):
        if row is None:
            _insert_column(db, collection_id, spec, position, collection["collection_type"])
            continue
        renames[spec.name] = row["name"]
        db.execute(
            "UPDATE collection_columns SET name = ?, column_type = ?, default_value = ?, "
            "column_position = ?, categorical_values = ? WHERE id = ?",
            (
                spec.name,
                (spec.column_type.value if spec.column_type else row["column_type"]),
                row["default_value"] if spec.default_value is None else spec.default_value,
                position,
                (
                    row["categorical_values"]
                    if spec.categorical_values is None
                    else dumps(spec.categorical_values)
                ),
                row["id"],
            ),
        )
    _rewrite_rows(db, collection_id, load_columns(db, collection_id), renames)


@routes.delete(ONE)
async def delete_collection(request: web.Request) -> web.Response:
    """Delete a collection (hidden instead when experiments still use its rows)."""
    collection_id = path_id(request, "collection_id", "collection")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        collection_row(db, pid, collection_id)
        retire_row_criteria(db, live_row_ids(db, collection_id))
        db.delete_or_hide("collections", collection_id)
    return no_content()


# ---- entries ---------------------------------------------------------------------------


@routes.get(ENTRIES)
async def list_entries(request: web.Request) -> web.Response:
    collection_id = path_id(request, "collection_id", "collection")
    db, pid = get_db(request), project_id(request)
    views = SyncViews(db, pid)
    views.collection(collection_id)
    return paginate(
        db,
        request,
        select="SELECT * FROM template_variables",
        where="collection_id = ? AND deleted_at IS NULL",
        params=[collection_id],
        order_by="id",
        build=lambda rows: [views.template_variables_row(r) for r in rows],
    )


@routes.get(ENTRY)
async def get_entry(request: web.Request) -> web.Response:
    collection_id = path_id(request, "collection_id", "collection")
    entry_id = path_id(request, "entry_id", "collection entry")
    views = SyncViews(get_db(request), project_id(request))
    return json_response(views.template_variables(entry_id, collection_id=collection_id))


async def _generate_row(
    request: web.Request, template: sqlite3.Row, collection_id: int
) -> dict[str, Any]:
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
    recent = get_db(request).fetchall(
        "SELECT input_values FROM template_variables WHERE collection_id = ? "
        "AND deleted_at IS NULL ORDER BY id DESC LIMIT 5",
        (collection_id,),
    )
    existing = [
        {k: str(v) for k, v in loads(r["input_values"]).items() if k in placeholders}
        for r in reversed(recent)
    ]
    try:
        values = await prompts.generate_test_case(
            provider, loads(template["messages"]), placeholders, existing=existing
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
    _writable(collection_row(db, pid, collection_id))
    values = body.input_values
    if body.prompt_template_id is not None:
        template = template_row(db, pid, body.prompt_template_id)
        values = await _generate_row(request, template, collection_id)  # no transaction open
    assert values is not None
    with db.transaction():
        collection = collection_row(db, pid, collection_id)  # may be gone after the await
        _writable(collection)
        (entry_id,) = insert_entries(db, collection, [(values, body.environment_config)])
    return json_response(SyncViews(db, pid).template_variables(entry_id), status=201)


@routes.put(ENTRY)
async def update_entry(request: web.Request) -> web.Response:
    """Replace a row's values (and its environment_config when given)."""
    body, raw = await read_json(request, UpdateEntryRequest)
    collection_id = path_id(request, "collection_id", "collection")
    entry_id = path_id(request, "entry_id", "collection entry")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        collection = collection_row(db, pid, collection_id)
        _writable(collection)
        row = db.fetchone(
            "SELECT * FROM template_variables WHERE id = ? AND collection_id = ? "
            "AND deleted_at IS NULL",
            (entry_id, collection_id),
        )
        if row is None:
            raise not_found("collection entry", entry_id)
        env = (
            body.environment_config
            if "environment_config" in raw
            else loads(row["environment_config"])
        )
        columns = ensure_columns(db, collection, body.input_values)
        stored = normalize_values(body.input_values, columns)
        db.execute(
            "UPDATE template_variables SET input_values = ?, environment_config = ?, "
            "identity_hash = ?, updated_at = ? WHERE id = ?",
            (dumps(stored), dumps(env), row_identity(stored, env), now(), entry_id),
        )
    return json_response(SyncViews(db, pid).template_variables(entry_id))


@routes.delete(ENTRY)
async def delete_entry(request: web.Request) -> web.Response:
    collection_id = path_id(request, "collection_id", "collection")
    entry_id = path_id(request, "entry_id", "collection entry")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        _writable(collection_row(db, pid, collection_id))
        exists = db.fetchval(
            "SELECT 1 FROM template_variables WHERE id = ? AND collection_id = ? "
            "AND deleted_at IS NULL",
            (entry_id, collection_id),
        )
        if not exists:
            raise not_found("collection entry", entry_id)
        retire_row_criteria(db, [entry_id])
        db.delete_or_hide("template_variables", entry_id)
    return no_content()


@routes.delete(ENTRIES)
async def delete_all_entries(request: web.Request) -> web.Response:
    """Remove every row of the collection (rows used by experiments are hidden, not lost)."""
    collection_id = path_id(request, "collection_id", "collection")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        _writable(collection_row(db, pid, collection_id))
        retire_row_criteria(db, live_row_ids(db, collection_id))
        try:
            with db.savepoint("clear_entries"):
                db.execute(
                    "DELETE FROM template_variables WHERE collection_id = ? AND deleted_at IS NULL",
                    (collection_id,),
                )
        except sqlite3.IntegrityError:
            ids = db.fetchall(
                "SELECT id FROM template_variables WHERE collection_id = ? AND deleted_at IS NULL",
                (collection_id,),
            )
            for (entry_id,) in ids:
                db.delete_or_hide("template_variables", entry_id)
        db.execute("UPDATE collections SET updated_at = ? WHERE id = ?", (now(), collection_id))
    return no_content()


async def _read_upload(request: web.Request) -> bytes:
    """The uploaded JSONL: the multipart part ``file``, or the raw body."""
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    try:
        return await _read_file_part(request)
    except (ValueError, AssertionError, LookupError, RuntimeError) as exc:
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
        result.append(row)
    return result


@routes.post(ENTRIES + "/batches")
async def upload_entries(request: web.Request) -> web.Response:
    """Add many rows from a JSONL upload; returns only the newly created rows."""
    collection_id = path_id(request, "collection_id", "collection")
    skip_existing = query_bool(request, "skip_existing")
    db, pid = get_db(request), project_id(request)
    _writable(collection_row(db, pid, collection_id))
    rows = parse_jsonl(await _read_upload(request))
    with db.transaction():
        collection = collection_row(db, pid, collection_id)
        _writable(collection)
        new_ids = insert_entries(
            db, collection, [(r, None) for r in rows], skip_existing=skip_existing
        )
    views = SyncViews(db, pid)
    log.debug("collection %d: %d of %d uploaded rows added", collection_id, len(new_ids), len(rows))
    return json_response(views.template_variables_many(new_ids), status=201)
