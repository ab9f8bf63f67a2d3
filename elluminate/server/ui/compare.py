"""Comparing two experiments row by row (pure: it works on verdict tuples, no I/O).

Rows are matched on (collection entry, epoch). Criteria are matched on their text, so two
experiments with different criterion sets that ask the same question are compared on it.
A matched row *differs* when a criterion that both experiments rate has another verdict
(``YES`` / ``NO`` / ``FAILED`` for a judge error / none) in the two, or when exactly one of
the two responses failed to generate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

#: (collection entry id, epoch): how two experiments' responses are paired.
RowKey = tuple[int, int]
FAILED = "FAILED"


@dataclass
class RowVerdicts:
    """One response of an experiment: its id, whether generation failed, and its verdict
    per criterion text."""

    response_id: int
    failed: bool
    verdicts: dict[str, str] = field(default_factory=dict)


def collect(
    rows: Iterable[tuple[int, int | None, int, int, int | None, str | None]],
    criterion_text: Callable[[int], str],
) -> dict[RowKey, RowVerdicts]:
    """Group ``(response_id, entry_id, epoch, failed, criterion_id, rating)`` tuples (one per
    rating; a response without ratings once, with ``None`` criterion) by row key, verdicts
    keyed by ``criterion_text(criterion_id)``; a ``None`` rating is a failed rating."""
    out: dict[RowKey, RowVerdicts] = {}
    texts: dict[int, str] = {}
    for response_id, entry_id, epoch, failed, criterion_id, rating in rows:
        if entry_id is None:
            continue
        key = (entry_id, epoch)
        found = out.get(key)
        if found is None:
            found = out[key] = RowVerdicts(response_id, bool(failed))
        if criterion_id is not None:
            text = texts.get(criterion_id)
            if text is None:
                text = texts[criterion_id] = criterion_text(criterion_id)
            found.verdicts[text] = rating if rating is not None else FAILED
    return out


@dataclass(frozen=True)
class RowDiff:
    """A matched row whose verdicts differ: both response ids and the differing criteria."""

    key: RowKey
    a_response_id: int
    b_response_id: int
    criteria: frozenset[str]
    generation: bool  # exactly one of the two failed to generate


@dataclass(frozen=True)
class RowComparison:
    """Row-level comparison of experiments A and B."""

    matched: int
    only_a: int
    only_b: int
    differing: list[RowDiff]


def compare_rows(
    a: dict[RowKey, RowVerdicts], b: dict[RowKey, RowVerdicts], common: Sequence[str]
) -> RowComparison:
    """Pair the rows of A and B and list those that differ (in A's response order)."""
    matched = [key for key in a if key in b]
    differing: list[RowDiff] = []
    for key in sorted(matched, key=lambda k: a[k].response_id):
        left, right = a[key], b[key]
        criteria = frozenset(
            text for text in common if left.verdicts.get(text) != right.verdicts.get(text)
        )
        generation = left.failed != right.failed
        if criteria or generation:
            differing.append(
                RowDiff(key, left.response_id, right.response_id, criteria, generation)
            )
    return RowComparison(
        matched=len(matched),
        only_a=sum(1 for key in a if key not in b),
        only_b=sum(1 for key in b if key not in a),
        differing=differing,
    )
