"""Response statistics (``GET @/responses/stats``, CONTRACT.md 4.9, 7.15), from the stored
generation metadata of the responses of the last days.

Definitions (documented for clients):

* the window is ``days`` UTC calendar days ending today (by the responses' ``created_at``):
  from 00:00 UTC of the day ``days - 1`` days before today to the end of today;
* the responses counted are the project's responses generated with the LLM config asked for,
  or, without one, those with no LLM config (the server's default LLM, and stored responses
  that named none); failed responses count as requests;
* token totals sum the stored counts (a response without counts adds nothing); the averages
  and the duration figures are over the responses that have the figure (``0.0`` / ``None``
  when none has);
* ``average_rating``: the fraction of YES among the successful ratings of those responses
  (``None`` when none is rated);
* ``daily_usage``: one entry per day of the window, oldest first, zeros included.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, select

from elluminate.schemas import DailyUsageStats, ResponsesStats

from . import schema as S
from .connection import Connection
from .database import ts, utcnow

_R, _G = S.responses, S.ratings
MAX_DAYS = 90


@cache
def _window(by_config: bool) -> Any:
    """The condition selecting the responses counted (``:pid``, ``:since``, ``:until``,
    ``:config_id``)."""
    config = (
        _R.c.llm_config_id == bindparam("config_id") if by_config else _R.c.llm_config_id.is_(None)
    )
    return and_(
        _R.c.project_id == bindparam("pid"),
        _R.c.created_at >= bindparam("since"),
        _R.c.created_at < bindparam("until"),
        config,
    )


@cache
def totals_statement(by_config: bool) -> Select[Any]:
    return select(
        func.count().label("total"),
        func.sum(_R.c.input_tokens).label("input_tokens"),
        func.sum(_R.c.output_tokens).label("output_tokens"),
        func.avg(_R.c.input_tokens).label("average_input_tokens"),
        func.avg(_R.c.output_tokens).label("average_output_tokens"),
        func.avg(_R.c.duration_seconds).label("average_duration"),
        func.min(_R.c.duration_seconds).label("min_duration"),
        func.max(_R.c.duration_seconds).label("max_duration"),
    ).where(_window(by_config))


@cache
def verdicts_statement(by_config: bool) -> Select[Any]:
    return (
        select(_G.c.rating, func.count().label("n"))
        .select_from(_G.join(_R, _R.c.id == _G.c.response_id))
        .where(_window(by_config), _G.c.rating.is_not(None))
        .group_by(_G.c.rating)
    )


@cache
def daily_statement(by_config: bool) -> Select[Any]:
    return select(_R.c.created_at, _R.c.input_tokens, _R.c.output_tokens).where(
        _window(by_config)
    )


LLM_CONFIG_OF_PROJECT = select(S.llm_configs.c.id).where(
    S.llm_configs.c.id == bindparam("id"), S.llm_configs.c.project_id == bindparam("pid")
)


async def llm_config_exists(conn: Connection, project_id: int, config_id: int) -> bool:
    """Whether the project has (or had: deleted ones count) this LLM config."""
    found = await conn.fetchval(LLM_CONFIG_OF_PROJECT, {"id": config_id, "pid": project_id})
    return found is not None


def window_start(days: int, now: datetime) -> datetime:
    """00:00 UTC of the first day of a window of ``days`` days ending on ``now``'s UTC day."""
    today = now.astimezone(timezone.utc).date()
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=timezone.utc)


def utc_day(value: str | datetime) -> date:
    """The UTC date of a stored timestamp (ISO text ending in ``Z`` on SQLite, a datetime on
    PostgreSQL)."""
    if isinstance(value, str) and value.endswith("Z"):
        return date.fromisoformat(value[:10])  # the store's form: no parse needed
    return ts(value).astimezone(timezone.utc).date()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)  # PostgreSQL: Decimal


async def response_stats(
    conn: Connection,
    project_id: int,
    *,
    llm_config_id: int | None,
    days: int,
    now: datetime | None = None,
) -> ResponsesStats:
    """The statistics of the project's responses of the last ``days`` days (1 to
    :data:`MAX_DAYS`) for ``llm_config_id`` (None: responses without an LLM config)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be from 1 to {MAX_DAYS}, not {days}")
    start = window_start(days, now or utcnow())
    by_config = llm_config_id is not None
    params: dict[str, Any] = {
        "pid": project_id,
        "since": start,
        "until": start + timedelta(days=days),  # 00:00 UTC tomorrow
    }
    if by_config:
        params["config_id"] = llm_config_id
    totals = await conn.fetchone(totals_statement(by_config), params)
    verdicts = {
        row["rating"]: int(row["n"])
        for row in await conn.fetchall(verdicts_statement(by_config), params)
    }
    first = start.date()
    usage = {
        first + timedelta(days=k): DailyUsageStats(date=first + timedelta(days=k))
        for k in range(days)
    }
    for created_at, input_tokens, output_tokens in await conn.fetchall(
        daily_statement(by_config), params
    ):
        day = usage[utc_day(created_at)]
        day.requests += 1
        day.input_tokens += int(input_tokens or 0)
        day.output_tokens += int(output_tokens or 0)
    rated = sum(verdicts.values())
    return ResponsesStats(
        total_responses=int(totals["total"] or 0),
        average_duration_seconds=_float(totals["average_duration"]),
        min_duration_seconds=_float(totals["min_duration"]),
        max_duration_seconds=_float(totals["max_duration"]),
        total_input_tokens=int(totals["input_tokens"] or 0),
        total_output_tokens=int(totals["output_tokens"] or 0),
        average_input_tokens=_float(totals["average_input_tokens"]) or 0.0,
        average_output_tokens=_float(totals["average_output_tokens"]) or 0.0,
        average_rating=verdicts.get("YES", 0) / rated if rated else None,
        daily_usage=list(usage.values()),
    )
