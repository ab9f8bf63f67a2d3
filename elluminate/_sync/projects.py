# DO NOT EDIT: generated from elluminate/_async/projects.py by scripts/unasync.py; edit the _async original.
"""``client.projects``: list, load, select and create projects (CONTRACT.md 1.4).

Project calls use absolute paths (not the project prefix). They follow the client's retry
policy (the official package never retries them; a POST is still never replayed after an
ambiguous failure). Selecting or loading a project switches the client to it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from .. import schemas
from ..exceptions import AmbiguousProjectError
from ._http import decoder_for

if TYPE_CHECKING:
    from .client import Client

PROJECTS_PATH = "/api/v0/projects"


def choose_project(
    projects: list[schemas.Project],
    *,
    by_api_key: bool,
    project_id: int | None,
    fallback_to_newest: bool,
) -> schemas.Project:
    """The project a client works in: an API key's own (the first), else the requested one."""
    if not projects:
        raise RuntimeError("these credentials see no project on the server")
    if by_api_key:
        return projects[0]
    if project_id is not None:
        for project in projects:
            if project.id == project_id:
                return project
        raise RuntimeError(f"project {project_id} is not visible with these credentials")
    if fallback_to_newest:
        return max(projects, key=lambda p: p.id)
    raise AmbiguousProjectError(
        "a token can see several projects: pass project_id= or fallback_to_newest=True"
    )


class ProjectsResource:
    """The projects these credentials can see; ``client.projects``."""

    def __init__(self, client: Client) -> None:
        # A weak reference: the client holds this resource, and a cycle would delay the
        # collection (and the unclosed-session warning) of a client nobody closed.
        self._client_ref = weakref.ref(client)

    def __repr__(self) -> str:
        return f"<ProjectsResource of {self._client_ref()!r}>"

    @property
    def _client(self) -> Client:
        client = self._client_ref()
        if client is None:
            raise RuntimeError("the client of this projects resource no longer exists")
        return client

    def list_projects(self, *, url: str | None = None) -> list[schemas.Project]:
        """All visible projects (``url``: another projects endpoint to ask)."""
        resp = self._client._http.request("GET", url or PROJECTS_PATH)
        page: schemas.Page[schemas.Project] = decoder_for(schemas.Page[schemas.Project]).decode(
            resp.content
        )
        return page.items

    def load_project(
        self,
        project_id: int | None = None,
        *,
        url: str | None = None,
        fallback_to_newest: bool = False,
    ) -> schemas.Project:
        """Choose the project to work in from the visible ones and switch to it.

        With an API key that is the key's project; with a token, ``project_id`` (or the
        newest with ``fallback_to_newest=True``; neither raises AmbiguousProjectError).
        """
        projects = self.list_projects(url=url)
        project = choose_project(
            projects,
            by_api_key=self._client.api_key is not None,
            project_id=project_id,
            fallback_to_newest=fallback_to_newest,
        )
        self._switch(project)
        return project

    def select_project(self, project_id: int) -> schemas.Project:
        """Switch to project ``project_id`` (NotFoundError if these credentials cannot see it)."""
        resp = self._client._http.request("GET", f"{PROJECTS_PATH}/{project_id}")
        project: schemas.Project = decoder_for(schemas.Project).decode(resp.content)
        self._switch(project)
        return project

    def create(
        self, name: str, description: str = "", *, public_in_org: bool | None = None
    ) -> schemas.Project:
        """Create a project in the current project's organization (the client stays where it is)."""
        self._client._prefix()
        current = self._client.current_project
        assert current is not None
        body = schemas.CreateProjectRequest(
            name=name,
            description=description,
            organization_id=current.organization.id,
            public_in_org=public_in_org,
        )
        resp = self._client._http.request("POST", PROJECTS_PATH, json=body)
        created: schemas.Project = decoder_for(schemas.Project).decode(resp.content)
        return created

    def _switch(self, project: schemas.Project) -> None:
        self._client.current_project = project
        # an absolute URL, as in the official package
        self._client.project_route_prefix = f"{self._client.base_url}{PROJECTS_PATH}/{project.id}"
