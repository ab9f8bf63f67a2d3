"""Scenario sets: the goals (and their fields) multi-turn experiments are run over
(CONTRACT.md 4.11, 7.16). The official package's import path.

A scenario set has two implicit fields, ``goal`` and ``expected_conversation_outcome``, which
every scenario fills; the declared fields (``fields``) add named values usable as
``{{placeholder}}`` in prompts and criteria.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec

from .. import _repr
from ._checks import check_mapping
from ._wire import Wire

# The official package's name for "a string, stripped, at least one character".
RequiredText = Annotated[str, msgspec.Meta(min_length=1)]


def _required_text(owner: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{owner}.{name} must be a string, not {value!r}")
    stripped = value.strip()
    if not stripped:
        raise ValueError(f"{owner}.{name} must not be empty or only whitespace")
    return stripped


class ScenarioField(Wire, kw_only=True):
    """A declared field of a scenario set (``field_type``: ``text``, ``category``, ``json``)."""

    id: int
    name: str
    field_type: str
    default_value: str = ""


class ScenarioSet(Wire, kw_only=True):
    """A named set of scenarios with its declared fields."""

    id: int
    name: str
    description: str = ""
    fields: list[ScenarioField] = []
    scenarios_count: int = 0
    version: str | None = None
    read_only: bool = False
    is_platform_builtin: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __repr__(self) -> str:
        return _repr.line(
            self,
            [
                ("id", self.id),
                ("name", _repr.short(self.name)),
                ("fields", [f.name for f in self.fields]),
                ("scenarios", self.scenarios_count),
            ],
        )


class Scenario(Wire, kw_only=True):
    """One scenario: a goal, the outcome a good conversation reaches, and field values."""

    id: int
    goal: str
    expected_conversation_outcome: str
    field_values: dict[str, Any] = {}
    created_at: datetime

    def __repr__(self) -> str:
        return _repr.line(
            self,
            [
                ("id", self.id),
                ("goal", _repr.short(self.goal)),
                ("outcome", _repr.short(self.expected_conversation_outcome)),
            ],
        )


class ScenarioIn(Wire, kw_only=True):
    """A scenario to create or to replace one with; ``goal`` and
    ``expected_conversation_outcome`` are stripped and must not be empty."""

    goal: str
    expected_conversation_outcome: str
    field_values: dict[str, Any] = {}

    def __post_init__(self) -> None:
        self.goal = _required_text("ScenarioIn", "goal", self.goal)
        self.expected_conversation_outcome = _required_text(
            "ScenarioIn", "expected_conversation_outcome", self.expected_conversation_outcome
        )
        if self.field_values is None:
            self.field_values = {}
        check_mapping("ScenarioIn", "field_values", self.field_values)


class CreateScenarioSetRequest(Wire, kw_only=True):
    """Body of ``POST scenario-sets``; without a ``name`` the server picks one."""

    __omit_none__: ClassVar[frozenset[str]] = frozenset({"name"})

    name: str | None = None
    description: str = ""
    fields: list[str] = []


class UpdateScenarioSetRequest(Wire, kw_only=True):
    """Body of ``PUT scenario-sets/{id}``: only the keys that are set."""

    __omit_none__: ClassVar[frozenset[str]] = frozenset({"name", "description"})

    name: str | None = None
    description: str | None = None


class ScenarioFieldRequest(Wire, kw_only=True):
    """Body of ``POST .../fields`` (name and default) and ``PUT .../fields/{id}`` (name)."""

    __omit_none__: ClassVar[frozenset[str]] = frozenset({"default_value"})

    name: str
    default_value: str | None = None


class ScenarioBatchRequest(Wire, kw_only=True):
    """Body of ``POST .../scenarios/batch``."""

    scenarios: list[ScenarioIn]
    skip_existing: bool = False


__all__ = [
    "CreateScenarioSetRequest",
    "RequiredText",
    "Scenario",
    "ScenarioBatchRequest",
    "ScenarioField",
    "ScenarioFieldRequest",
    "ScenarioIn",
    "ScenarioSet",
    "UpdateScenarioSetRequest",
]
