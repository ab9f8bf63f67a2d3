"""Fuzzing every operation of ``/openapi.json`` with schemathesis (issue 6, item 4).

The document is fetched from a running server, so the fuzzer sees exactly what is served.
For every operation schemathesis generates schema-conforming (positive) and
schema-violating (negative) requests; path ids are steered towards objects that exist (a
seeded project with an experiment that ran), so handlers get past their 404 checks. Every
request carries the API key. The only property checked: no answer is a 5xx, and every error
answer is JSON with a ``detail``.

``ELLUMINATE_FUZZ_EXAMPLES`` (default 30 per operation) and ``ELLUMINATE_FUZZ_SEED``
(default: derandomized, the same cases on every run) allow deeper local runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from elluminate.server import LocalServer

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("ELLUMINATE_FUZZ_EXAMPLES", "30"))
SEED = os.environ.get("ELLUMINATE_FUZZ_SEED")


@pytest.fixture
def fuzz_server(tmp_path: Any) -> Iterator[LocalServer]:
    with LocalServer(db_path=tmp_path / "fuzz.db", llm="echo", page_size=20) as srv:
        yield srv


def _configure(test: Any) -> Any:
    """Hypothesis settings (and the seed, when given) for one operation's test."""
    test = settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        print_blob=True,
    )(test)
    return hypothesis.seed(int(SEED))(test) if SEED is not None else test


def test_fuzz_every_operation_finds_no_server_error(
    fuzz_server: LocalServer, api_factory: Any, seed: Any
) -> None:
    api = api_factory(fuzz_server.base_url, fuzz_server.api_key)
    ids = seed(api)
    seed(api, tag="-2")
    pid = api.pid
    known_ids = list(range(1, 6)) + [ids["response_id"], ids["experiment_id"]]
    task_ids = [ids["task_id"], ids["rating_task_id"]]

    doc = requests.get(fuzz_server.base_url + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(
        1 for item in doc["paths"].values() for m in item if m in {"get", "post", "put",
                                                                    "patch", "delete"}
    )
    headers = {"X-API-Key": fuzz_server.api_key}
    session = requests.Session()
    sent: dict[str, int] = {}
    statuses: dict[int, int] = {}
    failures: list[str] = []
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]

    def steer(case: Any, data: Any) -> None:
        """Point ids at existing objects most of the time (else 404 hides the handler)."""
        params = case.path_parameters or {}
        for name, value in list(params.items()):
            if name == "project_id":
                if data.draw(st.integers(0, 9), label="keep_project") < 9:
                    params[name] = pid
            elif name == "task_id":
                if data.draw(st.integers(0, 4), label="real_task") < 4:
                    params[name] = data.draw(st.sampled_from(task_ids), label="task")
            elif isinstance(value, int) and data.draw(st.integers(0, 4), label="real_id") < 4:
                params[name] = data.draw(st.sampled_from(known_ids), label="id")

    start = time.perf_counter()
    for operation in operations:
        label = operation.label
        strategies = []
        for mode in modes:
            try:
                strategies.append(operation.as_strategy(generation_mode=mode))
            except Exception:  # e.g. nothing to negate for an operation without inputs
                continue
        assert strategies, label

        @_configure
        @given(case=st.one_of(*strategies), data=st.data())
        def run(case: Any, data: Any) -> None:
            label = case.operation.label
            steer(case, data)
            kwargs = case.as_transport_kwargs(base_url=fuzz_server.base_url, headers=headers)
            kwargs.pop("cookies", None)
            try:
                resp = session.request(**kwargs, timeout=30, stream=True)
            except requests.RequestException as exc:
                failures.append(f"{label}: no answer ({exc!r}) for {kwargs}")
                return
            sent[label] = sent.get(label, 0) + 1
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            try:
                if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
                    return  # a live stream: the status line is what matters
                body = resp.content
                if resp.status_code >= 500:
                    failures.append(
                        f"{label}: {resp.status_code} {body[:300]!r} for {case.method} "
                        f"{kwargs.get('url')} params={kwargs.get('params')} "
                        f"body={str(kwargs.get('json', kwargs.get('data')))[:300]}"
                    )
                elif resp.status_code >= 400 and case.method != "HEAD":
                    detail = resp.json().get("detail")
                    if not (isinstance(detail, str) and detail):
                        failures.append(f"{label}: {resp.status_code} without detail: {body!r}")
            finally:
                resp.close()

        run()

    elapsed = time.perf_counter() - start
    session.close()
    api.close()
    total = sum(sent.values())
    print(f"\nfuzz: {total} requests over {len(operations)} operations in {elapsed:.1f} s, "
          f"{len(failures)} failures; statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n".join(failures[:20])
    assert set(sent) == {op.label for op in operations}, "some operation was never called"
    assert total >= len(operations) * 5  # operations without inputs run out of cases early
    assert sum(n for code, n in statuses.items() if code < 300) >= len(operations)
