"""Prompts, responses and ratings: what runs and batches write, and what they read back.

One experiment holds at most one response per (collection entry, epoch): the unique index
``ux_responses_row_epoch`` guarantees it on both databases, :func:`insert_response` says so
with :class:`DuplicateResponse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, select, update

from elluminate.schemas import GenerationMetadata

from . import schema as S
from .connection import Connection, ForeignKeyViolation, UniqueViolation
from .database import dumps, utcnow

_R, _P, _G, _TV = S.responses, S.prompts, S.ratings, S.template_variables
_ID: Any = bindparam("id")
_IDS: Any = bindparam("ids", expanding=True)


class DuplicateResponse(LookupError):
    """The experiment already holds a response for this (row, epoch)."""


@dataclass
class Outcome:
    """One judge decision (``rating`` None = failed rating with ``error``)."""

    criterion_id: int
    rating: str | None = None
    reasoning: str | None = None
    metadata: GenerationMetadata | None = None
    error: str | None = None
    raw_text: str | None = None
    #: the verdict came from the LLM call cache
    from_cache: bool = False


ADD_PROMPT = (
    insert(_P)
    .values(
        project_id=bindparam("pid"),
        experiment_id=bindparam("experiment_id"),
        prompt_template_id=bindparam("template_id"),
        template_variables_id=bindparam("row_id"),
        messages=bindparam("messages"),
        resolved_tools=bindparam("tools"),
        resolved_tool_choice=bindparam("tool_choice"),
        resolved_response_format=bindparam("response_format"),
        created_at=bindparam("ts"),
    )
    .returning(_P.c.id)
)
SLOT = select(_R.c.id).where(
    _R.c.experiment_id == bindparam("experiment_id"),
    _R.c.template_variables_id == bindparam("row_id"),
    _R.c.epoch == bindparam("epoch"),
)
ADD_RESPONSE = (
    insert(_R)
    .values(
        project_id=bindparam("pid"),
        experiment_id=bindparam("experiment_id"),
        prompt_id=bindparam("prompt_id"),
        template_variables_id=bindparam("row_id"),
        llm_config_id=bindparam("llm_config_id"),
        epoch=bindparam("epoch"),
        messages=bindparam("messages"),
        generation_metadata=bindparam("metadata"),
        error=bindparam("error"),
        input_tokens=bindparam("input_tokens"),
        output_tokens=bindparam("output_tokens"),
        duration_seconds=bindparam("duration_seconds"),
        from_cache=bindparam("from_cache"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_R.c.id)
)
DELETE_RATINGS_OF = delete(_G).where(_G.c.response_id == _ID)
DELETE_RATINGS_FOR = delete(_G).where(_G.c.response_id == _ID, _G.c.criterion_id.in_(_IDS))
ADD_RATING = insert(_G).values(
    project_id=bindparam("pid"),
    response_id=bindparam("response_id"),
    criterion_id=bindparam("criterion_id"),
    rating=bindparam("rating"),
    reasoning=bindparam("reasoning"),
    generation_metadata=bindparam("metadata"),
    error=bindparam("error"),
    raw_text=bindparam("raw_text"),
    from_cache=bindparam("from_cache"),
    created_at=bindparam("ts"),
)
ROW_IS_LIVE = select(_TV.c.id).where(_TV.c.id == _ID, _TV.c.deleted_at.is_(None))
RESPONSE_EXISTS = select(_R.c.id).where(_R.c.id == _ID)
OWNED_RESPONSE = select(_R.c.id).where(_R.c.id == _ID, _R.c.project_id == bindparam("pid"))
PROMPT_OF = select(_R.c.prompt_id).where(_R.c.id == _ID, _R.c.project_id == bindparam("pid"))
DELETE_RESPONSE = delete(_R).where(_R.c.id == _ID)
PROMPT_USED = select(_R.c.id).where(_R.c.prompt_id == _ID).limit(1)
DELETE_PROMPT = delete(_P).where(_P.c.id == _ID)
SET_ANNOTATION = (
    update(_R)
    .where(_R.c.id == _ID, _R.c.project_id == bindparam("pid"))
    .values(annotation=bindparam("annotation"), updated_at=bindparam("ts"))
)
ROW = select(_TV.c.input_values, _TV.c.collection_id).where(_TV.c.id == _ID)
COLUMNS_IN_ORDER = (
    select(S.collection_columns.c.name, S.collection_columns.c.column_type)
    .where(S.collection_columns.c.collection_id == _ID)
    .order_by(S.collection_columns.c.column_position, S.collection_columns.c.id)
)
_E = S.experiments
EXPERIMENT = select(_E).where(_E.c.id == _ID)
TEMPLATE = select(S.prompt_templates).where(S.prompt_templates.c.id == _ID)
LLM_CONFIG = select(S.llm_configs).where(S.llm_configs.c.id == _ID)
CHECKED_EXPERIMENT = (
    select(
        _E.c.id,
        _E.c.name,
        _E.c.collection_id,
        _E.c.prompt_template_id,
        _E.c.evaluation_mode,
        S.collections.c.name.label("collection"),
    )
    .join(S.collections, S.collections.c.id == _E.c.collection_id)
    .where(_E.c.id == _ID, _E.c.project_id == bindparam("pid"))
)
ROW_IN_COLLECTION = select(_TV.c.id).where(
    _TV.c.id == _ID, _TV.c.collection_id == bindparam("collection_id"), _TV.c.deleted_at.is_(None)
)
LIVE_LLM_CONFIG = select(S.llm_configs.c.id).where(
    S.llm_configs.c.id == _ID,
    S.llm_configs.c.project_id == bindparam("pid"),
    S.llm_configs.c.deleted_at.is_(None),
)
RATING_TARGETS = (
    select(
        _R.c.id,
        _R.c.error,
        _R.c.messages,
        _R.c.epoch,
        _P.c.messages.label("prompt"),
        _TV.c.id.label("row_id"),
        _TV.c.input_values,
        _E.c.criterion_set_id,
        _E.c.rating_version,
    )
    .select_from(
        _R.join(_P, _P.c.id == _R.c.prompt_id)
        .join(_TV, _TV.c.id == _P.c.template_variables_id)
        .join(_E, _E.c.id == _R.c.experiment_id)
    )
    .where(_R.c.id.in_(_IDS))
)
BATCH_RESPONSES = (
    select(_R.c.id, _R.c.experiment_id, _E.c.criterion_set_id, _E.c.name)
    .join(_E, _E.c.id == _R.c.experiment_id)
    .where(_R.c.project_id == bindparam("pid"), _R.c.id.in_(_IDS))
)
RATINGS = (
    select(_G)
    .where(_G.c.project_id == bindparam("pid"), _G.c.rating.is_not(None))
    .order_by(_G.c.id)
)
RATINGS_OF_RESPONSE = RATINGS.where(_G.c.response_id == bindparam("response_id"))
RESPONSE_TO_RATE = (
    select(
        _R.c.messages,
        _R.c.epoch,
        _P.c.messages.label("prompt"),
        _P.c.template_variables_id.label("row_id"),
    )
    .join(_P, _P.c.id == _R.c.prompt_id)
    .where(_R.c.id == _ID)
)


async def insert_prompt(
    conn: Connection,
    project_id: int,
    experiment_id: int | None,
    template: Any,
    row_id: int,
    messages: list[dict[str, Any]],
    settings: Mapping[str, Any] | None = None,
) -> int:
    """Store a rendered prompt (in the caller's transaction); ``template`` is a
    ``prompt_templates`` row or None. Without a template, ``settings`` (``tools``,
    ``tool_choice``, ``response_format``: a conversation envelope's) are recorded instead."""
    if template is not None:
        tools, choice = template["tools"], template["tool_choice"]
        response_format = template["response_format_json_schema"]
    else:
        given = settings or {}
        tools, choice = dumps(given.get("tools")), dumps(given.get("tool_choice"))
        response_format = dumps(given.get("response_format"))
    new_id: int = await conn.insert(
        ADD_PROMPT,
        {
            "pid": project_id,
            "experiment_id": experiment_id,
            "template_id": None if template is None else template["id"],
            "row_id": row_id,
            "messages": dumps(messages),
            "tools": tools,
            "tool_choice": choice,
            "response_format": response_format,
            "ts": utcnow(),
        },
    )
    return new_id


async def slot_taken(conn: Connection, experiment_id: int, row_id: int, epoch: int) -> int | None:
    """The id of the experiment's response for (row, epoch), if there is one."""
    found = await conn.fetchval(
        SLOT, {"experiment_id": experiment_id, "row_id": row_id, "epoch": epoch}
    )
    return None if found is None else int(found)


async def insert_response(
    conn: Connection,
    project_id: int,
    experiment_id: int,
    prompt_id: int,
    *,
    row_id: int,
    epoch: int,
    messages: list[dict[str, Any]],
    metadata: GenerationMetadata | dict[str, Any] | None,
    error: str | None,
    llm_config_id: int | None,
    any_trial: bool = True,
) -> int:
    """Store a response (in the caller's transaction); token columns feed the results.

    Raises :class:`DuplicateResponse` when the experiment already holds a response for this
    (row, epoch): of any trial (a lookup first), or with ``any_trial=False`` of trial 0, the
    one this stores, which the unique key alone refuses (a STANDARD run, where every
    response is trial 0: no lookup).
    """
    meta: dict[str, Any] = {}
    if isinstance(metadata, GenerationMetadata):
        meta = {
            "input_tokens": metadata.input_tokens,
            "output_tokens": metadata.output_tokens,
            "duration_seconds": metadata.duration_seconds,
            "from_cache": metadata.from_cache,
        }
    elif isinstance(metadata, dict):
        meta = metadata
    duplicate = DuplicateResponse(
        f"experiment {experiment_id} already has a response for collection entry {row_id} "
        f"epoch {epoch}; delete that response first to store another"
    )
    if any_trial and await slot_taken(conn, experiment_id, row_id, epoch) is not None:
        raise duplicate
    duration = meta.get("duration_seconds")
    params = {
        "pid": project_id,
        "experiment_id": experiment_id,
        "prompt_id": prompt_id,
        "row_id": row_id,
        "llm_config_id": llm_config_id,
        "epoch": epoch,
        "messages": dumps(messages),
        "metadata": dumps(metadata),
        "error": error,
        "input_tokens": _int_or_none(meta.get("input_tokens")),
        "output_tokens": _int_or_none(meta.get("output_tokens")),
        "duration_seconds": None if duration is None else float(duration),
        # only the server's own generations can say so (a client's metadata cannot)
        "from_cache": isinstance(metadata, GenerationMetadata) and bool(metadata.from_cache),
        "ts": utcnow(),
    }
    try:
        async with conn.statement_guard():
            new_id: int = await conn.insert(ADD_RESPONSE, params)
    except UniqueViolation:  # stored by another writer since the check (PostgreSQL)
        raise duplicate from None
    return new_id


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


async def store_ratings(
    conn: Connection,
    project_id: int,
    response_id: int,
    outcomes: Sequence[Outcome],
    *,
    replace_all: bool = False,
) -> None:
    """Replace the response's ratings of the outcomes' criteria (in a transaction); with
    ``replace_all`` every earlier rating of the response goes, whatever its criterion."""
    if replace_all:
        await conn.execute(DELETE_RATINGS_OF, {"id": response_id})
    elif ids := sorted({o.criterion_id for o in outcomes}):
        await conn.execute(DELETE_RATINGS_FOR, {"id": response_id, "ids": ids})
    moment = utcnow()
    await conn.executemany(
        ADD_RATING,
        [
            {
                "pid": project_id,
                "response_id": response_id,
                "criterion_id": o.criterion_id,
                "rating": o.rating,
                "reasoning": o.reasoning,
                "metadata": dumps(o.metadata),
                "error": o.error,
                "raw_text": o.raw_text,
                "from_cache": o.from_cache,
                "ts": moment,
            }
            for o in outcomes
        ],
    )


async def store_ratings_if_response_exists(
    conn: Connection, project_id: int, response_id: int, outcomes: Sequence[Outcome]
) -> bool:
    """:func:`store_ratings`, or False (nothing stored) when the response was deleted
    meanwhile: told by the ratings' foreign key, so the usual case needs no lookup."""
    try:
        async with conn.statement_guard():
            await store_ratings(conn, project_id, response_id, outcomes)
    except ForeignKeyViolation:
        if await response_exists(conn, response_id):
            raise  # another reference is broken (a criterion deleted meanwhile)
        return False
    return True


async def row_is_live(conn: Connection, row_id: int) -> bool:
    """Whether a collection entry still exists and is not deleted (hidden)."""
    return await conn.fetchval(ROW_IS_LIVE, {"id": row_id}) is not None


async def response_exists(conn: Connection, response_id: int) -> bool:
    """Whether a response still exists (it may be deleted while it is rated)."""
    return await conn.fetchval(RESPONSE_EXISTS, {"id": response_id}) is not None


async def owned(conn: Connection, project_id: int, response_id: int) -> bool:
    return await conn.fetchval(OWNED_RESPONSE, {"id": response_id, "pid": project_id}) is not None


async def delete_response(conn: Connection, project_id: int, response_id: int) -> bool:
    """Delete a response with its ratings, and its prompt when nothing else uses it."""
    prompt_id = await conn.fetchval(PROMPT_OF, {"id": response_id, "pid": project_id})
    if prompt_id is None:
        return False
    await conn.execute(DELETE_RESPONSE, {"id": response_id})
    if await conn.fetchval(PROMPT_USED, {"id": prompt_id}) is None:
        await conn.execute(DELETE_PROMPT, {"id": prompt_id})
    return True


async def set_annotation(
    conn: Connection, project_id: int, response_id: int, annotation: str
) -> bool:
    changed = await conn.execute(
        SET_ANNOTATION,
        {"id": response_id, "pid": project_id, "annotation": annotation, "ts": utcnow()},
    )
    return changed == 1


async def row_and_columns(conn: Connection, row_id: int) -> tuple[Any, list[tuple[str, str]]]:
    """A collection entry ``(input_values, collection_id)`` and its collection's columns."""
    row = await conn.fetchone(ROW, {"id": row_id})
    if row is None:
        return None, []
    columns = await conn.fetchall(COLUMNS_IN_ORDER, {"id": row["collection_id"]})
    return row, [(c[0], c[1]) for c in columns]


async def experiment_and_template(conn: Connection, experiment_id: int) -> tuple[Any, Any]:
    """An experiment row and its template row (LookupError when it is gone)."""
    exp = await conn.fetchone(EXPERIMENT, {"id": experiment_id})
    if exp is None:
        raise LookupError(f"experiment {experiment_id} no longer exists")
    template = None
    if exp["prompt_template_id"] is not None:
        template = await conn.fetchone(TEMPLATE, {"id": exp["prompt_template_id"]})
    return exp, template


async def template_row(conn: Connection, template_id: int) -> Any:
    return await conn.fetchone(TEMPLATE, {"id": template_id})


async def llm_config_row(conn: Connection, config_id: int) -> Any:
    return await conn.fetchone(LLM_CONFIG, {"id": config_id})


async def checked_experiment(conn: Connection, project_id: int, experiment_id: int) -> Any:
    """``(id, name, collection_id, prompt_template_id, evaluation_mode, collection)`` of the
    project's experiment, or None."""
    return await conn.fetchone(CHECKED_EXPERIMENT, {"id": experiment_id, "pid": project_id})


async def row_in_collection(conn: Connection, row_id: int, collection_id: int) -> bool:
    found = await conn.fetchval(ROW_IN_COLLECTION, {"id": row_id, "collection_id": collection_id})
    return found is not None


async def llm_config_is_live(conn: Connection, project_id: int, config_id: int) -> bool:
    return await conn.fetchval(LIVE_LLM_CONFIG, {"id": config_id, "pid": project_id}) is not None


async def rating_target_rows(conn: Connection, response_ids: Sequence[int]) -> dict[int, Any]:
    """The rows :func:`engine.batches.rating_targets` needs, by response id."""
    out: dict[int, Any] = {}
    unique = list(dict.fromkeys(response_ids))
    for start in range(0, len(unique), 500):
        for row in await conn.fetchall(RATING_TARGETS, {"ids": unique[start : start + 500]}):
            out[row["id"]] = row
    return out


async def batch_responses(conn: Connection, project_id: int, ids: Sequence[int]) -> list[Any]:
    """``(id, experiment_id, criterion_set_id, name)`` of the project's responses among ids."""
    rows: list[Any] = []
    for start in range(0, len(ids), 500):
        rows += await conn.fetchall(
            BATCH_RESPONSES, {"pid": project_id, "ids": list(ids[start : start + 500])}
        )
    return rows


async def response_to_rate(conn: Connection, response_id: int) -> Any:
    """``(messages, epoch, prompt, row_id)`` of a response, or None when it is gone."""
    return await conn.fetchone(RESPONSE_TO_RATE, {"id": response_id})


# ---- lists of responses ----------------------------------------------------------------------

LIST_INT_FILTERS = ("prompt_id", "prompt_template_id", "template_variables_id", "epoch")
LIST_RANGES = (
    ("duration_seconds_min", "duration_seconds", ">="),
    ("duration_seconds_max", "duration_seconds", "<="),
    ("input_tokens_min", "input_tokens", ">="),
    ("input_tokens_max", "input_tokens", "<="),
    ("output_tokens_min", "output_tokens", ">="),
    ("output_tokens_max", "output_tokens", "<="),
)


@lru_cache(maxsize=256)
def response_ids_statement(by_experiment: bool, filters: tuple[str, ...]) -> Select[Any]:
    """Ids of matching responses in id order, memoised per shape. ``by_experiment``:
    ``:experiment_id`` (the caller checked it is the project's: the index alone answers),
    else ``:pid``. ``filters`` names parameters among LIST_INT_FILTERS, ``collection_id``,
    ``llm_model_name``, ``response_ids`` and the LIST_RANGES keys."""
    needs_prompt = any(f in filters for f in ("prompt_template_id", "collection_id"))
    source: Any = _R.join(_P, _P.c.id == _R.c.prompt_id) if needs_prompt else _R
    stmt = select(_R.c.id).select_from(source)
    if by_experiment:
        stmt = stmt.where(_R.c.experiment_id == bindparam("experiment_id"))
    else:
        stmt = stmt.where(_R.c.project_id == bindparam("pid"))
    columns = {
        "prompt_id": _R.c.prompt_id,
        "prompt_template_id": _P.c.prompt_template_id,
        "template_variables_id": _R.c.template_variables_id,
        "epoch": _R.c.epoch,
    }
    for key in filters:
        if key in columns:
            stmt = stmt.where(columns[key] == bindparam(key))
        elif key == "collection_id":
            stmt = stmt.where(
                _P.c.template_variables_id.in_(
                    select(_TV.c.id).where(_TV.c.collection_id == bindparam("collection_id"))
                )
            )
        elif key == "llm_model_name":
            c = S.llm_configs
            stmt = stmt.where(
                _R.c.llm_config_id.in_(
                    select(c.c.id).where(
                        c.c.project_id == bindparam("pid"),
                        c.c.llm_model_name == bindparam("llm_model_name"),
                    )
                )
            )
        elif key == "response_ids":
            stmt = stmt.where(_R.c.id.in_(bindparam("response_ids", expanding=True)))
    for key, column, op in LIST_RANGES:
        if key in filters:
            col = _R.c[column]
            stmt = stmt.where(col >= bindparam(key) if op == ">=" else col <= bindparam(key))
    return stmt.order_by(_R.c.id)
