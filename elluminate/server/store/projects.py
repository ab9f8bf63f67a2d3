"""Organizations, projects and API keys.

Only the SHA-256 hash of a key is stored (plus its first 4 characters for log lines); a key
is bound to exactly one project.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, select

from . import schema as S
from .connection import Connection
from .database import utcnow

log = logging.getLogger("elluminate.server.store.projects")

KEY_PREFIX = "ell_"

_O, _P, _K = S.organizations, S.projects, S.api_keys
FIRST_ORGANIZATION = select(_O.c.id).order_by(_O.c.id).limit(1)
DEFAULT_PROJECT = select(_P.c.id).where(_P.c.is_default.is_(True)).order_by(_P.c.id).limit(1)
ADD_ORGANIZATION = (
    insert(_O)
    .values(name=bindparam("name"), domain="localhost", created_at=bindparam("ts"),
            updated_at=bindparam("ts"))
    .returning(_O.c.id)
)
ADD_PROJECT = (
    insert(_P)
    .values(
        organization_id=bindparam("org"),
        name=bindparam("name"),
        description=bindparam("description"),
        public_in_org=bindparam("public"),
        is_default=bindparam("default"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_P.c.id)
)
BOOTSTRAP_KEY = select(_K.c.id, _K.c.key_hash).where(
    _K.c.project_id == bindparam("pid"), _K.c.is_bootstrap.is_(True)
)
ADD_KEY = insert(_K).values(
    project_id=bindparam("pid"),
    key_hash=bindparam("hash"),
    prefix=bindparam("prefix"),
    is_bootstrap=bindparam("bootstrap"),
    created_at=bindparam("ts"),
)
DELETE_KEY = delete(_K).where(_K.c.id == bindparam("id"))
DELETE_KEY_HASH = delete(_K).where(_K.c.key_hash == bindparam("hash"))
#: PostgreSQL: replicas starting together bootstrap one after the other ("boot").
BOOTSTRAP_LOCK = select(func.pg_advisory_xact_lock(0x626F6F74))
PRINCIPAL = (
    select(_K.c.id, _K.c.key_hash, _K.c.project_id, _P.c.organization_id)
    .join(_P, _P.c.id == _K.c.project_id)
    .where(_K.c.key_hash == bindparam("hash"))
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's project and organization."""

    api_key_id: int
    project_id: int
    organization_id: int


def hash_key(key: str) -> str:
    """Hex SHA-256 of an API key (what the database stores)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """A fresh random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hint(key: str) -> str:
    """A loggable hint of a key: at most its first 4 characters."""
    return key[:4] + "..."


async def store_api_key(
    conn: Connection, project_id: int, key: str, *, bootstrap: bool = False
) -> None:
    """Store the hash of ``key`` for ``project_id`` (in the caller's transaction)."""
    await conn.execute(
        ADD_KEY,
        {
            "pid": project_id,
            "hash": hash_key(key),
            "prefix": key[:4],
            "bootstrap": bootstrap,
            "ts": utcnow(),
        },
    )


async def create_project(
    conn: Connection, organization_id: int, name: str, description: str, public_in_org: bool
) -> int:
    """A new (non-default) project of the organization; its id."""
    new_id: int = await conn.insert(
        ADD_PROJECT,
        {
            "org": organization_id,
            "name": name,
            "description": description,
            "public": public_in_org,
            "default": False,
            "ts": utcnow(),
        },
    )
    return new_id


async def bootstrap(
    conn: Connection,
    *,
    api_key: str | None,
    project_name: str = "Default project",
    organization_name: str = "Default organization",
) -> str | None:
    """Create the default organization, project and bootstrap key if missing (in the caller's
    transaction).

    ``api_key`` given: it becomes the bootstrap key (replacing a previous bootstrap key).
    Returns a newly generated key (to be shown once), or None.
    """
    moment = utcnow()
    if conn.dialect_name == "postgresql":
        await conn.fetchval(BOOTSTRAP_LOCK)
    org_id = await conn.fetchval(FIRST_ORGANIZATION)
    if org_id is None:
        org_id = await conn.insert(ADD_ORGANIZATION, {"name": organization_name, "ts": moment})
    project_id = await conn.fetchval(DEFAULT_PROJECT)
    if project_id is None:
        project_id = await conn.insert(
            ADD_PROJECT,
            {
                "org": org_id,
                "name": project_name,
                "description": "",
                "public": False,
                "default": True,
                "ts": moment,
            },
        )
        log.info("created default project %r (id %d)", project_name, project_id)
    current = await conn.fetchone(BOOTSTRAP_KEY, {"pid": project_id})
    if api_key is not None:
        if current is None or not hmac.compare_digest(current["key_hash"], hash_key(api_key)):
            if current is not None:
                await conn.execute(DELETE_KEY, {"id": current["id"]})
            await conn.execute(DELETE_KEY_HASH, {"hash": hash_key(api_key)})
            await store_api_key(conn, project_id, api_key, bootstrap=True)
            log.info("bootstrap API key %s set for project %d", key_hint(api_key), project_id)
        return None
    if current is not None:
        return None
    generated = new_api_key()
    await store_api_key(conn, project_id, generated, bootstrap=True)
    log.warning(
        "generated a new API key %s for project %d; it is shown only once",
        key_hint(generated),
        project_id,
    )
    return generated


async def authenticate(conn: Connection, key: str) -> Principal | None:
    """The principal of ``key``, or None for an unknown key (constant-time hash compare)."""
    digest = hash_key(key)
    row = await conn.fetchone(PRINCIPAL, {"hash": digest})
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    return Principal(row["id"], row["project_id"], row["organization_id"])
