"""Flat exports of an experiment's responses: records, CSV, JSON Lines, pandas (pure)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import msgspec

from .schemas import Experiment


def experiment_records(experiment: Experiment) -> list[dict[str, Any]]:
    """One flat dict per (response, criterion) rating; a response without ratings gives one row."""
    records: list[dict[str, Any]] = []
    for response in experiment.rated_responses:
        base: dict[str, Any] = {
            "experiment": experiment.name,
            "response_id": response.id,
            "epoch": response.epoch,
            **{f"input.{k}": v for k, v in response.prompt.template_variables.input_values.items()},
            "response": response.response_str,
            "error": response.error,
        }
        if not response.ratings:
            records.append({**base, "criterion": None, "rating": None, "reasoning": None})
        for rating in response.ratings:
            records.append(
                {
                    **base,
                    "criterion": rating.criterion.criterion_str,
                    "rating": rating.rating.value,
                    "reasoning": rating.reasoning,
                }
            )
    return records


def write_csv(records: list[dict[str, Any]], path: str | Path | None = None) -> str:
    """Records as CSV (columns: the union of keys, in first-seen order); returns the text."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    text = buffer.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def write_jsonl(records: list[dict[str, Any]], path: str | Path | None = None) -> str:
    """Records as JSON Lines; returns the text."""
    encoder = msgspec.json.Encoder()
    text = "".join(encoder.encode(r).decode() + "\n" for r in records)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def to_dataframe(records: list[dict[str, Any]]) -> Any:
    """Records as a pandas DataFrame (ImportError names the missing package)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from None
    return pd.DataFrame.from_records(records)
