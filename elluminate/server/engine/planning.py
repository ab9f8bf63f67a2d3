"""An experiment run's setup and the work it has left, recomputed from the stored rows.

Because the plan is computed from what is stored (not from what a task remembers), a run
resumed by another replica, a retry-failed and a first run are the same code: they do what
is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..evaluation.judging import Criterion, applicable
from ..store import runs
from ..store.connection import Connection
from ..store.database import loads
from .task_context import TaskRejected


@dataclass
class Setup:
    """Everything an experiment run needs, loaded from the database."""

    experiment: Any
    template: Any
    template_messages: list[dict[str, Any]] | None
    rows: list[tuple[int, dict[str, Any]]]
    columns: list[tuple[str, str]]
    criteria: list[Criterion]
    llm_row: Any
    response_column: str | None
    n_epochs: int

    @property
    def id(self) -> int:
        return int(self.experiment["id"])


async def criteria_of_set(conn: Connection, set_id: int) -> list[Criterion]:
    """The live criteria of a criterion set, in set order."""
    return [Criterion(r[0], r[1], r[2]) for r in await runs.live_criteria(conn, set_id)]


async def load_setup(conn: Connection, project_id: int, experiment_id: int) -> Setup:
    """Load an experiment's template, rows, criteria and LLM config (TaskRejected if gone)."""
    exp = await runs.experiment(conn, project_id, experiment_id)
    if exp is None:
        raise TaskRejected(f"experiment {experiment_id} no longer exists")
    template = None
    if exp["prompt_template_id"] is not None:
        template = await runs.template(conn, exp["prompt_template_id"])
    rows = [(r[0], loads(r[1])) for r in await runs.live_rows(conn, exp["collection_id"])]
    response_column = None
    if exp["response_column_id"] is not None:
        response_column = await runs.column_name(conn, exp["response_column_id"])
    llm_row = None
    if exp["llm_config_id"] is not None:
        llm_row = await runs.llm_config(conn, exp["llm_config_id"])
    return Setup(
        experiment=exp,
        template=template,
        template_messages=None if template is None else loads(template["messages"]),
        rows=rows,
        columns=await runs.columns(conn, exp["collection_id"]),
        criteria=await criteria_of_set(conn, exp["criterion_set_id"]),
        llm_row=llm_row,
        response_column=response_column,
        n_epochs=1 if response_column is not None else max(1, int(exp["n_epochs"] or 1)),
    )


@dataclass
class Plan:
    """The work left in an experiment: rows x epochs to generate, responses to (re)rate."""

    generate: list[tuple[int, int]] = field(default_factory=list)  # (row id, epoch)
    rate: list[tuple[int, list[Criterion]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.generate) + len(self.rate)


async def plan_work(conn: Connection, setup: Setup) -> Plan:
    """What is missing: (row, epoch) pairs without a response, and responses without error
    that lack a successful rating for some applicable criterion."""
    have: set[tuple[int, int]] = set()
    ok: list[tuple[int, int]] = []  # (response id, row id)
    for r in await runs.responses(conn, setup.id):
        have.add((r[3], r[1]))
        if r[2] is None:
            ok.append((r[0], r[3]))
    plan = Plan()
    for row_id, _ in setup.rows:
        for epoch in range(1, setup.n_epochs + 1):
            if (row_id, epoch) not in have:
                plan.generate.append((row_id, epoch))
    if setup.criteria and ok:
        rated: dict[int, set[int]] = {}
        for r in await runs.rated_pairs(conn, setup.id):
            rated.setdefault(r[0], set()).add(r[1])
        for response_id, row_id in ok:
            done = rated.get(response_id, set())
            missing = [c for c in applicable(setup.criteria, row_id) if c.id not in done]
            if missing:
                plan.rate.append((response_id, missing))
    return plan
