"""The API's routes, found by the shape of the path instead of one regular expression at a time.

aiohttp indexes resources by the static part of their path before the first ``{``. Every route
of this API starts with ``/api/v0/projects/{project_id}/``, so all of them land in one bucket
of that index, and each request tried the regular expressions of up to 64 resources in turn:
about 90 µs per request, a quarter of a small GET's time. :class:`ShapeIndexedResources` holds
those resources and looks a request up by its number of path segments and its first literal
segment after the project id (``prompt_templates``, ``experiments``, ...), then lets aiohttp's
own resources match the few candidates in registration order, so matching, ``405`` answers and
``match_info`` are exactly aiohttp's. (No maintained library indexes dynamic-prefix routes for
aiohttp; its own index does not, see aio-libs/aiohttp#7829.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sized
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import (
    AbstractResource,
    AbstractRoute,
    UrlDispatcher,
    UrlMappingMatchInfo,
)
from yarl import URL

#: Variable patterns that match within one path segment (aiohttp's default, and digits).
ONE_SEGMENT_PATTERNS = frozenset({"[^{}/]+", r"\d+"})
_VARIABLE = re.compile(r"\(\?P<\w+>(.*?)\)(?=/|$)")


def _shape(resource: AbstractResource, key: int) -> tuple[int, str] | None:
    """``(segment count, the literal of segment key)`` of a resource's path, or ``None`` when
    that cannot be told from the path (a variable that may span segments or sits at the key
    segment): such a resource is tried for every request."""
    info = resource.get_info()
    pattern = info.get("pattern")
    if pattern is not None:
        variables = _VARIABLE.findall(pattern.pattern)
        if len(variables) != pattern.groups or not set(variables) <= ONE_SEGMENT_PATTERNS:
            return None
    parts = resource.canonical.split("/")
    if len(parts) <= key:
        return (len(parts), "")
    literal = parts[key]
    return None if "{" in literal else (len(parts), literal)


def _order(entry: tuple[int, AbstractResource]) -> int:
    return entry[0]


class ShapeIndexedResources(AbstractResource):
    """Resources below one prefix, looked up by path shape (see the module docstring).

    The key segment is the one right after the prefix: for ``/api/v0/projects/{project_id}``,
    the ``prompt_templates`` of ``/api/v0/projects/1/prompt_templates/7``.
    """

    def __init__(self, prefix: str, resources: Iterable[AbstractResource]) -> None:
        super().__init__()
        self._prefix = prefix
        self._key = prefix.count("/") + 1
        self._resources = list(resources)
        self._always: list[tuple[int, AbstractResource]] = []
        self._index: dict[tuple[int, str], list[AbstractResource]] = {}
        indexed: dict[tuple[int, str], list[tuple[int, AbstractResource]]] = {}
        for order, resource in enumerate(self._resources):
            shape = _shape(resource, self._key)
            if shape is None:
                self._always.append((order, resource))
            else:
                indexed.setdefault(shape, []).append((order, resource))
        for shape, entries in indexed.items():  # registration order, the always-tried included
            self._index[shape] = [r for _, r in sorted([*entries, *self._always], key=_order)]
        self._unindexed = [resource for _, resource in self._always]

    @property
    def canonical(self) -> str:
        return self._prefix

    def url_for(self, **kwargs: str) -> URL:
        raise NotImplementedError("build URLs from the resources themselves")

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("the API's routes are registered at the application's root")

    def get_info(self) -> dict[str, Any]:  # type: ignore[override]
        return {"prefix": self._prefix, "resources": len(self._resources)}

    def raw_match(self, path: str) -> bool:
        return any(resource.raw_match(path) for resource in self._resources)

    def freeze(self) -> None:
        for resource in self._resources:
            resource.freeze()

    async def resolve(self, request: web.Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        path = request.rel_url.path_safe
        parts = path.split("/", self._key + 1)
        literal = parts[self._key] if len(parts) > self._key else ""
        count = path.count("/") + 1
        candidates = self._index.get((count, literal), self._unindexed)
        allowed: set[str] = set()
        for resource in candidates:
            match, methods = await resource.resolve(request)
            if match is not None:
                return match, methods
            allowed |= methods
        return None, allowed

    def __len__(self) -> int:
        return sum(len(resource) for resource in self._resources if isinstance(resource, Sized))

    def __iter__(self) -> Iterator[AbstractRoute]:
        for resource in self._resources:
            yield from resource  # type: ignore[misc]


def add_routes(app: web.Application, prefix: str, tables: Iterable[web.RouteTableDef]) -> None:
    """Register the routes of ``tables``: the ones below ``prefix`` as one shape-indexed
    resource, the others as usual.

    The routes are first built by a scratch dispatcher, so ``add_get`` and the rest behave as
    always (``HEAD`` next to ``GET``, aiohttp's path parsing); only their lookup changes.
    """
    scratch = UrlDispatcher()
    for table in tables:
        scratch.add_routes(table)
    below: list[AbstractResource] = []
    for resource in scratch.resources():
        if resource.canonical.startswith(prefix + "/") or resource.canonical == prefix:
            below.append(resource)
        else:
            app.router.register_resource(resource)
    if below:
        app.router.register_resource(ShapeIndexedResources(prefix, below))
