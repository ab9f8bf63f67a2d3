"""LLM configs: model endpoints and their sampling settings (mixed into ``AsyncClient``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .. import schemas
from .._arguments import check_name_or_id, id_of
from .._defaults import LLMConfigDefaults
from ..exceptions import ConflictError, NotFoundError
from ..schemas import InferenceType
from .models import LLMConfig, bind

if TYPE_CHECKING:
    from ._http import AsyncHTTP

T = TypeVar("T")


class LLMConfigsMixin:
    """LLM-config methods of the client."""

    _http: AsyncHTTP

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

        async def _create(self, resource: str, type_: type[T], body: Any, kind: str) -> T: ...

    async def create_llm_config(
        self,
        name: str,
        llm_model_name: str,
        api_key: str | None = None,
        description: str = "",
        llm_base_url: str | None = None,
        api_version: str | None = None,
        max_connections: int = 10,
        max_retries: int | None = None,
        timeout: int | None = None,
        system_message: str | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        temperature: float | None = None,
        best_of: int | None = None,
        top_k: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        verbosity: str | None = None,
        inference_type: str | InferenceType = InferenceType.OPENAI,
        custom_api_config: dict[str, Any] | None = None,
        custom_response_parser: str | None = None,
    ) -> LLMConfig:
        """Register a model endpoint and its sampling settings (``api_key`` is stored masked)."""
        try:
            body = msgspec.convert(
                {
                    "name": name,
                    "description": description,
                    "llm_model_name": llm_model_name,
                    "llm_base_url": llm_base_url,
                    "api_key": api_key,
                    "api_version": api_version,
                    "max_connections": max_connections,
                    "inference_type": str(InferenceType(inference_type)),
                    "max_retries": max_retries,
                    "timeout": timeout,
                    "system_message": system_message,
                    "max_tokens": max_tokens,
                    "top_p": top_p,
                    "temperature": temperature,
                    "best_of": best_of,
                    "top_k": top_k,
                    "logprobs": logprobs,
                    "top_logprobs": top_logprobs,
                    "reasoning_effort": reasoning_effort,
                    "verbosity": verbosity,
                    "custom_api_config": custom_api_config,
                    "custom_response_parser": custom_response_parser,
                },
                schemas.CreateLLMConfigRequest,
            )
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid LLM config: {exc}") from None
        return await self._create("llm_configs", LLMConfig, body, "LLM config")

    async def get_llm_config(self, *, name: str | None = None, id: int | None = None) -> LLMConfig:
        """An LLM config by name or id."""
        check_name_or_id(name, id)
        prefix = await self._prefix()
        if id is not None:
            return bind(await self._http.get(f"{prefix}/llm_configs/{id}", LLMConfig), self)  # type: ignore[no-any-return]
        page = await self._http.get_page(f"{prefix}/llm_configs", LLMConfig, {"name": name})
        if not page.items:
            raise NotFoundError(f"no LLM config named {name!r}")
        return bind(page.items[0], self)  # type: ignore[no-any-return]

    async def get_or_create_llm_config(
        self, name: str, defaults: LLMConfigDefaults | None = None
    ) -> tuple[LLMConfig, bool]:
        """``(config, created)``; ``defaults`` (create arguments) apply only to create."""
        given: dict[str, Any] = dict(defaults or {})
        try:
            return await self.get_llm_config(name=name), False
        except NotFoundError:
            pass
        if "llm_model_name" not in given:
            raise ValueError("creating an LLM config needs defaults={'llm_model_name': ...}")
        try:
            return await self.create_llm_config(name, **given), True
        except ConflictError:
            return await self.get_llm_config(name=name), False

    async def list_llm_configs(self) -> list[LLMConfig]:
        """All LLM configs of the project."""
        prefix = await self._prefix()
        return bind(await self._http.paginate(f"{prefix}/llm_configs", LLMConfig), self)  # type: ignore[no-any-return]

    async def delete_llm_config(self, llm_config: schemas.LLMConfig | int) -> None:
        """Delete an LLM config."""
        prefix = await self._prefix()
        await self._http.request(
            "DELETE", f"{prefix}/llm_configs/{id_of(llm_config, 'LLM config')}"
        )
