"""Request parsing, JSON responses and pagination helpers shared by all route modules."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from aiohttp import web
from sqlalchemy import Select

from ..config import ServerConfig
from ..engine.engine import TaskEngine
from ..store.common import named_list
from ..store.connection import Connection, Store
from ..store.pages import fetch_page
from ..store.projects import Principal
from .auth import PRINCIPAL_KEY
from .errors import HTTPError, not_found, unprocessable

if TYPE_CHECKING:
    from ..evaluation.registry import Providers

T = TypeVar("T")

DB_KEY: web.AppKey[Store] = web.AppKey("elluminate_db")
CONFIG_KEY: web.AppKey[ServerConfig] = web.AppKey("elluminate_config", ServerConfig)
PROVIDERS_KEY: web.AppKey[Providers] = web.AppKey("elluminate_providers")
ENGINE_KEY: web.AppKey[TaskEngine] = web.AppKey("elluminate_task_engine", TaskEngine)

MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
TOO_DEEP = "request body is nested too deeply: flatten its arrays/objects"
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_NONE_STRINGS = frozenset({"", "none", "null"})
_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")


# ---- request context --------------------------------------------------------------------


def get_db(request: web.Request) -> Store:
    """The server's database."""
    return request.app[DB_KEY]


def get_config(request: web.Request) -> ServerConfig:
    """The server's configuration."""
    return request.app[CONFIG_KEY]


def get_providers(request: web.Request) -> Providers:
    """The server's LLM providers (see :class:`elluminate.server.evaluation.registry.Providers`)."""
    return request.app[PROVIDERS_KEY]


def principal(request: web.Request) -> Principal:
    """The authenticated caller (set by the auth middleware)."""
    return request[PRINCIPAL_KEY]


def project_id(request: web.Request) -> int:
    """The caller's project id (the path's ``{project_id}`` is checked to match it)."""
    return request[PRINCIPAL_KEY].project_id


# ---- path and query parameters --------------------------------------------------------


def path_id(request: web.Request, name: str, kind: str | None = None) -> int:
    """A positive integer id from the path; anything else answers 404."""
    raw = request.match_info.get(name, "")
    value = _parse_int(raw)
    if value is None or value < 1 or value > MAX_INT:
        raise not_found(kind or name.removesuffix("_id").replace("_", " "), raw)
    return value


def _parse_int(text: str) -> int | None:
    text = text.strip()
    if not text or not re.fullmatch(r"[+-]?\d+", text):
        return None
    return int(text)


def query_int(request: web.Request, name: str, *, minimum: int | None = 1) -> int | None:
    """An optional integer query parameter; absent, empty, ``None`` or ``null`` give None."""
    raw = request.query.get(name)
    if raw is None or raw.strip().lower() in _NONE_STRINGS:
        return None
    value = _parse_int(raw)
    if value is None or abs(value) > MAX_INT:
        raise unprocessable(f"query parameter {name!r} must be an integer, got {raw!r}")
    if minimum is not None and value < minimum:
        raise unprocessable(f"query parameter {name!r} must be >= {minimum}, got {value}")
    return value


def query_ints(request: web.Request, name: str) -> list[int]:
    """A repeated integer query parameter (``name=1&name=2``); commas are accepted too."""
    values: list[int] = []
    for raw in request.query.getall(name, []):
        for part in raw.split(","):
            if part.strip().lower() in _NONE_STRINGS:
                continue
            value = _parse_int(part)
            if value is None or abs(value) > MAX_INT:
                raise unprocessable(f"query parameter {name!r} must be integers, got {raw!r}")
            values.append(value)
    return values


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter: true/false, 1/0, yes/no (case-insensitive)."""
    raw = request.query.get(name)
    if raw is None or raw.strip().lower() in _NONE_STRINGS:
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise unprocessable(f"query parameter {name!r} must be true or false, got {raw!r}")


def query_str(request: web.Request, name: str) -> str | None:
    """An optional string query parameter (absent gives None); 422 for a NUL character,
    which no database text can hold."""
    value = request.query.get(name)
    if value is not None and "\x00" in value:
        raise unprocessable(f"query parameter {name!r} must not contain NUL (\\0) characters")
    return value


def page_param(request: web.Request) -> int:
    """The 1-based ``page`` parameter (default 1); anything but an int >= 1 answers 422.

    The page's row offset must fit in 64 bits (SQLite's ``OFFSET``), so the largest page is
    ``MAX_INT // page_size``; such a page is empty anyway.
    """
    raw = request.query.get("page")
    if raw is None:
        return 1
    value = _parse_int(raw)
    if value is None or value < 1:
        raise unprocessable(f"query parameter 'page' must be an integer >= 1, got {raw!r}")
    largest = MAX_INT // get_config(request).page_size
    if value > largest:
        raise unprocessable(
            f"query parameter 'page' must be at most {largest} (pages hold "
            f"{get_config(request).page_size} items), got {raw!r}"
        )
    return value


# ---- bodies ---------------------------------------------------------------------------


async def read_raw_json(request: web.Request, *, allow_empty: bool = False) -> Any:
    """The decoded JSON body (422 with a precise message when it is not valid JSON)."""
    body = await request.read()
    if not body.strip():
        if allow_empty:
            return None
        raise unprocessable("request body is empty: send a JSON object")
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        hint = ""
        content_type = request.content_type
        if content_type not in ("application/json", "application/octet-stream", "text/plain") and (
            not content_type.endswith("+json")
        ):
            hint = f"; send it with Content-Type: application/json (got {content_type})"
        raise unprocessable(f"request body is not valid JSON: {exc}{hint}") from None
    except RecursionError:
        raise unprocessable(TOO_DEEP) from None
    check_int_range(data)
    if b"\\u0000" in body:
        check_no_nul(data)
    return data


def _first_nul(data: Any) -> str | None:
    """Path of the first string (key or value) holding a NUL character, else None."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return where.lstrip(".") or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return f"{where}.{key!r}".lstrip(".")
                stack.append((item, f"{where}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
    return None


def check_no_nul(data: Any, *, what: str = "") -> None:
    """422 naming the first text holding a NUL (\\u0000): no backend stores it alike
    (PostgreSQL cannot store it at all), so it is refused everywhere."""
    where = _first_nul(data)
    if where is not None:
        raise unprocessable(
            f"{what}the text at `{where}` contains a NUL (\\u0000) character; remove it "
            "(text values must not contain NUL characters)"
        )


def _first_out_of_range(data: Any) -> str | None:
    """Path of the first integer that SQLite cannot store (beyond 64 bits), else None.

    Iterative, so a deeply nested body cannot exhaust the stack.
    """
    stack: list[tuple[Any, Any, Any]] = [(data, None, None)]  # (value, parent entry, key)
    while stack:
        entry = stack.pop()
        value = entry[0]
        if isinstance(value, int):
            if MIN_INT <= value <= MAX_INT:
                continue
            parts: list[str] = []
            while entry[1] is not None:
                key = entry[2]
                parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
                entry = entry[1]
            return "".join(reversed(parts)).lstrip(".") or "body"
        if isinstance(value, dict):
            stack.extend((v, entry, k) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, entry, i) for i, v in enumerate(value))
    return None


def check_int_range(data: Any) -> None:
    """422 naming the first integer of a decoded body that does not fit in 64 bits."""
    where = _first_out_of_range(data)
    if where is not None:
        raise unprocessable(
            f"the integer at `{where}` is out of range: integers must be between "
            f"{MIN_INT} and {MAX_INT}"
        )


def convert(data: Any, type_: type[T], *, what: str = "request body") -> T:
    """Convert decoded JSON into a struct; 422 naming the field on mismatch."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise unprocessable(f"invalid {what}: {_describe(exc)}") from None


def _describe(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    match = _MSGSPEC_PATH.search(message)
    if match:
        field = match.group(1).lstrip(".") or "body"
        message = f"{message[: match.start()]} (at `{field}`)"
    return message


async def read_json(
    request: web.Request,
    type_: type[T],
    *,
    defaults: dict[str, Any] | None = None,
    prepare: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[T, dict[str, Any]]:
    """Decode a JSON object body into ``type_``.

    ``defaults`` fill keys the caller left out (the shared request structs require keys that
    the official SDK always sends); ``prepare`` may normalise the raw dict first. Returns the
    struct and the raw dict (to tell "absent" from "null").
    """
    data = await read_raw_json(request)
    if not isinstance(data, dict):
        raise unprocessable(f"request body must be a JSON object, got {_json_type(data)}")
    if defaults:
        for key, value in defaults.items():
            data.setdefault(key, value)
    if prepare is not None:
        prepare(data)
    return convert(data, type_), data


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return "an object"


def json_type_name(value: Any) -> str:
    """Human name of a JSON value's type (for error messages)."""
    return _json_type(value)


# ---- responses ------------------------------------------------------------------------


def json_response(obj: Any, status: int = 200) -> web.Response:
    """Encode ``obj`` (structs, dicts, lists, ...) with msgspec."""
    return web.Response(status=status, body=_encoder.encode(obj), content_type="application/json")


def no_content() -> web.Response:
    """204 without a body (DELETE answers)."""
    return web.Response(status=204)


class PageBody(msgspec.Struct):
    """``{"items": [...], "count": n}``."""

    items: Sequence[Any]
    count: int


async def page_response(
    request: web.Request,
    conn: Connection,
    stmt: Select[Any],
    params: dict[str, Any] | None,
    build: Callable[[list[Any]], Awaitable[Sequence[Any]]],
) -> web.Response:
    """Answer ``{"items", "count"}`` for the requested page of ``stmt`` (a statement built
    once, see :func:`elluminate.server.store.pages.fetch_page`); ``build`` turns the page's
    rows into wire objects."""
    rows, count = await fetch_page(
        conn, stmt, params, page=page_param(request), size=get_config(request).page_size
    )
    return json_response(PageBody(items=await build(rows), count=count))


async def named_page_response(
    request: web.Request,
    conn: Connection,
    table: str,
    build: Callable[[list[Any]], Awaitable[Sequence[Any]]],
) -> web.Response:
    """A page of the project's non-deleted rows of ``table``; ``name`` filters exactly."""
    params: dict[str, Any] = {"pid": project_id(request)}
    name = query_str(request, "name")
    if name is not None:
        params["name"] = name.strip()
    return await page_response(
        request, conn, named_list(table, name is not None), params, build
    )


def check_name(value: Any, *, what: str = "name", max_length: int = 255) -> str:
    """A stripped, non-empty name of at most ``max_length`` characters (else 422)."""
    if not isinstance(value, str):
        raise unprocessable(f"{what} must be a string")
    name = value.strip()
    if not name:
        raise unprocessable(f"{what} must not be empty")
    if "\x00" in name:
        raise unprocessable(f"{what} must not contain NUL (\\0) characters")
    if len(name) > max_length:
        raise unprocessable(f"{what} is {len(name)} characters long; the maximum is {max_length}")
    return name


__all__ = [
    "CONFIG_KEY",
    "DB_KEY",
    "ENGINE_KEY",
    "HTTPError",
    "PROVIDERS_KEY",
    "PageBody",
    "check_int_range",
    "check_name",
    "convert",
    "get_config",
    "get_db",
    "get_providers",
    "json_response",
    "json_type_name",
    "no_content",
    "page_param",
    "path_id",
    "principal",
    "project_id",
    "query_bool",
    "query_int",
    "query_ints",
    "query_str",
    "read_json",
    "read_raw_json",
]
