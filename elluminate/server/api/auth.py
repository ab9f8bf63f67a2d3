"""API keys: hashing, bootstrap of the default project, and the auth middleware.

Only the SHA-256 hash of a key is stored (plus a 4-character prefix for log lines). A key is
bound to exactly one project; a project-scoped path with another project's id answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from ..store.database import Database, now
from .errors import HTTPError

log = logging.getLogger("elluminate.server.api.auth")

#: Routes that need no key: (method or "*", path).
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/openapi.json"),
        ("HEAD", "/openapi.json"),
        ("*", "/api/v0/version/compatible"),
    }
)
KEY_PREFIX = "ell_"
#: The web viewer's paths (``elluminate.server.ui``): it checks its own sign-in (a session
#: cookie), so the middleware lets its routes through.
VIEWER_PREFIX = "/ui"


def is_viewer_path(path: str) -> bool:
    """True for ``/ui`` and the paths below it."""
    return path == VIEWER_PREFIX or path.startswith(VIEWER_PREFIX + "/")


def _is_viewer_route(request: web.Request) -> bool:
    """True if the router matched a route of the viewer (decided by the matched route, not by
    the request's path, so no spelling of a path can skip the key check of an API route)."""
    resource = request.match_info.route.resource
    return resource is not None and is_viewer_path(resource.canonical)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's project and organization."""

    api_key_id: int
    project_id: int
    organization_id: int


if hasattr(web, "RequestKey"):  # aiohttp >= 3.13
    PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("elluminate_principal", Principal)
else:  # pragma: no cover - older aiohttp: a plain string key
    PRINCIPAL_KEY = cast("web.RequestKey[Principal]", "elluminate_principal")


def hash_key(key: str) -> str:
    """Hex SHA-256 of an API key (what the database stores)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """A fresh random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hint(key: str) -> str:
    """A loggable hint of a key: at most its first 4 characters."""
    return key[:4] + "..."


def store_api_key(db: Database, project_id: int, key: str, *, bootstrap: bool = False) -> int:
    """Store the hash of ``key`` for ``project_id`` (inside a transaction)."""
    return db.insert(
        "INSERT INTO api_keys (project_id, key_hash, prefix, is_bootstrap, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (project_id, hash_key(key), key[:4], int(bootstrap), now()),
    )


def bootstrap(
    db: Database,
    *,
    api_key: str | None,
    project_name: str = "Default project",
    organization_name: str = "Default organization",
) -> str | None:
    """Create the default organization, project and bootstrap key if missing.

    ``api_key`` given: it becomes the bootstrap key (replacing a previous bootstrap key).
    Returns a newly generated key (to be shown once), or None.
    """
    generated: str | None = None
    with db.transaction():
        ts = now()
        org_id = db.fetchval("SELECT id FROM organizations ORDER BY id LIMIT 1")
        if org_id is None:
            org_id = db.insert(
                "INSERT INTO organizations (name, domain, created_at, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (organization_name, "localhost", ts, ts),
            )
        project_id = db.fetchval("SELECT id FROM projects WHERE is_default = 1 ORDER BY id LIMIT 1")
        if project_id is None:
            project_id = db.insert(
                "INSERT INTO projects (organization_id, name, description, is_default, "
                "created_at, updated_at) VALUES (?, ?, '', 1, ?, ?)",
                (org_id, project_name, ts, ts),
            )
            log.info("created default project %r (id %d)", project_name, project_id)
        current = db.fetchone(
            "SELECT id, key_hash FROM api_keys WHERE project_id = ? AND is_bootstrap = 1",
            (project_id,),
        )
        if api_key is not None:
            if current is None or not hmac.compare_digest(current["key_hash"], hash_key(api_key)):
                if current is not None:
                    db.execute("DELETE FROM api_keys WHERE id = ?", (current["id"],))
                db.execute("DELETE FROM api_keys WHERE key_hash = ?", (hash_key(api_key),))
                store_api_key(db, project_id, api_key, bootstrap=True)
                log.info("bootstrap API key %s set for project %d", key_hint(api_key), project_id)
        elif current is None:
            generated = new_api_key()
            store_api_key(db, project_id, generated, bootstrap=True)
            log.warning(
                "generated a new API key %s for project %d; it is shown only once",
                key_hint(generated),
                project_id,
            )
    return generated


def _presented_key(request: web.Request) -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate(db: Database, key: str) -> Principal | None:
    """The principal of ``key``, or None for an unknown key (constant-time hash compare)."""
    digest = hash_key(key)
    row = db.fetchone(
        "SELECT k.id, k.key_hash, k.project_id, p.organization_id FROM api_keys k "
        "JOIN projects p ON p.id = k.project_id WHERE k.key_hash = ?",
        (digest,),
    )
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    return Principal(row["id"], row["project_id"], row["organization_id"])


def make_auth_middleware(db_getter: Any) -> Any:
    """Middleware: require a valid key; bind the request to the key's project."""

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            (request.method, request.path) in PUBLIC_ROUTES
            or ("*", request.path) in PUBLIC_ROUTES
            or _is_viewer_route(request)
        ):
            response: web.StreamResponse = await handler(request)
            return response
        key = _presented_key(request)
        if key is None:
            raise HTTPError(
                401,
                "missing API key: send it in the X-API-Key header "
                "(or as Authorization: Bearer <key>)",
            )
        principal = authenticate(db_getter(request), key)
        if principal is None:
            raise HTTPError(401, "invalid API key: check the key (it is bound to one project)")
        request[PRINCIPAL_KEY] = principal
        raw_pid = request.match_info.get("project_id")
        if raw_pid is not None and _as_int(raw_pid) != principal.project_id:
            raise HTTPError(404, f"project {raw_pid} not found")
        response = await handler(request)
        return response

    return auth_middleware


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
