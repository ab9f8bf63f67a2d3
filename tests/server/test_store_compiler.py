"""Statements compiled once per dialect (``server/store/compiler.py``): the SQL and the
positional arguments match what SQLAlchemy itself would send, for plain parameters, IN lists,
literal values and types with a bind processor."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from elluminate.server.store.compiler import StatementCache

meta = MetaData()
items = Table(
    "items", meta,
    Column("id", Integer, primary_key=True),
    Column("name", Text),
    Column("flag", Boolean),
    Column("seen", DateTime),
)

PLAIN = select(items.c.id).where(items.c.name == bindparam("name"), items.c.id > bindparam("low"))
IN_LIST = select(items.c.id).where(items.c.id.in_(bindparam("ids", expanding=True)))
LITERAL = select(items.c.id).where(items.c.name == "fixed", items.c.id == bindparam("id"))
FLAG = update(items).where(items.c.id == bindparam("id")).values(flag=bindparam("flag"))


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, flag BOOLEAN, seen TEXT)")
    conn.executemany("INSERT INTO items (id, name, flag) VALUES (?, ?, 0)",
                     [(i, "fixed" if i % 2 else f"n{i}") for i in range(1, 21)])
    return conn


def run(
    db: sqlite3.Connection, cache: StatementCache, stmt: Any, params: dict[str, Any]
) -> list[Any]:
    compiled = cache.compiled(stmt, params)
    return db.execute(compiled.sql, compiled.arguments(params)).fetchall()


def test_plain_parameters_are_looked_up_in_order(db: sqlite3.Connection) -> None:
    cache = StatementCache(sqlite.dialect())
    compiled = cache.compiled(PLAIN, {"name": "fixed", "low": 10})
    assert compiled.names == ("name", "low")
    assert compiled.arguments({"low": 10, "name": "fixed"}) == ["fixed", 10]
    assert run(db, cache, PLAIN, {"name": "fixed", "low": 10}) == [(i,) for i in range(11, 21, 2)]
    assert cache.compiled(PLAIN, {"name": "x", "low": 0}) is compiled  # compiled once


def test_a_missing_parameter_is_named() -> None:
    cache = StatementCache(sqlite.dialect())
    compiled = cache.compiled(PLAIN, {"name": "a", "low": 1})
    with pytest.raises(KeyError, match="missing SQL parameter 'low'"):
        compiled.arguments({"name": "a"})


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 9])
def test_in_lists_are_padded_to_a_power_of_two(db: sqlite3.Connection, size: int) -> None:
    cache = StatementCache(sqlite.dialect())
    ids = list(range(1, size + 1))
    compiled = cache.compiled(IN_LIST, {"ids": ids})
    assert compiled.names is None  # the IN list is filled by the plan
    assert compiled.sql.count("?") == (1 << (size - 1).bit_length() if size > 1 else 1)
    assert sorted(run(db, cache, IN_LIST, {"ids": ids})) == [(i,) for i in ids]


def test_a_literal_value_is_part_of_the_plan(db: sqlite3.Connection) -> None:
    cache = StatementCache(sqlite.dialect())
    compiled = cache.compiled(LITERAL, {"id": 3})
    assert compiled.names is None
    assert compiled.arguments({"id": 3}) == ["fixed", 3]
    assert run(db, cache, LITERAL, {"id": 3}) == [(3,)]
    assert run(db, cache, LITERAL, {"id": 4}) == []


def test_bind_processors_run_where_the_dialect_has_them() -> None:
    # SQLite's Boolean has a bind processor (True -> 1); PostgreSQL's DateTime has none
    lite = StatementCache(sqlite.dialect()).compiled(FLAG, {"flag": True, "id": 1})
    assert lite.names is None  # a processor: not the simple lookup
    args = lite.arguments({"flag": True, "id": 1})
    assert args == [1, 1] and [type(a) for a in args] == [int, int]
    stamp = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    stmt = update(items).where(items.c.id == bindparam("id")).values(seen=bindparam("seen"))
    pg = StatementCache(postgresql.asyncpg.dialect()).compiled(stmt, {"seen": stamp, "id": 1})
    assert pg.sql.count("$") == 2
    assert pg.arguments({"seen": stamp, "id": 1}) == [stamp, 1]


def test_a_native_type_skips_its_processor() -> None:
    cache = StatementCache(sqlite.dialect(), native=(Boolean,))
    compiled = cache.compiled(FLAG, {"flag": True, "id": 1})
    assert compiled.names == ("flag", "id")  # no processor left: the simple lookup
    assert compiled.arguments({"flag": True, "id": 1}) == [True, 1]


def test_two_statements_with_one_shape_do_not_share_an_entry() -> None:
    cache = StatementCache(sqlite.dialect())
    a = select(items.c.id).where(items.c.id == bindparam("id"))
    b = select(items.c.name).where(items.c.id == bindparam("id"))
    assert "items.id" in cache.compiled(a, {"id": 1}).sql
    assert "items.name" in cache.compiled(b, {"id": 1}).sql
