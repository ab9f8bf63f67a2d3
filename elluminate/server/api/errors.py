"""HTTP errors with ``{"detail": ...}`` bodies, and the middleware that renders every error."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aiohttp import web

from ..store.errors import NotFound, TextNotStorable

log = logging.getLogger("elluminate.server.api.errors")


class HTTPError(Exception):
    """An error answer: ``status`` plus a ``detail`` message (and optional extra body keys)."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


def bad_request(detail: str, **extra: Any) -> HTTPError:
    """400: semantically wrong input."""
    return HTTPError(400, detail, **extra)


def unprocessable(detail: str, **extra: Any) -> HTTPError:
    """422: malformed input (types, missing fields, invalid values)."""
    return HTTPError(422, detail, **extra)


def not_found(kind: str, ident: object) -> HTTPError:
    """404 for an object that does not exist in the caller's project (the same message as
    the store's :class:`~elluminate.server.store.errors.NotFound`)."""
    return HTTPError(404, str(NotFound(kind, ident)))


def conflict(detail: str, **extra: Any) -> HTTPError:
    """409: the object exists already (extra keys, e.g. its id, go into the body)."""
    return HTTPError(409, detail, **extra)


def bad_gateway(detail: str) -> HTTPError:
    """502: the LLM provider failed."""
    return HTTPError(502, detail)


def error_response(status: int, body: dict[str, Any], headers: Any = None) -> web.Response:
    """A JSON error answer."""
    return web.Response(
        status=status,
        body=msgspec.json.encode(body),
        content_type="application/json",
        headers=headers,
    )


def _http_exception_detail(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPNotFound):
        return f"not found: no route for {request.method} {request.path}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"method {request.method} is not allowed for {request.path}; allowed: {allowed}"
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return (
            f"request body too large (limit {request.client_max_size} bytes); "
            "send smaller requests or batches"
        )
    return exc.reason or f"HTTP {exc.status}"


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn every failure into ``{"detail": ...}``; never leak a traceback to the client."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except HTTPError as exc:
        return error_response(exc.status, exc.body())
    except NotFound as exc:
        return error_response(404, {"detail": str(exc)})
    except TextNotStorable:
        return error_response(
            422, {"detail": "text values must not contain NUL (\\u0000) characters"}
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(
            exc.status, {"detail": _http_exception_detail(request, exc)}, headers
        )
    except msgspec.ValidationError as exc:
        return error_response(422, {"detail": f"invalid request: {exc}"})
    except RecursionError:  # only deeply nested input gets here (JSON bodies, query JSON)
        log.warning("request %s %s is nested too deeply", request.method, request.path)
        return error_response(
            422, {"detail": "request is nested too deeply: flatten its JSON arrays/objects"}
        )
    except Exception:
        log.exception("unexpected error while handling %s %s", request.method, request.path)
        return error_response(500, {"detail": "internal error"})
