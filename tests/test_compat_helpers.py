"""Helpers that exist for parity with the official package: error construction from an HTTP
response, the retry decision, elluminate.utils, TemplateString, request bodies that leave
out unset keys, and the import paths (elluminate.client, .async_client, .utils, schemas.*)."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest
import requests

import elluminate
from elluminate import schemas
from elluminate._async._http import encode_json
from elluminate._transport._base import RawResponse
from elluminate.exceptions import (
    APIError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ResponseInfo,
    ServerError,
    TransportError,
    raise_api_error,
)
from elluminate.utils import (
    DEFAULT_RETRY_CONFIG,
    IDEMPOTENT_HTTP_METHODS,
    RetryConfig,
    raise_for_status_with_detail,
    retry_predicate,
    run_async,
)


def requests_response(status: int, body: bytes, content_type: str = "application/json"):
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.headers["Retry-After"] = "3"
    response.request = requests.Request("GET", "http://x/api?api_key=1").prepare()
    response.url = "http://x/api?api_key=1"
    return response


def raw(status: int, body: bytes, retry_after: str | None = None) -> RawResponse:
    return RawResponse(
        status=status,
        content=body,
        content_type="application/json",
        retry_after=retry_after,
        method="POST",
        url="http://x/y",
    )


# ---- errors from responses ------------------------------------------------------------------


def test_raise_api_error_maps_a_requests_response():
    with pytest.raises(NotFoundError) as info:
        raise_api_error(requests_response(404, b'{"detail": "nope"}'))
    err = info.value
    assert str(err) == "[404] nope" and err.status_code == 404
    assert err.response_info == ResponseInfo(
        status_code=404,
        method="GET",
        url="http://x/api?<redacted>",
        body={"detail": "nope"},
        content_type="application/json",
    )


def test_raise_api_error_message_retry_after_and_text_bodies():
    with pytest.raises(NotFoundError, match=r"^\[404\] custom$"):
        raise_api_error(requests_response(404, b'{"detail": "nope"}'), "custom")
    with pytest.raises(RateLimitError) as info:
        raise_api_error(requests_response(429, b'{"detail": "slow"}'))
    assert info.value.retry_after == 3.0
    with pytest.raises(ServerError, match=r"^\[500\] oops$") as info:
        raise_api_error(requests_response(500, b"oops", "text/plain"))
    assert info.value.response_info.body == "oops"
    with pytest.raises(APIError, match=r"^\[400\] HTTP 400$"):
        raise_api_error(requests_response(400, b""))


def test_raise_api_error_maps_this_sdks_responses():
    with pytest.raises(ConflictError) as info:
        raise_api_error(raw(409, b'{"detail": "exists", "prompt_template_id": 4}'))
    assert info.value.resource_id == 4 and info.value.response_info.method == "POST"
    with pytest.raises(RateLimitError) as info:
        raise_api_error(raw(429, b"{}", retry_after="2"))
    assert info.value.retry_after == 2.0


def test_raise_for_status_with_detail_passes_2xx():
    raise_for_status_with_detail(requests_response(204, b""))
    raise_for_status_with_detail(raw(200, b"{}"))
    with pytest.raises(NotFoundError):
        raise_for_status_with_detail(raw(404, b'{"detail": "gone"}'))


def test_errors_take_a_response_positionally_like_the_official_ones():
    err = APIError("bad", 400, requests_response(400, b'{"detail": "bad"}'))
    assert err.response_info is not None and err.response_info.body == {"detail": "bad"}
    limited = RateLimitError("slow", 429, None, 1.5)
    assert (limited.status_code, limited.retry_after) == (429, 1.5)
    conflict = ConflictError("dup", 409, None, "collection", "C", 3)
    assert (conflict.resource_type, conflict.resource_name, conflict.resource_id) == (
        "collection",
        "C",
        3,
    )
    assert NotFoundError("x").status_code is None


# ---- retry decision and utils ---------------------------------------------------------------


def test_should_retry_follows_the_policy():
    config = RetryConfig()
    assert config.should_retry(RateLimitError("x"))
    assert config.should_retry(ServerError("x", 503), idempotent=False)
    assert config.should_retry(ServerError("x", 502))
    assert not config.should_retry(ServerError("x", 502), idempotent=False)
    assert not config.should_retry(ServerError("x", 500))
    assert not config.should_retry(NotFoundError("x", 404))
    assert config.should_retry(TransportError("reset"))
    assert not config.should_retry(TransportError("reset"), idempotent=False)
    assert not config.should_retry(ValueError("x"))
    assert not RetryConfig(retry_on_429=False).should_retry(RateLimitError("x"))
    assert retry_predicate(ServerError("x", 504)) and not retry_predicate(ServerError("x", 501))
    assert DEFAULT_RETRY_CONFIG == RetryConfig()
    assert {"GET", "PUT", "DELETE"} <= IDEMPOTENT_HTTP_METHODS and "POST" not in (
        IDEMPOTENT_HTTP_METHODS
    )


def test_run_async_makes_a_blocking_function():
    async def add(x: int, y: int = 2) -> int:
        await asyncio.sleep(0)
        return x + y

    blocking = run_async(add)
    assert blocking(1) == 3 and blocking(1, y=5) == 6
    assert blocking.__name__ == "add"


# ---- schemas helpers ------------------------------------------------------------------------


def test_template_string():
    text = schemas.TemplateString(template_str="Hi {{ name }} and {{x}}")
    assert text.is_template and text.placeholders == {"name", "x"}
    assert str(text) == "Hi {{ name }} and {{x}}"
    assert text.render(name="A", x="B", extra="ignored") == "Hi A and B"
    with pytest.raises(ValueError, match="x"):
        text.render(name="A")
    plain = schemas.TemplateString(template_str="plain")
    assert not plain.is_template and plain.placeholders == set()


def test_request_bodies_leave_out_unset_keys_but_send_the_rest():
    body = msgspec.json.decode(encode_json(schemas.CreateCollectionRequest(name="C")))
    assert body == {
        "name": "C",
        "description": "",
        "read_only": False,
        "collection_type": "STANDARD",
    }
    run = msgspec.json.decode(encode_json(schemas.RunExperimentRequest()))
    assert run == {"rating_mode": "detailed", "n_epochs": 1}
    with_params = schemas.RunExperimentRequest(generation_params=schemas.GenerationParams())
    assert "generation_params" in msgspec.json.decode(encode_json(with_params))
    template = msgspec.json.decode(encode_json(schemas.CreatePromptTemplateRequest(name="T")))
    assert template["messages"] == [] and template["parent_prompt_template_id"] is None


def test_official_names_are_the_same_classes():
    assert schemas.CreateTemplateVariablesRequest is schemas.CreateEntryRequest
    assert schemas.EditCriterionRequest is schemas.UpdateCriterionRequest
    assert schemas.BatchCreateRatingRequest is schemas.BatchRateRequest
    assert schemas.ExperimentGenerationStatus is schemas.TaskStatusPayload
    status = msgspec.json.decode(
        b'{"status": "SUCCESS"}', type=schemas.BatchCreateRatingResponseStatus
    )
    assert isinstance(status, schemas.BatchCreateStatus) and status.error_msg is None


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("elluminate.client", "Client"),
        ("elluminate.client", "CollectionDefaults"),
        ("elluminate.async_client", "AsyncClient"),
        ("elluminate.utils", "RetryConfig"),
        ("elluminate.evaluate", "evaluate"),
        ("elluminate.schemas.prompt_template", "TemplateString"),
        ("elluminate.schemas.experiments", "ExperimentResults"),
        ("elluminate.schemas.response", "ResponsesStats"),
        ("elluminate.schemas.experiment_map", "ExperimentMap"),
        ("elluminate.schemas.base", "BatchCreateStatus"),
    ],
)
def test_official_import_paths(module, name):
    found = getattr(importlib.import_module(module), name)
    assert found is getattr(elluminate, name, found)
    if module.startswith("elluminate.schemas."):
        assert found is getattr(schemas, name)
    assert elluminate.RetryConfig is elluminate.utils.RetryConfig
    assert elluminate.Client is elluminate.client.Client


# ---- the pydantic model API of the official objects -----------------------------------------

GOLDEN_FILE = Path(__file__).parent / "golden" / "official-requests-by-call.json"
EXAMPLE = json.loads(GOLDEN_FILE.read_text())["objects"]["experiment"]


def test_model_validate_and_dump_round_trip():
    exp = schemas.Experiment.model_validate(EXAMPLE)
    assert exp.created_at == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert list(exp.results.mean_rating_by_criterion_id) == [
        int(k) for k in EXAMPLE["results"]["mean_rating_by_criterion_id"]
    ]
    dumped = exp.model_dump()
    assert dumped["created_at"] == exp.created_at  # python mode keeps datetimes
    assert dumped["collection"]["name"] == EXAMPLE["collection"]["name"]
    as_json = exp.model_dump(mode="json")
    assert as_json["created_at"] == "2024-01-01T00:00:00Z"
    assert json.loads(exp.model_dump_json()) == as_json
    assert schemas.Experiment.model_validate_json(exp.model_dump_json()) == exp
    assert set(exp.model_dump(include={"id", "name"})) == {"id", "name"}
    assert "rated_responses" not in exp.model_dump(exclude={"rated_responses"})
    assert None not in exp.model_dump(exclude_none=True).values()
    assert exp.model_dump_json(indent=2).startswith('{\n  "id": 101')
    with pytest.raises(ValueError, match="invalid Experiment"):
        schemas.Experiment.model_validate({**EXAMPLE, "id": "x"})


def test_model_copy_shallow_deep_and_update():
    exp = schemas.Experiment.model_validate(EXAMPLE)
    shallow = exp.model_copy(update={"name": "Other"})
    assert shallow.name == "Other" and exp.name == "E"
    assert shallow.collection is exp.collection
    deep = exp.model_copy(deep=True)
    assert deep == exp and deep.collection is not exp.collection
