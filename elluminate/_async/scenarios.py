"""Scenario sets, their fields and their scenarios (mixed into ``AsyncClient``; CONTRACT.md
4.11, 8.5).

Names and goals are checked here before anything is sent: a field name must be usable as a
``{{placeholder}}`` and may not be one of the implicit fields, a goal and an expected
outcome are stripped and must not be empty. The server checks the rest (names shared with
collections, unknown field values) and answers 400 with what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .. import schemas
from .._arguments import id_of
from ..exceptions import NotFoundError
from ..schemas._checks import check_field_name, check_field_names
from .models import ScenarioSet, bind

if TYPE_CHECKING:
    from ._http import AsyncHTTP


def _name_arg(name: Any, what: str) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty string (or None)")
    return name


def _scenario_in(scenario: Any, index: int | None = None) -> schemas.ScenarioIn:
    """A ScenarioIn from a ScenarioIn, a Scenario or a dict; ValueError says which one is bad."""
    where = "" if index is None else f"scenario {index}: "
    if isinstance(scenario, schemas.ScenarioIn):
        return scenario
    if isinstance(scenario, schemas.Scenario):
        scenario = {
            "goal": scenario.goal,
            "expected_conversation_outcome": scenario.expected_conversation_outcome,
            "field_values": scenario.field_values,
        }
    if not isinstance(scenario, dict):
        raise ValueError(
            f"{where}a scenario is a ScenarioIn or a dict with 'goal' and "
            f"'expected_conversation_outcome', not {type(scenario).__name__}"
        )
    missing = [k for k in ("goal", "expected_conversation_outcome") if k not in scenario]
    if missing:
        raise ValueError(f"{where}missing {', '.join(repr(k) for k in missing)}")
    try:
        return msgspec.convert(scenario, schemas.ScenarioIn)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{where}{exc}") from None


class ScenarioSetsMixin:
    """Scenario-set methods of the client and the operations behind ``ScenarioSet``."""

    _http: AsyncHTTP

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

    async def create_scenario_set(
        self, name: str | None = None, description: str = "", fields: list[str] | None = None
    ) -> ScenarioSet:
        """Create a scenario set with declared ``fields`` (besides the implicit ``goal`` and
        ``expected_conversation_outcome``); without a name the server picks one.

        A name used by another scenario set or by a collection is refused (400).
        """
        if not isinstance(description, str):
            raise ValueError("description must be a string")
        body = schemas.CreateScenarioSetRequest(
            name=_name_arg(name, "name"),
            description=description,
            fields=check_field_names(fields),
        )
        prefix = await self._prefix()
        created = await self._http.send_json("POST", f"{prefix}/scenario-sets", ScenarioSet, body)
        return bind(created, self)  # type: ignore[no-any-return]

    async def get_scenario_set(
        self, *, name: str | None = None, id: int | None = None
    ) -> ScenarioSet:
        """A scenario set by id, or by its exact name."""
        if (name is None) == (id is None):
            raise ValueError("pass exactly one of name= or id=")
        prefix = await self._prefix()
        if id is not None:
            found = await self._http.get(f"{prefix}/scenario-sets/{id}", ScenarioSet)
            return bind(found, self)  # type: ignore[no-any-return]
        # The API searches by substring only: the exact match is picked here.
        candidates = await self._http.paginate(
            f"{prefix}/scenario-sets", ScenarioSet, {"name_search": name}
        )
        for candidate in candidates:
            if candidate.name == name:
                return bind(candidate, self)  # type: ignore[no-any-return]
        raise NotFoundError(f"no scenario set named {name!r}")

    async def list_scenario_sets(self, name_search: str | None = None) -> list[ScenarioSet]:
        """All scenario sets, or those whose name contains ``name_search``."""
        prefix = await self._prefix()
        found = await self._http.paginate(
            f"{prefix}/scenario-sets", ScenarioSet, {"name_search": name_search}
        )
        return bind(found, self)  # type: ignore[no-any-return]

    async def update_scenario_set(
        self,
        scenario_set: schemas.ScenarioSet | int,
        name: str | None = None,
        description: str | None = None,
    ) -> ScenarioSet:
        """Rename a scenario set or change its description; a given ScenarioSet is updated
        too. Returns the set as the server has it."""
        if name is None and description is None:
            raise ValueError("pass name= or description= (or both) to change")
        if description is not None and not isinstance(description, str):
            raise ValueError("description must be a string")
        body = schemas.UpdateScenarioSetRequest(
            name=_name_arg(name, "name"), description=description
        )
        prefix = await self._prefix()
        ident = id_of(scenario_set, "scenario set")
        updated: ScenarioSet = await self._http.send_json(
            "PUT", f"{prefix}/scenario-sets/{ident}", ScenarioSet, body
        )
        if isinstance(scenario_set, schemas.ScenarioSet):
            for field in msgspec.structs.fields(schemas.ScenarioSet):
                setattr(scenario_set, field.name, getattr(updated, field.name))
        return bind(updated, self)  # type: ignore[no-any-return]

    async def delete_scenario_set(self, scenario_set: schemas.ScenarioSet | int) -> None:
        """Delete a scenario set with its fields and scenarios."""
        prefix = await self._prefix()
        ident = id_of(scenario_set, "scenario set")
        await self._http.request("DELETE", f"{prefix}/scenario-sets/{ident}")

    # ---- used by the ScenarioSet rich model -----------------------------------------------

    async def _scenario_set_path(self, scenario_set: schemas.ScenarioSet) -> str:
        prefix = await self._prefix()
        return f"{prefix}/scenario-sets/{scenario_set.id}"

    async def _add_scenario_field(
        self, scenario_set: schemas.ScenarioSet, name: str, default_value: str
    ) -> schemas.ScenarioField:
        check_field_name(name)
        if not isinstance(default_value, str):
            raise ValueError(f"default_value must be a string, not {type(default_value).__name__}")
        path = await self._scenario_set_path(scenario_set)
        field: schemas.ScenarioField = await self._http.send_json(
            "POST",
            f"{path}/fields",
            schemas.ScenarioField,
            schemas.ScenarioFieldRequest(name=name, default_value=default_value),
        )
        scenario_set.fields = [*scenario_set.fields, field]
        return field

    async def _rename_scenario_field(
        self, scenario_set: schemas.ScenarioSet, field: schemas.ScenarioField | int, name: str
    ) -> schemas.ScenarioField:
        check_field_name(name)
        field_id = id_of(field, "scenario field")
        path = await self._scenario_set_path(scenario_set)
        renamed: schemas.ScenarioField = await self._http.send_json(
            "PUT",
            f"{path}/fields/{field_id}",
            schemas.ScenarioField,
            schemas.ScenarioFieldRequest(name=name),
        )
        scenario_set.fields = [renamed if f.id == field_id else f for f in scenario_set.fields]
        return renamed

    async def _delete_scenario_field(
        self, scenario_set: schemas.ScenarioSet, field: schemas.ScenarioField | int
    ) -> None:
        field_id = id_of(field, "scenario field")
        path = await self._scenario_set_path(scenario_set)
        await self._http.request("DELETE", f"{path}/fields/{field_id}")
        scenario_set.fields = [f for f in scenario_set.fields if f.id != field_id]

    async def _list_scenarios(self, scenario_set: schemas.ScenarioSet) -> list[schemas.Scenario]:
        path = await self._scenario_set_path(scenario_set)
        scenarios = await self._http.paginate(f"{path}/scenarios", schemas.Scenario)
        scenario_set.scenarios_count = len(scenarios)
        return scenarios

    async def _get_scenario(
        self, scenario_set: schemas.ScenarioSet, scenario_id: int
    ) -> schemas.Scenario:
        path = await self._scenario_set_path(scenario_set)
        ident = id_of(scenario_id, "scenario")
        return await self._http.get(f"{path}/scenarios/{ident}", schemas.Scenario)

    async def _add_scenario(
        self,
        scenario_set: schemas.ScenarioSet,
        goal: str,
        expected_conversation_outcome: str,
        field_values: dict[str, Any] | None,
    ) -> schemas.Scenario:
        body = _scenario_in(
            {
                "goal": goal,
                "expected_conversation_outcome": expected_conversation_outcome,
                "field_values": {} if field_values is None else field_values,
            }
        )
        path = await self._scenario_set_path(scenario_set)
        created: schemas.Scenario = await self._http.send_json(
            "POST", f"{path}/scenarios", schemas.Scenario, body
        )
        scenario_set.scenarios_count += 1
        return created

    async def _add_scenarios(
        self,
        scenario_set: schemas.ScenarioSet,
        scenarios: Sequence[schemas.ScenarioIn | dict[str, Any]],
        skip_existing: bool,
    ) -> list[schemas.Scenario]:
        if isinstance(scenarios, (dict, schemas.ScenarioIn)) or not isinstance(scenarios, Sequence):
            raise ValueError("scenarios must be a list (use a one-element list for one scenario)")
        items = [_scenario_in(s, i) for i, s in enumerate(scenarios)]
        if not items:
            return []
        path = await self._scenario_set_path(scenario_set)
        created: list[schemas.Scenario] = await self._http.send_json(
            "POST",
            f"{path}/scenarios/batch",
            list[schemas.Scenario],
            schemas.ScenarioBatchRequest(scenarios=items, skip_existing=bool(skip_existing)),
        )
        scenario_set.scenarios_count += len(created)
        return created

    async def _update_scenario(
        self, scenario_set: schemas.ScenarioSet, scenario: schemas.Scenario
    ) -> schemas.Scenario:
        if not isinstance(scenario, schemas.Scenario):
            raise ValueError(
                "update_scenario takes a Scenario (from get_scenario or list_scenarios) with "
                "its fields changed"
            )
        body = _scenario_in(scenario)
        path = await self._scenario_set_path(scenario_set)
        updated: schemas.Scenario = await self._http.send_json(
            "PUT", f"{path}/scenarios/{scenario.id}", schemas.Scenario, body
        )
        return updated

    async def _delete_scenario(
        self, scenario_set: schemas.ScenarioSet, scenario: schemas.Scenario | int
    ) -> None:
        ident = id_of(scenario, "scenario")
        path = await self._scenario_set_path(scenario_set)
        await self._http.request("DELETE", f"{path}/scenarios/{ident}")
        scenario_set.scenarios_count = max(0, scenario_set.scenarios_count - 1)
