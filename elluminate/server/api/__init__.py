"""The HTTP layer: one module of handlers per resource, plus request parsing (``http``),
errors, auth, SSE and the OpenAPI document. No SQL here: handlers call the store.

:func:`setup_routes` registers the routes of :data:`RESOURCES`; a new resource is a new module
listed there.
"""

from __future__ import annotations

from aiohttp import web

from . import (
    agent_results,
    collections,
    criteria,
    criterion_sets,
    experiment_runs,
    experiments,
    llm_configs,
    projects,
    prompt_templates,
    ratings,
    responses,
    scenario_sets,
    views,
)
from .routing import add_routes

#: The resource modules, each with a ``routes`` table, registered in this order.
RESOURCES = (
    agent_results,
    collections,
    criteria,
    criterion_sets,
    experiments,
    experiment_runs,
    llm_configs,
    projects,
    prompt_templates,
    ratings,
    responses,
    scenario_sets,
    views,
)


#: Every project-scoped route starts here (looked up by :mod:`.routing`'s shape index).
PROJECT_PREFIX = "/api/v0/projects/{project_id}"


def setup_routes(app: web.Application) -> None:
    """Register the routes of every resource module."""
    add_routes(app, PROJECT_PREFIX, (module.routes for module in RESOURCES))
