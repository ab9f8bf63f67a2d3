"""Short, readable ``repr`` and notebook HTML for the wire objects (pure formatting).

A repr names the object and its key facts (id, name, status, counts, pass rate) in one line;
nested objects and long texts are summarised, never dumped. The full data stays in the
fields. The notebook view of an experiment adds its per-criterion pass-rate table.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schemas._wire import (
        Criterion,
        CriterionSet,
        Experiment,
        ExperimentResults,
        LLMConfig,
        PromptResponse,
        PromptTemplate,
        Rating,
        TemplateVariables,
        TemplateVariablesCollection,
    )

TEXT_LIMIT = 60


def short(text: Any, limit: int = TEXT_LIMIT) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters with an ellipsis."""
    value = text if isinstance(text, str) else str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return repr(value)


def percent(fraction: float) -> str:
    return f"{fraction:.1%}"


def line(obj: Any, parts: Iterable[tuple[str, Any]]) -> str:
    """``Name(key=value, ...)``, values already formatted as they should appear."""
    return f"{type(obj).__name__}({', '.join(f'{k}={v}' for k, v in parts)})"


# ---- experiments ------------------------------------------------------------------------------


def experiment_status(exp: Experiment) -> str:
    """``running``, ``failed`` (internal error), ``finished`` or ``created`` (never ran)."""
    if exp.generation_task_id is not None:
        return "running"
    if exp.has_internal_error:
        return "failed"
    results = exp.results
    if results is not None and (results.num_rated_responses or results.num_failed_responses):
        return "finished"
    return "created"


def experiment_repr(exp: Experiment) -> str:
    parts: list[tuple[str, Any]] = [
        ("id", exp.id),
        ("name", short(exp.name)),
        ("status", repr(experiment_status(exp))),
        ("responses", len(exp.rated_responses)),
    ]
    results = exp.results
    if results is not None:
        parts.append(("failed", results.num_failed_responses))
    parts.append(("criteria", len(exp.criterion_set.criteria or [])))
    if results is not None and results.num_rated_responses:
        parts.append(("pass_rate", percent(results.mean_all_ratings.yes)))
    return line(exp, parts)


def criterion_names(exp: Experiment) -> dict[int, str]:
    """Criterion id -> text, from the criterion set and from the loaded ratings."""
    names = {c.id: c.criterion_str for c in exp.criterion_set.criteria or []}
    for response in exp.rated_responses:
        for rating in response.ratings:
            names.setdefault(rating.criterion.id, rating.criterion.criterion_str)
    return names


def verdict_counts(exp: Experiment) -> dict[int, tuple[int, int]]:
    """Criterion id -> (yes, no) over the loaded ratings."""
    counts: dict[int, list[int]] = {}
    for response in exp.rated_responses:
        for rating in response.ratings:
            pair = counts.setdefault(rating.criterion.id, [0, 0])
            pair[0 if rating.rating.value == "YES" else 1] += 1
    return {cid: (yes, no) for cid, (yes, no) in counts.items()}


def criteria_table(
    rates: dict[int, float], names: dict[int, str], counts: dict[int, tuple[int, int]]
) -> str:
    """An HTML table: one row per criterion with its pass rate (and verdict counts)."""
    with_counts = bool(counts)
    head = "<th>Criterion</th><th>Pass rate</th>" + (
        "<th>Yes</th><th>No</th>" if with_counts else ""
    )
    rows = []
    for cid in sorted(set(rates) | set(counts)):
        rate = rates.get(cid)
        cells = [
            html.escape(names.get(cid, f"criterion {cid}")),
            percent(rate) if rate is not None else "–",
        ]
        if with_counts:
            yes, no = counts.get(cid, (0, 0))
            cells += [str(yes), str(no)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>No ratings yet.</p>"
    )


def experiment_html(exp: Experiment) -> str:
    results = exp.results
    facts = [experiment_status(exp), f"{len(exp.rated_responses)} responses loaded"]
    rates: dict[int, float] = {}
    if results is not None:
        facts.append(f"{results.num_rated_responses} rated, {results.num_failed_responses} failed")
        if results.num_rated_responses:
            facts.append(f"pass rate {percent(results.mean_all_ratings.yes)}")
        rates = {cid: mean.yes for cid, mean in results.mean_rating_by_criterion_id.items()}
    title = f"Experiment {exp.id}: {html.escape(exp.name)}"
    table = criteria_table(rates, criterion_names(exp), verdict_counts(exp))
    return f"<div><strong>{title}</strong><br>{html.escape(', '.join(facts))}{table}</div>"


def results_repr(results: ExperimentResults) -> str:
    parts: list[tuple[str, Any]] = [
        ("pass_rate", percent(results.mean_all_ratings.yes)),
        ("rated", results.num_rated_responses),
        ("failed", results.num_failed_responses),
        ("criteria", len(results.mean_rating_by_criterion_id)),
    ]
    return line(results, parts)


def results_html(results: ExperimentResults) -> str:
    rates = {cid: mean.yes for cid, mean in results.mean_rating_by_criterion_id.items()}
    summary = (
        f"pass rate {percent(results.mean_all_ratings.yes)}, "
        f"{results.num_rated_responses} rated, {results.num_failed_responses} failed"
    )
    return f"<div><strong>Results</strong><br>{summary}{criteria_table(rates, {}, {})}</div>"


# ---- the other objects ------------------------------------------------------------------------


def template_repr(template: PromptTemplate) -> str:
    return line(
        template,
        [
            ("id", template.id),
            ("name", short(template.name)),
            ("version", template.version),
            ("placeholders", sorted(template.placeholders)),
            ("messages", len(template.messages)),
        ],
    )


def collection_repr(collection: TemplateVariablesCollection) -> str:
    entries = getattr(collection, "variables", None)
    return line(
        collection,
        [
            ("id", collection.id),
            ("name", short(collection.name)),
            ("entries", len(entries) if entries is not None else collection.variables_count),
            ("columns", [c.name for c in collection.columns]),
        ],
    )


def entry_repr(entry: TemplateVariables) -> str:
    values = {k: short(v, 40) for k, v in list(entry.input_values.items())[:6]}
    more = len(entry.input_values) - len(values)
    text = "{" + ", ".join(f"{k!r}: {v}" for k, v in values.items()) + (", …" if more else "") + "}"
    return line(entry, [("id", entry.id), ("input_values", text)])


def criterion_repr(criterion: Criterion) -> str:
    parts: list[tuple[str, Any]] = [
        ("id", criterion.id),
        ("criterion_str", short(criterion.criterion_str)),
    ]
    if criterion.label is not None:
        parts.append(("label", short(criterion.label)))
    return line(criterion, parts)


def criterion_set_repr(criterion_set: CriterionSet) -> str:
    return line(
        criterion_set,
        [
            ("id", criterion_set.id),
            ("name", short(criterion_set.name)),
            ("criteria", len(criterion_set.criteria or [])),
            ("templates", len(criterion_set.linked_prompt_templates or [])),
        ],
    )


def llm_config_repr(config: LLMConfig) -> str:
    return line(
        config,
        [
            ("id", config.id),
            ("name", short(config.name) if config.name is not None else None),
            ("llm_model_name", short(config.llm_model_name) if config.llm_model_name else None),
            ("inference_type", repr(config.inference_type.value)),
        ],
    )


def response_repr(response: PromptResponse) -> str:
    passed = sum(r.rating.value == "YES" for r in response.ratings)
    parts: list[tuple[str, Any]] = [
        ("id", response.id),
        ("epoch", response.epoch),
        ("response", short(response.response_str)),
        ("ratings", len(response.ratings)),
        ("passed", passed),
    ]
    if response.error:
        parts.append(("error", short(response.error)))
    return line(response, parts)


def rating_repr(rating: Rating) -> str:
    parts: list[tuple[str, Any]] = [
        ("id", rating.id),
        ("rating", repr(rating.rating.value)),
        ("criterion", short(rating.criterion.criterion_str)),
    ]
    if rating.reasoning:
        parts.append(("reasoning", short(rating.reasoning)))
    return line(rating, parts)
