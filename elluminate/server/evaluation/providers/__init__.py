"""LLM providers for the server: one small async interface and three providers.

* :mod:`.base`: :class:`ChatParams`, :class:`Completion`, :class:`ProviderError`,
  :class:`GenerationError`, :class:`LLMProvider`, :class:`ProviderConfig`, :func:`make_provider`.
* :mod:`.echo`: deterministic provider for tests, dry runs and benchmarks.
* :mod:`.openai`: any OpenAI-compatible chat-completions endpoint (aiohttp).
* :mod:`.local`: SmolLM2-135M-Instruct on the CPU via llama-cpp-python (``elluminate[local]``).

Importing the package never imports llama-cpp-python; the local provider loads it on first use.
"""

from .base import (
    ChatParams,
    Completion,
    GenerationError,
    LLMProvider,
    ProviderConfig,
    ProviderError,
    ProviderKind,
    make_provider,
    message_text,
)
from .echo import ECHO_FAIL, ECHO_NO, EchoProvider, echo_verdict
from .local import LocalProvider
from .openai import OpenAIProvider

__all__ = [
    "ECHO_FAIL",
    "ECHO_NO",
    "ChatParams",
    "Completion",
    "EchoProvider",
    "GenerationError",
    "LLMProvider",
    "LocalProvider",
    "OpenAIProvider",
    "ProviderConfig",
    "ProviderError",
    "ProviderKind",
    "echo_verdict",
    "make_provider",
    "message_text",
]
