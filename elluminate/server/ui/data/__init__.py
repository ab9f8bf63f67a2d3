"""The web viewer's only way to the data: one adapter over the store, the task engine and
the API's write paths.

Each function opens what it needs on the async store (``store.connect()`` for a page's reads,
one connection per page part; writes go through the API's own functions, which open their
transactions) and closes it before it returns. The viewer's handlers never see SQL, rows,
connections or the database; they get this package's dataclasses, built from the read model's
wire structs (:mod:`elluminate.server.store.views`,
:mod:`~elluminate.server.store.views_experiments`, :mod:`~elluminate.server.store.results`)
and from the viewer's own queries (:mod:`elluminate.server.store.ui_queries`). Live progress
comes from the task engine, whose state is in the database (any replica's runs). A
:class:`Source` is scoped to one project: no function reaches another project's objects
(they answer 404, as in the API).

Connections are never nested: on SQLite a read connection holds the store's one connection
until its block ends, so the engine (which opens its own) is asked after the block.

Layout, by page: :mod:`.source` (the :class:`Source`, :class:`Page`, sign-in),
:mod:`.experiments` (the list, an experiment, its run's actions), :mod:`.responses` (an
experiment's response table), :mod:`.comparison` (two experiments side by side) and
:mod:`.library` (prompt templates, collections, criterion sets). The names the viewer uses
are re-exported here: the handlers call ``data.<name>``.
"""

from __future__ import annotations

from .comparison import (
    Comparison,
    CriterionComparison,
    RowPair,
    compare,
)
from .experiments import (
    NOT_RUN,
    CriterionResult,
    ExperimentDetail,
    ExperimentFilters,
    ExperimentSummary,
    FilterOptions,
    Progress,
    Status,
    cancel_experiment,
    experiment_choices,
    experiment_detail,
    experiment_exists,
    experiment_list,
    retry_failed,
)
from .library import (
    CollectionDetail,
    CriterionSetDetail,
    Entry,
    TemplateDetail,
    TemplateName,
    collection_detail,
    collection_list,
    criterion_set_detail,
    criterion_set_list,
    template_detail,
    template_list,
)
from .responses import (
    RatingCell,
    ResponseFilters,
    ResponseRow,
    response_page,
)
from .source import (
    Page,
    Source,
    authenticate_key,
    project,
)

__all__ = [
    "CollectionDetail",
    "Comparison",
    "CriterionComparison",
    "CriterionResult",
    "CriterionSetDetail",
    "Entry",
    "ExperimentDetail",
    "ExperimentFilters",
    "ExperimentSummary",
    "FilterOptions",
    "NOT_RUN",
    "Page",
    "Progress",
    "RatingCell",
    "ResponseFilters",
    "ResponseRow",
    "RowPair",
    "Source",
    "Status",
    "TemplateDetail",
    "TemplateName",
    "authenticate_key",
    "cancel_experiment",
    "collection_detail",
    "collection_list",
    "compare",
    "criterion_set_detail",
    "criterion_set_list",
    "experiment_choices",
    "experiment_detail",
    "experiment_exists",
    "experiment_list",
    "project",
    "response_page",
    "retry_failed",
    "template_detail",
    "template_list",
]
