"""LLM configs: names unique among a project's live configs; the ``api_key`` is stored as given
(answers mask it, see :func:`~.serializers.llm_config_from_row`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, insert

from . import schema as S
from .common import delete_or_hide, insert_unique_name, lock_live_row
from .connection import Connection
from .database import utcnow

_LC = S.llm_configs

#: The columns a create request sets (each a parameter of the same name).
COLUMNS = (
    "name",
    "description",
    "llm_model_name",
    "llm_base_url",
    "api_key",
    "api_version",
    "max_connections",
    "inference_type",
    "max_retries",
    "timeout",
    "system_message",
    "max_tokens",
    "top_p",
    "temperature",
    "best_of",
    "top_k",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
    "verbosity",
    "custom_api_config",
    "custom_response_parser",
    "input_price_per_mtok",
    "output_price_per_mtok",
)

INSERT_CONFIG = (
    insert(_LC)
    .values(
        project_id=bindparam("pid"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
        **{column: bindparam(column) for column in COLUMNS},
    )
    .returning(_LC.c.id)
)


async def create_llm_config(conn: Connection, pid: int, values: Mapping[str, Any]) -> int:
    """A new config from column ``values`` (every name of :data:`COLUMNS`, typed like its
    column: JSON as text, enums as their values); its id. NameTaken when a live config
    already has the name. In the caller's transaction."""
    return await insert_unique_name(
        conn, "llm_configs", INSERT_CONFIG, {**values, "pid": pid, "ts": utcnow()}
    )


async def delete_llm_config(conn: Connection, pid: int, config_id: int) -> None:
    """Delete a config (hidden while experiments or responses use it); NotFound if missing."""
    await lock_live_row(conn, "llm_configs", "LLM config", pid, config_id)
    await delete_or_hide(conn, "llm_configs", config_id)
