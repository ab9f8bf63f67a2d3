"""Rows -> wire structs (``elluminate.schemas``): pure functions, no queries.

A row is anything indexable by column name (``sqlite3.Row``, ``asyncpg.Record``); timestamps
may be ISO text or datetimes and flags integers or booleans (see :mod:`.connection`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from elluminate.schemas import (
    CollectionColumn,
    ColumnTypeEnum,
    InferenceType,
    LLMConfig,
    Organization,
    PromptTemplate,
    ReasoningEffort,
    Verbosity,
)

from .database import loads, ts


def raw(text: str | None) -> Any:
    """Stored JSON text passed through to the encoder unchanged (``None`` for SQL NULL)."""
    return None if text is None else msgspec.Raw(text)


def mask_secret(secret: str | None) -> str | None:
    """``"****"`` plus the last 4 characters (only for secrets of 12+ characters)."""
    if secret is None:
        return None
    if len(secret) >= 12:
        return "****" + secret[-4:]
    return "****"


# ---- row -> struct (no queries) -------------------------------------------------------


def organization_from_row(row: Any) -> Organization:
    return Organization(
        id=row["id"],
        name=row["name"],
        domain=row["domain"],
        stripe_subscription_id=row["stripe_subscription_id"],
        created_at=ts(row["created_at"]),
        updated_at=ts(row["updated_at"]),
    )


def prompt_template_from_row(row: Any) -> PromptTemplate:
    return PromptTemplate(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        messages=loads(row["messages"]),
        placeholders=loads(row["placeholders"]),
        response_format_json_schema=loads(row["response_format_json_schema"]),
        tools=loads(row["tools"]),
        tool_choice=loads(row["tool_choice"]),
        criterion_set_id=row["criterion_set_id"],
        created_at=ts(row["created_at"]),
        updated_at=ts(row["updated_at"]),
    )


def column_from_row(row: Any) -> CollectionColumn:
    return CollectionColumn(
        id=row["id"],
        name=row["name"],
        column_type=ColumnTypeEnum(row["column_type"]),
        default_value=row["default_value"],
        column_position=row["column_position"],
        categorical_values=loads(row["categorical_values"]),
    )


def llm_config_from_row(row: Any) -> LLMConfig:
    """An LLM config with its ``api_key`` masked (the full key is never returned)."""
    return LLMConfig(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        llm_model_name=row["llm_model_name"],
        llm_base_url=row["llm_base_url"],
        api_key=mask_secret(row["api_key"]),
        api_version=row["api_version"],
        max_connections=row["max_connections"],
        inference_type=InferenceType(row["inference_type"]),
        max_retries=row["max_retries"],
        timeout=row["timeout"],
        system_message=row["system_message"],
        max_tokens=row["max_tokens"],
        top_p=row["top_p"],
        temperature=row["temperature"],
        best_of=row["best_of"],
        top_k=row["top_k"],
        logprobs=None if row["logprobs"] is None else bool(row["logprobs"]),
        top_logprobs=row["top_logprobs"],
        reasoning_effort=(
            None if row["reasoning_effort"] is None else ReasoningEffort(row["reasoning_effort"])
        ),
        verbosity=None if row["verbosity"] is None else Verbosity(row["verbosity"]),
        custom_api_config=loads(row["custom_api_config"]),
        custom_response_parser=row["custom_response_parser"],
        input_price_per_mtok=row["input_price_per_mtok"],
        output_price_per_mtok=row["output_price_per_mtok"],
    )


