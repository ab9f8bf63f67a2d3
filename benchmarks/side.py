"""One measured side of one benchmark section, run in a fresh interpreter.

    python side.py '<json spec>'

``benchmarks/run.py`` starts this script once per side and repetition: with this project's
interpreter for this SDK and the raw floors, and with the official package's own virtualenv
interpreter (cwd outside the repository) for the official ``elluminate``. The script imports
only the standard library at the top, so import time and peak RSS belong to the side alone.
It prints one line ``RESULT <json>`` with the measured figures (seconds, peak RSS in MiB,
counts); anything else it prints is ignored.

Spec keys: ``section``, ``side``, ``base_url``, ``api_key``, ``project_id`` and the
section's parameters (ids of the prepared data, sizes).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

SMALL_PAGE = "{base}/api/v0/projects/{pid}/prompt_templates/{tid}"
RESPONSES = "{base}/api/v0/projects/{pid}/responses"


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB.

    ``VmHWM`` of ``/proc/self/status`` belongs to this program alone: ``ru_maxrss`` survives
    ``execve`` and would start at the launching process's size.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_import(names: list[str]) -> float:
    start = time.perf_counter()
    for name in names:
        __import__(name)
    return time.perf_counter() - start


# ---- clients ------------------------------------------------------------------------------


def sdk_client(spec: dict[str, Any]) -> Any:
    from elluminate import Client

    return Client(base_url=spec["base_url"], api_key=spec["api_key"], skip_version_check=True)


def sdk_async_client(spec: dict[str, Any]) -> Any:
    from elluminate import AsyncClient

    return AsyncClient(base_url=spec["base_url"], api_key=spec["api_key"], skip_version_check=True)


async def ainit(client: Any) -> None:
    """Both packages' async clients resolve the project lazily or in ``__aenter__``."""
    await client.__aenter__()


def requests_session(spec: dict[str, Any]) -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False
    session.headers.update({"X-API-Key": spec["api_key"]})
    return session


def aiohttp_session(spec: dict[str, Any], limit: int = 100) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        headers={"X-API-Key": spec["api_key"]},
        connector=aiohttp.TCPConnector(limit=limit),
    )


def is_async(side: str) -> bool:
    return "async" in side or side == "raw-aiohttp"


# ---- request counting (library level, never the SDK's internals) ----------------------------


class RequestCounter:
    """Counts HTTP requests sent through requests, aiohttp or httpx (whichever is loaded)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        modules = sys.modules
        if "requests" in modules:
            from requests.adapters import HTTPAdapter

            self._wrap(HTTPAdapter, "send")
        if "aiohttp" in modules:
            import aiohttp

            self._wrap_async(aiohttp.ClientSession, "_request")
        for name in ("httpx2", "httpx"):
            if name in modules:
                mod = modules[name]
                self._wrap(mod.Client, "send")
                self._wrap_async(mod.AsyncClient, "send")

    def _wrap(self, cls: Any, attr: str) -> None:
        original = getattr(cls, attr)
        counter = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return original(*args, **kwargs)

        setattr(cls, attr, wrapper)

    def _wrap_async(self, cls: Any, attr: str) -> None:
        original = getattr(cls, attr)
        counter = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return original(*args, **kwargs)  # a coroutine or an awaitable context manager

        setattr(cls, attr, wrapper)


# ---- 1. large read ----------------------------------------------------------------------------


def touch_experiment(experiment: Any) -> int:
    """Iterate every response and rating as a user would; returns the number of ratings."""
    ratings = 0
    for response in experiment.responses():
        _ = response.response_str
        for rating in response.ratings:
            _ = rating.rating, rating.criterion.criterion_str
            ratings += 1
    return ratings


def large(spec: dict[str, Any]) -> dict[str, Any]:
    side, eid = spec["side"], spec["experiment_id"]
    if side.startswith("raw-"):
        return large_raw(spec)
    if is_async(side):

        async def main() -> tuple[float, int, int]:
            client = sdk_async_client(spec)
            try:
                await ainit(client)
                start = time.perf_counter()
                experiment = await client.get_experiment(id=eid)
                ratings = touch_experiment(experiment)
                return time.perf_counter() - start, len(experiment.rated_responses), ratings
            finally:
                await client.close()

        seconds, responses, ratings = asyncio.run(main())
    else:
        client = sdk_client(spec)
        start = time.perf_counter()
        experiment = client.get_experiment(id=eid)
        ratings = touch_experiment(experiment)
        seconds = time.perf_counter() - start
        responses = len(experiment.rated_responses)
        client.close()
    return {"seconds": seconds, "responses": responses, "ratings": ratings}


def large_raw(spec: dict[str, Any]) -> dict[str, Any]:
    """The floor: the same pages with requests, then no decoding / json.loads."""
    session = requests_session(spec)
    url = RESPONSES.format(base=spec["base_url"], pid=spec["project_id"])
    session.get(SMALL_PAGE.format(base=spec["base_url"], pid=spec["project_id"], tid=spec["tid"]))
    start = time.perf_counter()
    bodies = []
    page, count, seen = 1, None, 0
    while count is None or seen < count:
        body = session.get(url, params={"experiment_id": spec["experiment_id"], "page": page})
        bodies.append(body.content)
        if count is None:  # the count is read from the first page only
            count = json.loads(body.content)["count"]
        seen += spec["page_size"]
        page += 1
    nbytes = sum(len(b) for b in bodies)
    responses = 0
    if spec["side"] == "raw-json":
        for body in bodies:
            responses += len(json.loads(body)["items"])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": nbytes, "pages": len(bodies), "responses": responses}


# ---- 2./3. small calls ------------------------------------------------------------------------


def small(spec: dict[str, Any]) -> dict[str, Any]:
    side, n, tid = spec["side"], spec["n"], spec["tid"]
    gathered = spec["section"] == "gather"
    url = SMALL_PAGE.format(base=spec["base_url"], pid=spec["project_id"], tid=tid)
    if side == "raw-requests":
        session = requests_session(spec)
        session.get(url).content  # noqa: B018 - warm the connection
        start = time.perf_counter()
        for _ in range(n):
            session.get(url).content  # noqa: B018
        return {"seconds": time.perf_counter() - start, "calls": n}
    if not is_async(side):
        client = sdk_client(spec)
        client.get_prompt_template(id=tid)
        start = time.perf_counter()
        for _ in range(n):
            client.get_prompt_template(id=tid)
        seconds = time.perf_counter() - start
        client.close()
        return {"seconds": seconds, "calls": n}

    async def main() -> float:
        if side == "raw-aiohttp":
            session = aiohttp_session(spec)

            async def call() -> Any:
                async with session.get(url) as resp:
                    return await resp.read()

            close: Callable[[], Any] = session.close
        else:
            client = sdk_async_client(spec)
            await ainit(client)

            async def call() -> Any:
                return await client.get_prompt_template(id=tid)

            close = client.close
        try:
            await call()
            semaphore = asyncio.Semaphore(spec.get("concurrency", 50))

            async def limited() -> Any:
                async with semaphore:
                    return await call()

            start = time.perf_counter()
            if gathered:
                await asyncio.gather(*[limited() for _ in range(n)])
            else:
                for _ in range(n):
                    await call()
            return time.perf_counter() - start
        finally:
            await close()

    return {"seconds": asyncio.run(main()), "calls": n}


# ---- 4. bulk upload ---------------------------------------------------------------------------


def upload(spec: dict[str, Any]) -> dict[str, Any]:
    side, n = spec["side"], spec["n"]
    rows = [
        {"topic": f"topic {i}", "detail": f"row {i} of the bulk upload benchmark"} for i in range(n)
    ]
    name = f"upload {side} {uuid.uuid4().hex[:8]}"
    counter = RequestCounter()
    if is_async(side):

        async def main() -> tuple[float, int]:
            client = sdk_async_client(spec)
            try:
                await ainit(client)
                collection = await client.create_collection(name=name)
                counter.install()
                add = getattr(collection, "aadd_many", None) or collection.add_many
                start = time.perf_counter()
                added = await add(variables=rows)
                return time.perf_counter() - start, len(added)
            finally:
                await client.close()

        seconds, added = asyncio.run(main())
    else:
        client = sdk_client(spec)
        collection = client.create_collection(name=name)
        counter.install()
        start = time.perf_counter()
        added_rows = collection.add_many(variables=rows)
        seconds = time.perf_counter() - start
        added = len(added_rows)
        client.close()
    if added != n:
        raise RuntimeError(f"add_many created {added} entries, expected {n}")
    return {"seconds": seconds, "requests": counter.count, "entries": added}


# ---- 5. concurrency headline (benchmarks/concurrency.py) -----------------------------------


def concurrency(spec: dict[str, Any]) -> dict[str, Any]:
    from types import SimpleNamespace

    sys.path.insert(0, spec["bench_dir"])
    import concurrency as headline  # benchmarks/concurrency.py, not duplicated here

    server = SimpleNamespace(base_url=spec["base_url"], api_key=spec["api_key"])
    n, tag = spec["n"], f"{spec['side']}-{spec['n']}-{uuid.uuid4().hex[:8]}"
    if spec["side"] == "sequential-sync":
        seconds = headline.run_sequential(server, n, tag)  # type: ignore[arg-type]
    else:
        seconds = asyncio.run(headline.run_gathered(server, n, tag))  # type: ignore[arg-type]
    return {"seconds": seconds, "experiments": n}


# ---- 6. server throughput (bare aiohttp, so the client costs next to nothing) -------------


async def wait_tasks(session: Any, urls: list[str], interval: float = 0.01) -> list[str]:
    """Poll task status URLs until every task is terminal; their final statuses.

    One task at a time (in submission order, which is about the order they finish), so the
    polling itself puts next to no load on the server being measured.
    """
    terminal = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"}
    statuses = []
    for url in urls:
        while True:
            async with session.get(url) as resp:
                status = (await resp.json())["status"]
            if status in terminal:
                statuses.append(status)
                break
            await asyncio.sleep(interval)
    return statuses


def server_experiments(spec: dict[str, Any]) -> dict[str, Any]:
    base = f"{spec['base_url']}/api/v0/projects/{spec['project_id']}"
    k = spec["n"]

    async def main() -> tuple[float, list[str]]:
        async with aiohttp_session(spec, limit=k) as session:

            async def create(i: int) -> str:
                body = {
                    "name": f"throughput {uuid.uuid4().hex[:12]} {i}",
                    "prompt_template_id": spec["tid"],
                    "collection_id": spec["small_collection_id"],
                    "criterion_set_id": spec["criterion_set_id"],
                    "generate": True,
                }
                async with session.post(f"{base}/experiments", json=body) as resp:
                    data = await resp.json()
                    if resp.status != 201:
                        raise RuntimeError(f"create experiment answered {resp.status}: {data}")
                return f"{base}/experiments/{data['id']}/generation/{data['generation_task_id']}"

            start = time.perf_counter()
            urls = await asyncio.gather(*[create(i) for i in range(k)])
            statuses = await wait_tasks(session, list(urls))
            return time.perf_counter() - start, statuses

    seconds, statuses = asyncio.run(main())
    if set(statuses) != {"SUCCESS"}:
        raise RuntimeError(f"experiment tasks ended {sorted(set(statuses))}")
    rows, criteria = spec["small_rows"], spec["criteria"]
    return {
        "seconds": seconds,
        "experiments": k,
        "ratings": k * rows * criteria,
        "per_second": k / seconds,
    }


def server_ratings(spec: dict[str, Any]) -> dict[str, Any]:
    base = f"{spec['base_url']}/api/v0/projects/{spec['project_id']}"
    ids = spec["response_ids"]

    async def main() -> float:
        async with aiohttp_session(spec) as session:
            start = time.perf_counter()
            body = {"prompt_response_ids": ids, "rating_mode": "detailed"}
            async with session.post(f"{base}/ratings/batches", json=body) as resp:
                task_id = await resp.json()
                if resp.status >= 300:
                    raise RuntimeError(f"rating batch answered {resp.status}: {task_id}")
            statuses = await wait_tasks(session, [f"{base}/ratings/batches/{task_id}"])
            if statuses != ["SUCCESS"]:
                raise RuntimeError(f"rating batch ended {statuses}")
            return time.perf_counter() - start

    seconds = asyncio.run(main())
    ratings = len(ids) * spec["criteria"]
    return {"seconds": seconds, "ratings": ratings, "per_second": ratings / seconds}


def server_list(spec: dict[str, Any]) -> dict[str, Any]:
    url = f"{spec['base_url']}/api/v0/projects/{spec['project_id']}/{spec['endpoint']}"
    n, clients = spec["n"], spec["clients"]

    async def main() -> float:
        async with aiohttp_session(spec, limit=clients) as session:
            remaining = n

            async def client() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    async with session.get(url) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise RuntimeError(f"GET {url} answered {resp.status}")

            async with session.get(url) as resp:
                await resp.read()
            start = time.perf_counter()
            await asyncio.gather(*[client() for _ in range(clients)])
            return time.perf_counter() - start

    seconds = asyncio.run(main())
    return {"seconds": seconds, "requests": n, "per_second": n / seconds}


# ---- 7. decode cost alone ---------------------------------------------------------------------


def decode(spec: dict[str, Any]) -> dict[str, Any]:
    """Decode the experiment's saved response pages (bytes read from a file, not timed)."""
    with open(spec["pages_file"], "rb") as fh:
        bodies = [fh.read(size) for size in spec["page_sizes"]]
    side = spec["side"]
    if side == "msgspec-structs":
        import msgspec

        from elluminate.schemas import Page, PromptResponse

        decoder = msgspec.json.Decoder(Page[PromptResponse])

        def run() -> int:
            return sum(len(decoder.decode(b).items) for b in bodies)

    elif side == "json.loads":

        def run() -> int:
            return sum(len(json.loads(b)["items"]) for b in bodies)

    else:  # pydantic models: the official package's own, or a mirror of the same shape
        if side == "official-pydantic":
            from elluminate.schemas import PromptResponse as Model  # the official package
        else:
            try:
                Model = pydantic_mirror()  # noqa: N806
            except ImportError:
                return {"skipped": "pydantic is not installed"}

        def run() -> int:  # the official package's path: json, then model_validate per item
            return sum(
                len([Model.model_validate(item) for item in json.loads(b)["items"]]) for b in bodies
            )

    start = time.perf_counter()
    items = run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "items": items, "bytes": sum(len(b) for b in bodies)}


def pydantic_mirror() -> Any:
    """Pydantic v2 models of the response page item's shape (for a venv without the official
    package): the same fields and types as the wire structs."""
    from datetime import datetime

    from pydantic import BaseModel

    class Column(BaseModel):
        id: int | None = None
        name: str | None = None
        column_type: str | None = None
        default_value: str | None = ""
        column_position: int | None = 0
        categorical_values: list[str] | None = None

    class Collection(BaseModel):
        id: int
        name: str
        description: str = ""
        columns: list[Column] = []
        variables_count: int = 0
        read_only: bool = False
        created_at: datetime | None = None
        updated_at: datetime | None = None
        version: str | None = None
        collection_type: str = "STANDARD"
        environment_config: dict[str, Any] | None = None

    class TemplateVariables(BaseModel):
        id: int
        input_values: dict[str, Any]
        collection: Collection
        created_at: datetime
        environment_config: dict[str, Any] | None = None

    class PromptTemplate(BaseModel):
        id: int
        name: str
        version: int
        messages: list[dict[str, Any]] = []
        placeholders: list[str] = []
        response_format_json_schema: dict[str, Any] | None = None
        tools: list[dict[str, Any]] | None = None
        tool_choice: Any = None
        criterion_set_id: int | None = None
        created_at: datetime | None = None
        updated_at: datetime | None = None

    class Prompt(BaseModel):
        id: int
        prompt_template: PromptTemplate | None = None
        template_variables: TemplateVariables
        messages: list[dict[str, Any]] = []
        created_at: datetime
        resolved_tools: list[dict[str, Any]] | None = None
        resolved_tool_choice: dict[str, Any] | str | None = None
        resolved_response_format: dict[str, Any] | None = None
        is_stale: bool = False

    class GenerationMetadata(BaseModel):
        llm_model_config: dict[str, Any] | None = None
        duration_seconds: float | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        reasoning_tokens: int | None = None
        cached_tokens: int | None = None
        custom_api_info: dict[str, Any] | None = None
        trajectory_ingest_error: str | None = None

    class Criterion(BaseModel):
        id: int
        criterion_str: str
        label: str | None = None
        prompt_template: PromptTemplate | None = None
        template_variables: TemplateVariables | None = None
        created_at: datetime

    class Rating(BaseModel):
        id: int
        criterion: Criterion
        rating: str
        reasoning: str | None = None
        generation_metadata: GenerationMetadata | None = None
        created_at: datetime

    class PromptResponse(BaseModel):
        id: int
        prompt: Prompt
        messages: list[dict[str, Any]]
        generation_metadata: GenerationMetadata | None
        error: str | None
        epoch: int
        termination_reason: str | None = None
        ratings: list[Rating] = []
        trajectory: dict[str, Any] | None = None
        annotation: str = ""
        created_at: datetime

    return PromptResponse


# ---- 8. import ---------------------------------------------------------------------------------


def import_cost(spec: dict[str, Any]) -> dict[str, Any]:
    names = spec["modules"]
    seconds = timed_import(names)
    return {"seconds": seconds}


SECTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "large": large,
    "small": small,
    "gather": small,
    "upload": upload,
    "concurrency": concurrency,
    "server-experiments": server_experiments,
    "server-ratings": server_ratings,
    "server-list": server_list,
    "decode": decode,
    "import": import_cost,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = SECTIONS[spec["section"]](spec)
    result["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
