"""``elluminate-server`` / ``python -m elluminate.server``: run the server.

Every flag has an environment variable ``ELLUMINATE_SERVER_<FLAG>`` (e.g.
``ELLUMINATE_SERVER_PORT``); a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .config import (
    DEFAULT_DB,
    DEFAULT_DURABILITY,
    DEFAULT_HOST,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_QUEUED_TASKS,
    DEFAULT_PAGE_SIZE,
    DEFAULT_PORT,
    DEFAULT_TASK_TIMEOUT,
    DURABILITY_LEVELS,
    LLM_KINDS,
    ServerConfig,
    default_llm_kind,
)

log = logging.getLogger("elluminate.server.cli")

ENV_PREFIX = "ELLUMINATE_SERVER_"

def on_off(raw: str) -> bool:
    """``on``/``off`` (also ``true``/``false``, ``1``/``0``, ``yes``/``no``) -> bool."""
    value = raw.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"expected on or off, not {raw!r}")


#: (flag, ServerConfig field, type, default, help)
_OPTIONS: list[tuple[str, str, Any, Any, str]] = [
    ("--host", "host", str, DEFAULT_HOST, "interface to listen on"),
    ("--port", "port", int, DEFAULT_PORT, "TCP port"),
    ("--db", "db_path", str, DEFAULT_DB,
     "the database: a SQLite file (PATH or sqlite:///PATH, created if missing; one server per "
     "file) or PostgreSQL (postgresql://USER:PASSWORD@HOST:PORT/DBNAME; any number of "
     "replicas)"),
    ("--api-key", "api_key", str, None,
     "bootstrap API key of the default project (default: keep the stored one, or generate "
     "one on first start and print it once)"),
    ("--llm", "llm", str, None,
     "default LLM provider: echo (deterministic, for tests), local (llama-cpp model on the "
     "CPU) or openai (any OpenAI-compatible endpoint); default: local if llama_cpp is "
     "installed, else echo"),
    ("--llm-base-url", "llm_base_url", str, None, "base URL of the openai provider"),
    ("--llm-model", "llm_model", str, None, "model name for the provider"),
    ("--llm-api-key", "llm_api_key", str, None, "API key of the openai provider"),
    ("--echo-latency", "echo_latency", float, 0.0, "seconds the echo provider waits per call"),
    ("--judge-checks", "judge_checks", on_off, True,
     "on: with --llm local, criteria a deterministic check can decide (language, digits, "
     "lists, JSON, length, questions, refusals, rude words, a name to mention) are rated by "
     "that check, the rest by the model; off: the model rates every criterion"),
    ("--llm-cache", "llm_cache", "bool", False,
     "answer an LLM call identical to an earlier one (same provider, model, parameters, "
     "messages and epoch) from the database instead of calling the provider; off by default, "
     "since a repeated experiment then shows the same answers instead of new samples"),
    ("--llm-cache-ttl", "llm_cache_ttl", "duration", "14d",
     "how long a cached LLM answer is used: seconds, or a number with s, m, h or d"),
    ("--max-concurrency", "max_concurrency", int, DEFAULT_MAX_CONCURRENCY,
     "concurrent LLM calls of all background tasks together (default: by provider: "
     "local 1, openai 8, echo 256)"),
    ("--task-timeout", "task_timeout", float, DEFAULT_TASK_TIMEOUT,
     "seconds before a background task ends as TIMEOUT"),
    ("--max-queued-tasks", "max_queued_tasks", int, DEFAULT_MAX_QUEUED_TASKS,
     "unfinished background tasks allowed at once; a task submitted beyond that ends "
     "REJECTED (queue full)"),
    ("--page-size", "page_size", int, DEFAULT_PAGE_SIZE, "items per page of list endpoints"),
    ("--lease-seconds", "lease_seconds", float, DEFAULT_LEASE_SECONDS,
     "seconds a replica holds a task without renewing it before another takes it over"),
    ("--durability", "durability", str, DEFAULT_DURABILITY,
     "SQLite commits: normal (survive a killed server; a power loss may lose the last "
     "commits) or full (also survive a power loss; every commit waits for the disk)"),
    ("--log-level", "log_level", str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
]

#: Said at start and in ``GET /`` when nobody chose the echo provider.
ECHO_FALLBACK_NOTICE = (
    "no --llm was given and llama-cpp-python is not installed, so generations and ratings "
    "come from the deterministic echo provider (a test double, not a model); install "
    "elluminate[local] or pass --llm openai --llm-base-url ... for real ones"
)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_bool(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not a yes/no value (use true or false)")


def parse_duration(raw: str) -> float:
    """Seconds from ``3600``, ``90s``, ``30m``, ``12h`` or ``14d`` (positive)."""
    text = raw.strip().lower()
    factor = _UNITS.get(text[-1:], None)
    number = text[:-1] if factor is not None else text
    try:
        seconds = float(number) * (factor or 1.0)
    except ValueError:
        raise ValueError(
            f"{raw!r} is not a duration (seconds, or a number with s, m, h or d: 14d)"
        ) from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{raw!r} is not a positive duration")
    return seconds


_TYPES: dict[Any, Any] = {"bool": parse_bool, "duration": parse_duration}


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (defaults are resolved later, so the environment can fill in)."""
    parser = argparse.ArgumentParser(
        prog="elluminate-server",
        description="Run the self-hosted elluminate server (aiohttp; SQLite or PostgreSQL). "
        "Every flag can "
        f"also be set with an environment variable {ENV_PREFIX}<FLAG>, e.g. "
        f"{ENV_PREFIX}PORT; the flag wins.",
    )
    for flag, dest, type_, default, help_text in _OPTIONS:
        kwargs: dict[str, Any] = {"dest": dest, "type": _TYPES.get(type_, type_), "default": None}
        if type_ == "bool":  # ``--llm-cache`` alone means yes; ``--llm-cache false`` no
            kwargs.update(nargs="?", const=True, metavar="BOOL")
        if flag == "--llm":
            kwargs["choices"] = LLM_KINDS
        elif flag == "--durability":
            kwargs["choices"] = DURABILITY_LEVELS
        if type_ is on_off:
            kwargs["metavar"] = "{on,off}"
            default = "on" if default else "off"
        shown = "" if default is None else f" (default: {default})"
        parser.add_argument(flag, help=f"{help_text}{shown} [env {_env_name(flag)}]", **kwargs)
    return parser


def config_from_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """Flags, then ``ELLUMINATE_SERVER_*`` variables, then defaults -> a ServerConfig."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for flag, dest, type_, default, _ in _OPTIONS:
        value = getattr(args, dest)
        convert = _TYPES.get(type_, type_)
        if value is None:
            raw = environ.get(_env_name(flag))
            if raw is not None and raw != "":
                try:
                    value = convert(raw)
                except ValueError as exc:
                    what = type_ if isinstance(type_, str) else type_.__name__
                    what = "on or off" if type_ is on_off else f"a valid {what}"
                    parser.error(f"{_env_name(flag)}={raw!r} is not {what}: {exc}")
        if value is None:
            value = convert(default) if isinstance(default, str) and convert is not str else default
        values[dest] = value
    if values["llm"] is None:
        values["llm"] = default_llm_kind()
        if values["llm"] == "echo":
            values["llm_notice"] = ECHO_FALLBACK_NOTICE
    elif values["llm"] not in LLM_KINDS:
        parser.error(f"{_env_name('--llm')} must be one of {', '.join(LLM_KINDS)}")
    values["log_level"] = str(values["log_level"]).upper()
    try:
        return ServerConfig(**values)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits


def _print_new_key(key: str) -> None:
    print(
        "\nA new API key was created for the default project. It is shown only this once;\n"
        "store it now (only its hash is kept):\n\n"
        f"    ELLUMINATE_API_KEY={key}\n",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted."""
    config = config_from_args(argv)
    logging.basicConfig(
        level=getattr(logging, config.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from aiohttp import web

    from .app import create_app
    from .store.file_lock import DatabaseInUseError

    config.on_new_api_key = _print_new_key
    if config.llm_notice:
        log.warning("%s", config.llm_notice)
    else:
        log.info(
            "default LLM provider: %s%s",
            config.llm,
            " (deterministic echo, for tests and dry runs)" if config.llm == "echo" else "",
        )
    app = create_app(config)
    url = f"http://{config.host}:{config.port}"
    # The modules and the app live as long as the process: moved out of the collector's
    # generations, they are not walked again by every collection that requests trigger.
    gc.collect()
    gc.freeze()
    try:
        web.run_app(
            app,
            host=config.host,
            port=config.port,
            access_log=None,
            print=lambda _msg: print(f"elluminate server listening on {url}", flush=True),
        )
    except DatabaseInUseError as exc:  # raised on start-up, before anything was written
        print(f"elluminate-server: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
