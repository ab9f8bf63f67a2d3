# DO NOT EDIT: generated from elluminate/_async/client.py by scripts/unasync.py; edit the _async original.
"""``AsyncClient``: the whole SDK surface, written once (``Client`` is generated from it).

The client holds the connection, the credentials and the project; each group of resource
methods is a mixin in its own module (prompt templates, collections, criteria, LLM configs,
experiments, responses, tasks, views, scenario sets, agent results).
"""

from __future__ import annotations

import logging
import os
from typing import Any, TypeVar

from .. import schemas
from .._compat import Lock, eager_init
from .._retry import RetryConfig
from .._version import API_VERSION
from ..exceptions import ConfigurationError, ConflictError
from ._http import HTTP, decoder_for
from .agent_results import AgentResultsMixin
from .criteria import CriteriaMixin
from .experiments import ExperimentsMixin
from .llm_configs import LLMConfigsMixin
from .models import bind
from .projects import ProjectsResource
from .prompt_templates import PromptTemplatesMixin
from .responses import ResponsesMixin
from .scenarios import ScenarioSetsMixin
from .variable_collections import CollectionsMixin
from .views import ViewsMixin

logger = logging.getLogger("elluminate")
T = TypeVar("T")

DEFAULT_BASE_URL = "https://app.elluminate.de"


def _key_prefix(key: str | None) -> str:
    return f"{key[:4]}..." if key else "none"


class Client(
    PromptTemplatesMixin,
    CollectionsMixin,
    CriteriaMixin,
    LLMConfigsMixin,
    ExperimentsMixin,
    ResponsesMixin,
    ViewsMixin,
    ScenarioSetsMixin,
    AgentResultsMixin,
):
    """Client of the elluminate API for asyncio code.

    Credentials come from the arguments or, if neither ``api_key`` nor ``token`` is given,
    from ``ELLUMINATE_API_KEY`` / ``ELLUMINATE_OAUTH_TOKEN``. Use ``async with`` (or
    ``await client.close()``) to release connections.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        project_id: int | None = None,
        api_key_env: str = "ELLUMINATE_API_KEY",
        token_env: str = "ELLUMINATE_OAUTH_TOKEN",
        base_url_env: str = "ELLUMINATE_BASE_URL",
        timeout: float = 120.0,
        proxy: str | None = None,
        skip_version_check: bool = False,
        fallback_to_newest: bool = False,
        retry_config: RetryConfig | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get(base_url_env) or DEFAULT_BASE_URL).rstrip("/")
        if api_key is None and token is None:
            api_key = os.environ.get(api_key_env) or None
            token = os.environ.get(token_env) or None
        if api_key is None and token is None:
            raise ConfigurationError(
                f"no credentials: pass api_key= or token=, or set {api_key_env} or {token_env}"
            )
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.api_key = api_key
        self.token = token
        self.timeout = timeout
        self.proxy = proxy
        self.project_id = project_id
        self.skip_version_check = skip_version_check
        self.fallback_to_newest = fallback_to_newest
        self.retry_config = retry_config or RetryConfig()
        headers = {"SDK-Version": API_VERSION, "Accept": "*/*"}
        if api_key is not None:
            headers["X-API-Key"] = api_key
        else:
            headers["Authorization"] = f"Bearer {token}"
        self._http = HTTP(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            proxy=proxy,
            retry_config=self.retry_config,
        )
        self.current_project: schemas.Project | None = None
        self.project_route_prefix: str | None = None
        self.projects = ProjectsResource(self)
        self._init_lock = Lock()
        logger.debug("client for %s with key %s", self.base_url, _key_prefix(api_key or token))
        eager_init(self._initialize, self.close)

    def __repr__(self) -> str:
        project = self.current_project.id if self.current_project else None
        return f"{type(self).__name__}(base_url={self.base_url!r}, project={project})"

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Client:
        try:
            self._initialize()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the client's connections (idempotent)."""
        self._http.close()

    def get_info(self) -> str:
        """A one-line description of the connection, for debugging."""
        project = self.current_project
        return (
            f"elluminate client: {self.base_url}, project "
            f"{project.id if project else '?'} ({project.name if project else 'not resolved'}), "
            f"key {_key_prefix(self.api_key or self.token)}"
        )

    def _initialize(self) -> None:
        if self.project_route_prefix is not None:
            return
        with self._init_lock:
            if self.project_route_prefix is not None:
                return
            if not self.skip_version_check:
                self.check_version()
            self.projects.load_project(
                self.project_id, fallback_to_newest=self.fallback_to_newest
            )

    def _prefix(self) -> str:
        if self.project_route_prefix is None:
            self._initialize()
        assert self.project_route_prefix is not None
        return self.project_route_prefix

    def _create(self, resource: str, type_: type[T], body: Any, kind: str) -> T:
        """POST a new named object and bind it; a 409 names the kind and name it clashed on."""
        prefix = self._prefix()
        try:
            created = self._http.send_json("POST", f"{prefix}/{resource}", type_, body)
        except ConflictError as exc:
            exc.resource_type, exc.resource_name = kind, body.name
            raise
        return bind(created, self)  # type: ignore[no-any-return]

    def check_version(self) -> None:
        """Ask the server whether this SDK's API revision is supported (logs if not)."""
        resp = self._http.request(
            "POST",
            "/api/v0/version/compatible",
            json={"current_sdk_version": API_VERSION},
            retry=False,
        )
        answer = decoder_for(schemas.VersionCheckResponse).decode(resp.content)
        if not answer.is_compatible:
            logger.warning(
                "the server requires SDK API version %s; this client speaks %s",
                answer.required_sdk_version,
                API_VERSION,
            )
