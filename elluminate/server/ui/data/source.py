"""What every part of the viewer's data adapter shares: the signed-in project's
:class:`Source`, a :class:`Page` of items, and sign-in."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from elluminate.schemas import Project

from ...engine.engine import TaskEngine
from ...store.connection import Store
from ...store.projects import Principal, authenticate
from ...store.views import Views
from ...store.views_experiments import ExperimentViews

T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """Where the data of one signed-in project comes from."""

    db: Store
    engine: TaskEngine
    project_id: int

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[ExperimentViews]:
        """A read connection and a read model on it (its caches live as long as the block)."""
        async with self.db.connect() as conn:
            yield ExperimentViews(conn, self.project_id, store=self.db)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of items; ``page`` counts from 1."""

    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_index(self) -> int:
        """1-based position of the first item on this page (0 when empty)."""
        return 0 if not self.items else (self.page - 1) * self.size + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.items) - 1 if self.items else 0


def page_offset(page: int, size: int) -> int:
    """How many items come before ``page`` (counted from 1; anything lower is page 1)."""
    return (max(1, page) - 1) * size


# ---- sign-in ------------------------------------------------------------------------------


async def authenticate_key(db: Store, key: str) -> Principal | None:
    """The project of an API key, or None: the same check as the API's auth middleware."""
    async with db.connect() as conn:
        return await authenticate(conn, key)


async def project(source: Source) -> Project:
    """The signed-in project (with its organization)."""
    async with source.db.connect() as conn:
        return await Views(conn, source.project_id).project()
