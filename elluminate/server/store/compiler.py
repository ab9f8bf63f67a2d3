"""SQLAlchemy Core statements, compiled once per database dialect and run on the raw driver.

Every query of the store is a SQLAlchemy Core statement (built from :mod:`.schema`), so one
definition serves SQLite and PostgreSQL. The store does not run them through SQLAlchemy's
engine: it compiles each statement once per dialect (and per size of its ``IN`` lists) and
hands the SQL text and positional arguments to ``sqlite3`` or ``asyncpg`` directly. Measured
on this project's machine kind, SQLAlchemy's execution layer costs about 3x a raw
``sqlite3`` call for a primary-key lookup (the compile cache included), which would take the
server's small-request throughput below 0.8x of the raw-driver figures; compiling once keeps
the SQL generation, dialect handling and schema of SQLAlchemy and the speed of the driver.

Statements must be built once (module constants, or memoised per shape with
``functools.cache``): the cache is keyed by the statement object. Parameters are
``bindparam("name")``; lists for ``IN`` are ``bindparam("name", expanding=True)``, padded to a
power of two (the last value repeated, which ``IN`` ignores) so that few shapes get compiled.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

#: Compiled shapes kept per dialect (statements are module constants: this is a bound).
MAX_COMPILED = 4096

_SCALAR = 0
_EXPANDED = 1
_CONSTANT = 2


@dataclass(frozen=True)
class Compiled:
    """One statement's SQL for one dialect and one set of ``IN`` list sizes."""

    sql: str
    #: how to fill each positional argument: (kind, name or value, index in an IN list,
    #: the type's bind processor for the dialect or None)
    plan: tuple[tuple[int, Any, int, Any], ...]
    #: expanding parameter names and the sizes they were compiled for
    expanding: tuple[tuple[str, int], ...]
    #: the parameter names, in order, when every argument is a plain parameter without a
    #: bind processor (most statements): their arguments are a simple lookup
    names: tuple[str, ...] | None = None

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (IN lists padded to the compiled size)."""
        if self.names is not None:
            try:
                return [params[name] for name in self.names]
            except KeyError as exc:
                raise KeyError(f"missing SQL parameter {exc.args[0]!r}") from None
        args: list[Any] = []
        append = args.append
        for kind, name, index, processor in self.plan:
            if kind == _SCALAR:
                try:
                    value = params[name]
                except KeyError:
                    raise KeyError(f"missing SQL parameter {name!r}") from None
            elif kind == _EXPANDED:
                values = params[name]
                value = values[index] if index < len(values) else values[-1]
            else:
                append(name)  # a constant, processed when compiled
                continue
            append(value if processor is None or value is None else processor(value))
        return args


def _padded(size: int) -> int:
    """The next power of two >= size (0 stays 0)."""
    if size <= 1:
        return size
    return 1 << (size - 1).bit_length()


class StatementCache:
    """Compiled statements for one dialect, keyed by statement object and IN list sizes."""

    def __init__(self, dialect: Dialect, *, native: tuple[type[TypeEngine[Any]], ...] = ()) -> None:
        """``native``: types whose values the driver takes as they are, so their bind
        processors are skipped (``sqlite3`` stores ``bool`` as 0 and 1 by itself)."""
        self.dialect = dialect
        self._native = native
        self._expanding: dict[int, tuple[ClauseElement, tuple[str, ...]]] = {}
        #: statements without IN lists: one lookup by statement (the others: by statement
        #: and IN list sizes, in ``_compiled``)
        self._plain: dict[int, tuple[ClauseElement, Compiled]] = {}
        self._compiled: OrderedDict[tuple[int, tuple[int, ...]], tuple[ClauseElement, Compiled]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def compiled(self, stmt: ClauseElement, params: Mapping[str, Any]) -> Compiled:
        """The compiled form of ``stmt`` for the IN list sizes found in ``params``."""
        plain = self._plain.get(id(stmt))
        if plain is not None and plain[0] is stmt:
            return plain[1]
        names = self._expanding_names(stmt)
        sizes = tuple(_padded(len(params[name])) for name in names)
        key = (id(stmt), sizes)
        hit = self._compiled.get(key)
        if hit is not None and hit[0] is stmt:
            return hit[1]
        compiled = self._compile(stmt, dict(zip(names, sizes, strict=True)))
        with self._lock:
            if not names:  # found by the lookup at the top from now on
                if len(self._plain) > MAX_COMPILED:
                    self._plain.clear()
                self._plain[id(stmt)] = (stmt, compiled)
                return compiled
            self._compiled[key] = (stmt, compiled)
            while len(self._compiled) > MAX_COMPILED:
                self._compiled.popitem(last=False)
        return compiled

    def _expanding_names(self, stmt: ClauseElement) -> tuple[str, ...]:
        hit = self._expanding.get(id(stmt))
        if hit is not None and hit[0] is stmt:
            return hit[1]
        probe = cast(SQLCompiler, stmt.compile(dialect=self.dialect))
        names = tuple(
            sorted(name for name, bind in probe.binds.items() if bind.expanding and bind.required)
        )
        with self._lock:
            if len(self._expanding) > MAX_COMPILED:
                self._expanding.clear()
            self._expanding[id(stmt)] = (stmt, names)
        return names

    def _compile(self, stmt: ClauseElement, sizes: dict[str, int]) -> Compiled:
        probe = cast(SQLCompiler, stmt.compile(dialect=self.dialect))
        required = {name for name, bind in probe.binds.items() if bind.required}
        # placeholder values: the expanded state wants one for every required parameter
        probes: dict[str, Any] = dict.fromkeys(required - set(sizes))
        probes.update({name: list(range(size)) for name, size in sizes.items()})
        state = probe.construct_expanded_state(probes)  # IN lists become plain placeholders
        expanded: dict[str, tuple[str, int]] = {}
        for name, size in sizes.items():
            for i in range(size):
                expanded[f"{name}_{i + 1}"] = (name, i)
        def processor(name: str) -> Any:
            bind = probe.binds.get(name)
            if bind is None or isinstance(bind.type, self._native):
                return None
            return bind.type.dialect_impl(self.dialect).bind_processor(self.dialect)

        plan: list[tuple[int, Any, int, Any]] = []
        for name in state.positiontup or ():
            if name in expanded:
                base, index = expanded[name]
                plan.append((_EXPANDED, base, index, processor(base)))
            elif name in required:
                plan.append((_SCALAR, name, 0, processor(name)))
            else:  # a literal value bound in the statement (or an item of a literal IN list)
                value = state.parameters[name]
                convert = processor(name)
                plan.append((_CONSTANT, value if convert is None else convert(value), 0, None))
        simple = all(kind == _SCALAR and convert is None for kind, _, _, convert in plan)
        names = tuple(name for _, name, _, _ in plan) if simple else None
        return Compiled(state.statement, tuple(plan), tuple(sizes.items()), names)


def describe(stmt: ClauseElement, dialect: Dialect) -> str:
    """The SQL of a statement for a dialect (for error messages and tests)."""
    return str(stmt.compile(dialect=dialect))


__all__ = ["Compiled", "StatementCache", "describe"]
