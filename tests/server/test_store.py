"""The storage layer: schema creation and migrations, and the async query API."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, update

from elluminate.server.store import schema as S
from elluminate.server.store.connection import ForeignKeyViolation, UniqueViolation
from elluminate.server.store.database import Database, ts, utcnow
from elluminate.server.store.migrate import HEAD, MIGRATIONS_DIR, alembic_upgrade

LEGACY_DB = Path(__file__).resolve().parents[1] / "golden" / "legacy-v1.db"


def sqlite_shape(path: Path) -> dict[str, Any]:
    """Tables with their columns (name, not null, pk), indexes (columns, unique, where),
    foreign keys and triggers."""
    conn = sqlite3.connect(path)
    try:
        shape: dict[str, Any] = {}
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in sorted(tables):
            columns = sorted(
                (r[1], bool(r[3]) or r[5] > 0, r[5])  # a key column is never NULL
                for r in conn.execute(f"PRAGMA table_info({table})")
            )
            indexes = {}
            for r in conn.execute(f"PRAGMA index_list({table})"):
                if r[1].startswith("sqlite_autoindex"):
                    continue
                cols = [c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")]
                sql = conn.execute(
                    "SELECT sql FROM sqlite_master WHERE name = ?", (r[1],)
                ).fetchone()[0]
                where = sql.split(" WHERE ", 1)[1].strip() if " WHERE " in sql else None
                indexes[r[1]] = (cols, bool(r[2]), where)
            fks = sorted(
                (r[3], r[2], r[4], r[6]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")
            )
            triggers = sorted(
                r[0]
                for r in conn.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                    (table,),
                )
            )
            shape[table] = {
                "columns": columns, "indexes": indexes, "fks": fks, "triggers": triggers
            }
        return shape
    finally:
        conn.close()


def test_head_is_the_newest_migration_script() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_a_new_database_equals_one_built_by_every_migration(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    db = Database(fresh)
    db.open()
    db.close()
    migrated = tmp_path / "migrated.db"
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{migrated}")
    with engine.connect() as conn:
        alembic_upgrade(conn)
    engine.dispose()
    assert sqlite_shape(fresh) == sqlite_shape(migrated)


def test_a_schema_1_file_migrates_to_the_same_schema_as_a_new_one(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    db = Database(fresh)
    db.open()
    db.close()
    old = tmp_path / "old.db"
    shutil.copy(LEGACY_DB, old)
    db = Database(old)
    db.open()
    try:
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.conn.execute("PRAGMA foreign_key_check").fetchone() is None
    finally:
        db.close()
    want, got = sqlite_shape(fresh), sqlite_shape(old)
    assert sorted(want) == sorted(got)
    for table in want:
        # column types and defaults may be spelled differently by the old DDL; names, NOT
        # NULL, keys, indexes and foreign keys must be the same
        assert want[table] == got[table], table


# ---- the async API -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The store on each database (PostgreSQL: a new database, see tests/conftest.py)."""
    if request.param == "sqlite":
        database = Database(tmp_path / "api.db")
        database.open()
        yield database
        database.close()
        return
    from elluminate.server.store.postgres import PostgresDatabase

    url = request.getfixturevalue("postgres_url")
    pg = PostgresDatabase(url)
    await pg.open()
    yield pg
    await pg.close()


ADD_ORG = insert(S.organizations).values(
    name=bindparam("name"), created_at=bindparam("ts"), updated_at=bindparam("ts")
).returning(S.organizations.c.id)
ORG_NAMES = select(S.organizations.c.name).where(
    S.organizations.c.id.in_(bindparam("ids", expanding=True))
).order_by(S.organizations.c.id)
COUNT_ORGS = select(func.count()).select_from(S.organizations)
RENAME = update(S.organizations).where(S.organizations.c.id == bindparam("id")).values(
    name=bindparam("name")
)


async def test_statements_run_with_parameters_lists_and_timestamps(db: Any) -> None:
    moment = utcnow()
    async with db.begin() as conn:
        ids = [await conn.insert(ADD_ORG, {"name": f"o{i}", "ts": moment}) for i in range(5)]
        assert await conn.execute(RENAME, {"id": ids[0], "name": "first"}) == 1
    async with db.connect() as conn:
        assert await conn.fetchval(COUNT_ORGS) == 5
        for chosen in ([], ids[:1], ids[:3], ids):
            rows = await conn.fetchall(ORG_NAMES, {"ids": chosen})
            assert [r["name"] for r in rows] == (["first", "o1", "o2", "o3", "o4"][: len(chosen)])
        row = await conn.fetchone(select(S.organizations).where(S.organizations.c.id == ids[1]))
        assert ts(row["created_at"]) == moment
        assert await conn.fetchone(ORG_NAMES, {"ids": [10**6]}) is None


async def test_in_lists_mix_with_other_parameters(db: Any) -> None:
    t = S.organizations
    stmt = select(t.c.name).where(
        t.c.name != bindparam("skip"),
        t.c.id.in_(bindparam("ids", expanding=True)),
        t.c.id <= bindparam("top"),
    ).order_by(t.c.id)
    async with db.begin() as conn:
        ids = [await conn.insert(ADD_ORG, {"name": f"o{i}", "ts": utcnow()}) for i in range(5)]
    async with db.connect() as conn:
        for chosen, want in ((ids, ["o0", "o2", "o3"]), (ids[:2], ["o0"]), ([], [])):
            rows = await conn.fetchall(stmt, {"skip": "o1", "ids": chosen, "top": ids[3]})
            assert [r["name"] for r in rows] == want


async def test_a_failing_block_rolls_back_and_constraint_errors_are_named(db: Any) -> None:
    with pytest.raises(ZeroDivisionError):
        async with db.begin() as conn:
            await conn.insert(ADD_ORG, {"name": "gone", "ts": utcnow()})
            1 / 0  # noqa: B018
    async with db.connect() as conn:
        assert await conn.fetchval(COUNT_ORGS) == 0
    add_project = insert(S.projects).values(
        organization_id=bindparam("org"), name="p", created_at=utcnow(), updated_at=utcnow()
    )
    with pytest.raises(ForeignKeyViolation):
        async with db.begin() as conn:
            await conn.execute(add_project, {"org": 999})
    async with db.begin() as conn:
        org = await conn.insert(ADD_ORG, {"name": "o", "ts": utcnow()})
        key = insert(S.api_keys).values(
            project_id=bindparam("pid"), key_hash="h", prefix="p", created_at=utcnow()
        )
        project = await conn.insert(add_project.returning(S.projects.c.id), {"org": org})
        await conn.execute(key, {"pid": project})
        with pytest.raises(UniqueViolation):
            async with conn.savepoint():
                await conn.execute(key, {"pid": project})
        assert await conn.fetchval(select(func.count()).select_from(S.api_keys)) == 1
        # one statement's constraint error inside statement_guard: the transaction goes on
        with pytest.raises(UniqueViolation):
            async with conn.statement_guard():
                await conn.execute(key, {"pid": project})
        await conn.insert(ADD_ORG, {"name": "after the guard", "ts": utcnow()})
    async with db.connect() as conn:
        assert await conn.fetchval(select(func.count()).select_from(S.api_keys)) == 1
        assert await conn.fetchval(COUNT_ORGS) == 2  # "o" and "after the guard" committed


async def test_notifications_come_after_commit(db: Any) -> None:
    heard: list[str] = []
    await db.listen("changes", heard.append)
    order: list[str] = []

    async def writer(name: str) -> None:
        async with db.begin() as conn:
            order.append(f"{name} in")
            conn.notify("changes", name)
            await conn.insert(ADD_ORG, {"name": name, "ts": utcnow()})
            await asyncio.sleep(0.01)  # a real await inside: the other block must wait
            assert heard.count(name) == 0
            order.append(f"{name} out")

    await asyncio.gather(writer("a"), writer("b"))
    if db.dialect_name == "sqlite":  # one connection: blocks are exclusive
        assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    for _ in range(200):  # PostgreSQL delivers on its listening connection, soon after
        if len(heard) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(heard) == ["a", "b"]


async def test_a_nested_block_in_the_same_task_joins_the_transaction(db: Database) -> None:
    if db.dialect_name != "sqlite":
        pytest.skip("joining is the single-connection SQLite store's rule")
    with pytest.raises(RuntimeError):
        async with db.begin() as outer:
            await outer.insert(ADD_ORG, {"name": "outer", "ts": utcnow()})
            async with db.begin() as inner:
                await inner.insert(ADD_ORG, {"name": "inner", "ts": utcnow()})
            async with db.connect() as reader:
                assert await reader.fetchval(COUNT_ORGS) == 2  # sees its own writes
            raise RuntimeError("roll back both")
    async with db.connect() as conn:
        assert await conn.fetchval(COUNT_ORGS) == 0


async def _postgres_shape(url: str) -> dict[str, Any]:
    import asyncpg

    from elluminate.server.store.postgres import dsn

    conn = await asyncpg.connect(dsn(url))
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, is_nullable, data_type FROM "
            "information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2"
        )
        indexes = await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() ORDER BY 1, 2"
        )
        return {
            "columns": [tuple(r) for r in columns],
            "indexes": [tuple(r) for r in indexes],
        }
    finally:
        await conn.close()


async def test_postgres_new_database_equals_one_built_by_every_migration(
    postgres_url: str,
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from elluminate.server.store.postgres import PostgresDatabase, dsn

    pg = PostgresDatabase(postgres_url)
    await pg.open()
    await pg.close()
    fresh = await _postgres_shape(postgres_url)
    engine = create_async_engine("postgresql+asyncpg://" + dsn(postgres_url).split("://", 1)[1])
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")
    async with engine.connect() as conn:
        await conn.run_sync(alembic_upgrade)
        await conn.commit()
    await engine.dispose()
    assert await _postgres_shape(postgres_url) == fresh
    assert any(c[3] == "timestamp with time zone" for c in fresh["columns"])


async def _pg_shape(url: str) -> dict[str, Any]:
    import asyncpg

    from elluminate.server.store.postgres import dsn

    conn = await asyncpg.connect(dsn(url))
    try:
        columns = sorted(
            tuple(r)
            for r in await conn.fetch(
                "SELECT table_name, column_name, is_nullable, data_type FROM "
                "information_schema.columns WHERE table_schema = current_schema()"
            )
        )
        triggers = sorted(
            tuple(r)
            for r in await conn.fetch(
                "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
            )
        )
        return {"columns": columns, "triggers": triggers}
    finally:
        await conn.close()


async def test_a_postgres_database_at_0002_migrates_to_the_schema_of_a_new_one(
    postgres_url: str, postgres_database: Any
) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import create_async_engine

    from elluminate.server.store.postgres import PostgresDatabase, dsn

    fresh = PostgresDatabase(postgres_url)
    await fresh.open()
    await fresh.close()
    with postgres_database() as old_url:
        def to_0002(connection: Any) -> None:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            command.upgrade(config, "0002")

        engine = create_async_engine("postgresql+asyncpg://" + dsn(old_url).split("://", 1)[1])
        try:
            async with engine.connect() as conn:
                await conn.run_sync(to_0002)
                await conn.commit()
        finally:
            await engine.dispose()
        old = PostgresDatabase(old_url)
        await old.open()  # upgrades to HEAD
        await old.close()
        want, got = await _pg_shape(postgres_url), await _pg_shape(old_url)
    assert ("tr_ratings_results", "ratings") in want["triggers"]
    assert want == got
