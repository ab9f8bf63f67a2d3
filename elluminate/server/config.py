"""Server configuration: one dataclass, filled by the CLI, by ``LocalServer`` or by tests."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

LLMKind = Literal["echo", "local", "openai"]
LLM_KINDS: tuple[str, ...] = ("echo", "local", "openai")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DB = "./elluminate.db"
DEFAULT_PAGE_SIZE = 100
DEFAULT_TASK_TIMEOUT = 36000.0
DEFAULT_MAX_CONCURRENCY: int | None = None  # None: by provider (local 1, openai 8, echo 256)
DEFAULT_MAX_QUEUED_TASKS = 1000
DEFAULT_CLIENT_MAX_SIZE = 32 * 1024 * 1024
DURABILITY_LEVELS: tuple[str, ...] = ("normal", "full")
DEFAULT_DURABILITY = "normal"
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_LLM_CACHE_TTL = 14 * 24 * 3600.0  # 14 days


def default_llm_kind() -> LLMKind:
    """``local`` when llama-cpp-python is importable, else ``echo``."""
    return "local" if importlib.util.find_spec("llama_cpp") is not None else "echo"


@dataclass
class ServerConfig:
    """Everything a server instance needs; every field has a sensible default.

    ``db_path`` is a SQLite file (``PATH`` or ``sqlite:///PATH``) or a PostgreSQL URL
    (``postgresql://USER:PASSWORD@HOST:PORT/DBNAME``). ``api_key`` fixes the bootstrap key
    of the default project (``None``: keep the stored one, or create a random one on first
    start and hand it to ``on_new_api_key``).
    ``llm`` is the server's default provider (``echo`` is deterministic, for tests only).
    """

    db_path: str | Path = DEFAULT_DB
    api_key: str | None = field(default=None, repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    llm: LLMKind = "echo"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    echo_latency: float = 0.0
    #: rate the criteria a deterministic check claims (language, digits, lists, length, ...)
    #: by that check and only the rest by the model; applies to the ``local`` provider only
    judge_checks: bool = True
    max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY
    task_timeout: float = DEFAULT_TASK_TIMEOUT
    max_queued_tasks: int = DEFAULT_MAX_QUEUED_TASKS
    page_size: int = DEFAULT_PAGE_SIZE
    log_level: str = "INFO"
    client_max_size: int = DEFAULT_CLIENT_MAX_SIZE
    default_project_name: str = "Default project"
    default_organization_name: str = "Default organization"
    #: SQLite commit durability: ``normal`` survives a crash of the server process (a kill),
    #: ``full`` also a power loss or an OS crash (each commit waits for the disk)
    durability: str = DEFAULT_DURABILITY
    #: said at start and in ``GET /`` when the server fell back to a provider nobody chose
    llm_notice: str | None = None
    #: seconds a replica holds a task without renewing before another may take it over
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    #: keep LLM answers in the database and answer identical calls from there (see
    #: ``evaluation/cache.py``); off by default: a repeated call then samples the model again
    llm_cache: bool = False
    #: seconds a cached LLM answer is used
    llm_cache_ttl: float = DEFAULT_LLM_CACHE_TTL
    #: called once with a freshly generated bootstrap key (the CLI prints it)
    on_new_api_key: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.llm not in LLM_KINDS:
            raise ValueError(f"llm must be one of {', '.join(LLM_KINDS)}, not {self.llm!r}")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if self.max_queued_tasks < 1:
            raise ValueError("max_queued_tasks must be at least 1")
        if self.task_timeout <= 0:
            raise ValueError("task_timeout must be positive")
        if self.echo_latency < 0:
            raise ValueError("echo_latency must not be negative")
        if self.llm_cache_ttl <= 0:
            raise ValueError("llm_cache_ttl must be positive")
        if self.lease_seconds < 1:
            raise ValueError("lease_seconds must be at least 1")
        if self.durability not in DURABILITY_LEVELS:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY_LEVELS)}, not {self.durability!r}"
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty")
