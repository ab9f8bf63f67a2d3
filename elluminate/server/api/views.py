"""The read-only "Advanced" views (CONTRACT.md 4.8, 4.9, 7.15): response samples, comparison
samples between two experiments, response statistics and the experiment map.

The queries are in :mod:`elluminate.server.store.samples`, :mod:`~.store.experiment_map` and
:mod:`~.store.stats` (which also define the figures); this module parses and checks the query
parameters as the official package sends them: lists as repeated keys,
``categorical_filters`` as a JSON string, and ``criteria_filter_by`` as JSON or as the Python
repr of a dict that the official package's HTTP library makes of it
(``{3: <RatingValue.NO: 'NO'>}``).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from elluminate import schemas as s
from elluminate.schemas import ResponsesSampleSortBy

from ..store import experiment_map as map_store
from ..store import experiments as experiment_store
from ..store import samples as store
from ..store import stats as stats_store
from ..store.connection import Connection
from .errors import HTTPError, not_found, unprocessable
from .http import (
    MAX_INT,
    get_db,
    json_response,
    path_id,
    project_id,
    query_bool,
    query_int,
    query_ints,
    query_str,
)
from .operations import Id, operation

routes = web.RouteTableDef()

RESPONSES = r"/api/v0/projects/{project_id:\d+}/responses"
MAP = r"/api/v0/projects/{project_id:\d+}/experiments/{experiment_id:\d+}/map"
DEFAULT_DAYS = 30
DEFAULT_MAP_LIMIT = 50
MAX_MAP_LIMIT = 1000
#: token counts are 32-bit integer columns: bounds beyond them are clamped
TOKEN_RANGE = (-(2**31), 2**31 - 1)
_NONE_STRINGS = frozenset({"", "none", "null"})
_SORT_VALUES = ", ".join(v.value for v in ResponsesSampleSortBy)
#: one ``<id>: <verdict>`` item of a dict repr: ``3: <RatingValue.NO: 'NO'>``, ``3: 'NO'``
_REPR_ITEM = re.compile(
    r"""\s*(\d+)\s*:\s*(?:<\w+\.\w+:\s*'(\w+)'>|'(\w+)'|"(\w+)")\s*""", re.ASCII
)
_VERDICTS = ("YES", "NO")
_DIGITS = re.compile(r"\d+", re.ASCII)


# ---- query parameters -------------------------------------------------------------------------


def _absent(raw: str | None) -> bool:
    return raw is None or raw.strip().lower() in _NONE_STRINGS


def _required_id(request: web.Request, name: str, what: str) -> int:
    value = query_int(request, name)
    if value is None:
        raise unprocessable(f"query parameter {name!r} is required: the id of {what}")
    return value


def _number(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if _absent(raw):
        return None
    assert raw is not None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise unprocessable(f"query parameter {name!r} must be a finite number, got {raw!r}")
    return value


def _ranges(request: web.Request) -> dict[str, float | int]:
    """The duration and token bounds given (token bounds rounded inward to integers)."""
    bounds: dict[str, float | int] = {}
    for key, (column, op) in store.RANGES.items():
        value = _number(request, key)
        if value is None:
            continue
        if column == "duration_seconds":
            bounds[key] = value
        else:
            low, high = TOKEN_RANGE
            rounded = math.ceil(value) if op == ">=" else math.floor(value)
            bounds[key] = min(max(rounded, low), high)
    return bounds


def _verdict(value: Any) -> str | None:
    text = str(value).upper() if isinstance(value, str) else None
    return text if text in _VERDICTS else None


def _repr_items(text: str) -> list[tuple[str, str]] | None:
    """``{3: <RatingValue.NO: 'NO'>, 4: 'YES'}`` -> ``[("3", "NO"), ("4", "YES")]``, or None
    when ``text`` is not such a repr."""
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        return None
    inner = inner[1:-1]
    if not inner.strip():
        return []
    items = []
    for part in inner.split(","):
        match = _REPR_ITEM.fullmatch(part)
        if match is None:
            return None
        items.append((match.group(1), match.group(2) or match.group(3) or match.group(4)))
    return items


def criteria_filter(raw: str | None) -> dict[int, str]:
    """``criteria_filter_by``: criterion id -> ``"YES"``/``"NO"``, from a JSON object or the
    official package's dict repr (422 for anything else)."""
    if _absent(raw):
        return {}
    assert raw is not None
    hint = (
        'criteria_filter_by must be a JSON object mapping criterion ids to "YES" or "NO", '
        f'e.g. {{"3": "NO"}}; got {raw!r}'
    )
    try:
        data = msgspec.json.decode(raw.encode())
    except msgspec.DecodeError:
        items = _repr_items(raw)
        if items is None:
            raise unprocessable(hint) from None
    else:
        if not isinstance(data, dict):
            raise unprocessable(hint)
        items = list(data.items())
    out: dict[int, str] = {}
    for key, value in items:
        verdict = _verdict(value)
        if not (isinstance(key, str) and _DIGITS.fullmatch(key.strip())) or verdict is None:
            raise unprocessable(hint)
        criterion_id = int(key)
        if not 1 <= criterion_id <= MAX_INT:
            raise unprocessable(hint)
        out[criterion_id] = verdict
    return out


def sort_by_param(request: web.Request) -> ResponsesSampleSortBy | None:
    raw = request.query.get("sort_by")
    if _absent(raw):
        return None
    assert raw is not None
    try:
        return ResponsesSampleSortBy(raw.strip())
    except ValueError:
        raise unprocessable(
            f"query parameter 'sort_by' must be one of {_SORT_VALUES}, got {raw!r}"
        ) from None


def categorical_filters(raw: str | None) -> dict[str, list[str]] | None:
    """``categorical_filters``: a JSON object mapping column names to allowed values."""
    if _absent(raw):
        return None
    assert raw is not None
    try:
        data = msgspec.json.decode(raw.encode())
    except msgspec.DecodeError as exc:
        raise unprocessable(
            f"categorical_filters is not valid JSON ({exc}): send a JSON object mapping column "
            f'names to lists of allowed values, e.g. {{"category": ["a", "b"]}}'
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
    ):
        raise unprocessable(
            "categorical_filters must be a JSON object mapping column names to lists of "
            f'allowed values (strings), e.g. {{"category": ["a", "b"]}}; got {raw!r}'
        )
    return data or None


async def _check_criteria(conn: Connection, pid: int, ids: list[int], what: str) -> None:
    unknown = await store.unknown_criteria(conn, pid, ids)
    if unknown:
        raise HTTPError(404, f"{what}: criterion {unknown[0]} not found in this project")


# ---- handlers ---------------------------------------------------------------------------------


@operation(
    response=list[s.ResponsesSample],
    query={
        "experiment_id": (Id, "the experiment (required)"),
        "criteria_filter_by": (
            str,
            'JSON object: criterion id -> "YES" or "NO" that the response\'s rating must be',
        ),
        **{key: float for key in store.RANGES},
        "show_only_annotated_responses": (bool, "only responses with an annotation"),
        "exclude_perfect_responses": (bool, "drop rows whose responses pass every criterion"),
        "sort_by": (ResponsesSampleSortBy, "the order of the rows (default: by row id)"),
    },
)
@routes.get(RESPONSES + "/samples")
async def list_response_samples(request: web.Request) -> web.Response:
    """The input rows of an experiment, each with its responses (one per epoch) that pass the
    filters; rows left without responses are dropped.

    Bounds apply to the stored duration and token counts; ``sort_by`` orders the rows by
    their pass rate (YES over YES and NO ratings), mean tokens or mean duration, rows
    without the figure last.
    """
    experiment_id = _required_id(request, "experiment_id", "the experiment")
    filters = store.SampleFilters(
        ranges=_ranges(request),
        verdicts=criteria_filter(query_str(request, "criteria_filter_by")),
        annotated_only=query_bool(request, "show_only_annotated_responses"),
        exclude_perfect=query_bool(request, "exclude_perfect_responses"),
        sort_by=sort_by_param(request),
    )
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        await experiment_store.get(conn, pid, experiment_id)
        await _check_criteria(conn, pid, sorted(filters.verdicts), "criteria_filter_by")
        samples = await store.response_samples(conn, experiment_id, filters)
    return json_response(samples)


@operation(
    response=list[s.ResponsesSample],
    query={
        "experiment_a_id": (Id, "the baseline experiment (required)"),
        "experiment_b_id": (Id, "the experiment compared with it (required)"),
        "filter_samples_by": (
            Literal["improved", "regressed"],
            "rows where B passes more (improved) or fewer (regressed) criteria per response",
        ),
        "criterion_ids": (list[int], "count only these criteria (repeat the parameter)"),
        "categorical_filters": (
            str,
            'JSON object: column name -> allowed values, e.g. {"category": ["a"]}',
        ),
    },
)
@routes.get(RESPONSES + "/comparison/samples")
async def list_comparison_samples(request: web.Request) -> web.Response:
    """The input rows both experiments answered, each as A's sample followed by B's.

    A row's score is the mean number of criteria its responses pass (a failed response passes
    none); ``criterion_ids`` limits the criteria counted; ``categorical_filters`` keeps rows
    whose column values are among the allowed ones (OR within a column, AND across columns).
    """
    a_id = _required_id(request, "experiment_a_id", "the baseline experiment (A)")
    b_id = _required_id(request, "experiment_b_id", "the experiment compared with A (B)")
    raw_filter = query_str(request, "filter_samples_by")
    filter_by = None if _absent(raw_filter) else (raw_filter or "").strip()
    if filter_by is not None and filter_by not in store.FILTER_SAMPLES_BY:
        raise unprocessable(
            "query parameter 'filter_samples_by' must be 'improved' (B better than A) or "
            f"'regressed' (B worse than A), got {raw_filter!r}"
        )
    criterion_ids = query_ints(request, "criterion_ids") or None
    if criterion_ids is not None and min(criterion_ids) < 1:
        raise unprocessable(
            f"query parameter 'criterion_ids' must hold ids >= 1, got {min(criterion_ids)}"
        )
    categories = categorical_filters(query_str(request, "categorical_filters"))
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        a = await experiment_store.get(conn, pid, a_id)
        b = await experiment_store.get(conn, pid, b_id)
        if criterion_ids is not None:
            await _check_criteria(conn, pid, criterion_ids, "criterion_ids")
        if categories is not None:
            columns: set[str] = set()
            for collection_id in {a["collection_id"], b["collection_id"]}:
                columns.update(await experiment_store.column_types(conn, collection_id))
            unknown = sorted(set(categories) - columns)
            if unknown:
                raise unprocessable(
                    f"categorical_filters names column {unknown[0]!r}, which the collections "
                    f"of experiments {a['name']!r} and {b['name']!r} do not have (columns: "
                    f"{', '.join(sorted(columns)) or 'none'})"
                )
        samples = await store.comparison_samples(
            conn,
            a_id,
            b_id,
            filter_samples_by=filter_by,
            criterion_ids=criterion_ids,
            categorical_filters=categories,
        )
    return json_response(samples)


@operation(
    response=s.ResponsesStats,
    query={
        "days": (
            Annotated[int, msgspec.Meta(ge=1, le=stats_store.MAX_DAYS)],
            f"UTC days ending today (default {DEFAULT_DAYS})",
        ),
        "llm_config_id": (Id, "the LLM config (default: responses without an LLM config)"),
    },
)
@routes.get(RESPONSES + "/stats")
async def response_stats(request: web.Request) -> web.Response:
    """Responses, durations, tokens and pass rate of the last days, in total and per UTC day,
    for one LLM config (default: the server's default LLM).

    Computed from the stored generation metadata of the project's responses created in the
    window; daily_usage has one entry per day of the window, oldest first.
    """
    days = query_int(request, "days", minimum=None)
    days = DEFAULT_DAYS if days is None else days
    if not 1 <= days <= stats_store.MAX_DAYS:
        raise unprocessable(
            f"query parameter 'days' must be from 1 to {stats_store.MAX_DAYS}, got {days}"
        )
    config_id = query_int(request, "llm_config_id")
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        if config_id is not None and not await stats_store.llm_config_exists(
            conn, pid, config_id
        ):
            raise not_found("LLM config", config_id)
        stats = await stats_store.response_stats(conn, pid, llm_config_id=config_id, days=days)
    return json_response(stats)


@operation(
    response=s.ExperimentMap,
    query={
        "page": (Id, "1-based page of rows (default 1)"),
        "limit": (
            Annotated[int, msgspec.Meta(ge=1, le=MAX_MAP_LIMIT)],
            f"rows per page (default {DEFAULT_MAP_LIMIT})",
        ),
    },
)
@routes.get(MAP)
async def experiment_map(request: web.Request) -> web.Response:
    """One page of the rows an experiment answered, with per-response metadata and no
    messages: epoch, error flag, trajectory figures and criteria passed and failed."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    page = query_int(request, "page") or 1
    limit = query_int(request, "limit")
    limit = DEFAULT_MAP_LIMIT if limit is None else limit
    if limit > MAX_MAP_LIMIT:
        raise unprocessable(
            f"query parameter 'limit' must be from 1 to {MAX_MAP_LIMIT}, got {limit}"
        )
    if page > MAX_INT // limit:
        raise unprocessable(
            f"query parameter 'page' must be at most {MAX_INT // limit} with limit {limit}, "
            f"got {page}"
        )
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        experiment = await experiment_store.get(conn, pid, experiment_id)
        mapped = await map_store.experiment_map(conn, experiment, page=page, limit=limit)
    return json_response(mapped)
