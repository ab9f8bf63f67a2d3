"""Samples, comparison samples, stats and the experiment map: the exact requests (as the
official package sends them, from tests/golden/official-requests-by-call.json) and the
parsed answers, against a recording stub (the real server's answers: test_views_server.py).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from elluminate import AsyncClient, schemas
from elluminate.schemas import RatingValue, ResponsesSampleFilter, ResponsesSampleSortBy

GOLDEN_FILE = Path(__file__).parents[1] / "golden" / "official-requests-by-call.json"
GOLDEN = json.loads(GOLDEN_FILE.read_text())
OBJECTS = GOLDEN["objects"]
PREFIX = "/api/v0/projects/7"
SAMPLES = [
    {"experiment_id": 101, "template_variables_id": 5, "prompt_response_ids": [91, 92]},
    {"experiment_id": 102, "template_variables_id": 5, "prompt_response_ids": [93]},
]


def golden(call):
    return GOLDEN["requests"][call]


def assert_sent_like_official(recorder, expected):
    [sent] = recorder.sent(expected["method"], expected["path"])
    assert sent.query == expected["query"]
    assert sent.body == expected["body"]
    for key, value in expected["headers"].items():
        assert sent.headers[key] == value, key


@pytest.fixture
async def stub(recorder):
    recorder.answer("GET", "/api/v0/projects", {"items": [OBJECTS["project"]], "count": 1})
    recorder.answer("GET", f"{PREFIX}/experiments/101", OBJECTS["experiment"])
    recorder.answer("GET", f"{PREFIX}/llm_configs/61", OBJECTS["llm_config"])
    async with AsyncClient(base_url=recorder.base_url, api_key="KEY123") as client:
        experiment = await client.get_experiment(id=101, fetch_responses=False)
        llm_config = await client.get_llm_config(id=61)
        yield client, experiment, llm_config


async def test_comparison_samples_request_and_answer(stub, recorder):
    client, e, _ = stub
    recorder.answer("GET", f"{PREFIX}/responses/comparison/samples", SAMPLES)
    samples = await client.list_comparison_samples(
        e, e, filter_samples_by="improved", criterion_ids=[1, 2], categorical_filters={"cat": ["a"]}
    )
    assert_sent_like_official(recorder, golden("comparison_samples"))
    assert [type(s) for s in samples] == [schemas.ResponsesSample] * 2
    assert [s.prompt_response_ids for s in samples] == [[91, 92], [93]]


async def test_comparison_samples_without_filters_sends_only_the_ids(stub, recorder):
    client, e, _ = stub
    recorder.answer("GET", f"{PREFIX}/responses/comparison/samples", [])
    assert await client.list_comparison_samples(e, 102) == []
    [sent] = recorder.sent("GET", f"{PREFIX}/responses/comparison/samples")
    assert sent.query == {"experiment_a_id": ["101"], "experiment_b_id": ["102"]}


async def test_response_samples_request(stub, recorder):
    client, e, _ = stub
    recorder.answer("GET", f"{PREFIX}/responses/samples", SAMPLES[:1])
    samples = await client.list_response_samples(e, exclude_perfect_responses=True)
    assert_sent_like_official(recorder, golden("response_samples"))
    assert samples[0].template_variables_id == 5


async def test_response_samples_filters_and_sort(stub, recorder):
    client, e, _ = stub
    recorder.answer("GET", f"{PREFIX}/responses/samples", [])
    filters = ResponsesSampleFilter(
        experiment_id=101,
        criteria_filter_by={3: RatingValue.NO},
        duration_seconds_max=2.5,
        input_tokens_min=10,
    )
    await client.list_response_samples(
        e,
        show_only_annotated_responses=True,
        filters=filters,
        sort_by=ResponsesSampleSortBy.DURATION_DESC,
    )
    [sent] = recorder.sent("GET", f"{PREFIX}/responses/samples")
    assert sent.query == {
        "experiment_id": ["101"],
        "criteria_filter_by": ['{"3": "NO"}'],
        "duration_seconds_max": ["2.5"],
        "input_tokens_min": ["10"],
        "show_only_annotated_responses": ["true"],
        "sort_by": ["duration-desc"],
    }


async def test_response_stats_request_and_answer(stub, recorder):
    client, _, llm = stub
    recorder.answer(
        "GET",
        f"{PREFIX}/responses/stats",
        {
            "total_responses": 3,
            "average_duration_seconds": 1.5,
            "min_duration_seconds": 1.0,
            "max_duration_seconds": 2.0,
            "total_input_tokens": 30,
            "total_output_tokens": 12,
            "average_input_tokens": 10.0,
            "average_output_tokens": 4.0,
            "average_rating": None,
            "daily_usage": [
                {"date": "2025-03-01", "requests": 2, "input_tokens": 20, "output_tokens": 8},
                {"date": "2025-03-02", "requests": 1},
            ],
        },
    )
    stats = await client.get_response_stats(llm_config=llm, days=7)
    assert_sent_like_official(recorder, golden("response_stats"))
    assert stats.total_responses == 3 and stats.average_rating is None
    assert stats.daily_usage[0].date == date(2025, 3, 1)
    assert (stats.daily_usage[1].input_tokens, stats.daily_usage[1].output_tokens) == (0, 0)


async def test_response_stats_default_config_and_bounds(stub, recorder):
    client, _, _ = stub
    recorder.answer(
        "GET",
        f"{PREFIX}/responses/stats",
        {
            "total_responses": 0,
            "total_input_tokens": 0,
            "total_output_tokens": 0,
            "average_input_tokens": 0.0,
            "average_output_tokens": 0.0,
            "daily_usage": [],
        },
    )
    stats = await client.get_response_stats()
    assert stats.average_duration_seconds is None
    [sent] = recorder.sent("GET", f"{PREFIX}/responses/stats")
    assert sent.query == {"days": ["30"]}
    for days in (0, 91, 2.5):
        with pytest.raises(ValueError, match="days must be an integer from 1 to 90"):
            await client.get_response_stats(days=days)
    assert len(recorder.sent("GET", f"{PREFIX}/responses/stats")) == 1


async def test_experiment_map_request_and_answer(stub, recorder):
    client, e, _ = stub
    recorder.answer(
        "GET",
        f"{PREFIX}/experiments/101/map",
        {
            "experiment_id": 101,
            "name": "E",
            "num_samples": 1,
            "num_responses": 2,
            "samples": [
                {
                    "template_variables_id": 5,
                    "persona": None,
                    "responses": [
                        {
                            "response_id": 91,
                            "epoch": 1,
                            "has_trajectory": False,
                            "has_error": False,
                            "num_criteria_passed": 2,
                            "num_criteria_failed": 0,
                        },
                        {"response_id": 92, "epoch": 2, "has_trajectory": False, "has_error": True},
                    ],
                }
            ],
        },
    )
    mapped = await client.get_experiment_map(e)
    assert_sent_like_official(recorder, golden("experiment_map"))
    assert isinstance(mapped, schemas.ExperimentMap)
    [sample] = mapped.samples
    assert [r.has_error for r in sample.responses] == [False, True]
    assert sample.responses[1].num_criteria_passed is None


async def test_bad_view_arguments_are_refused_before_sending(stub, recorder):
    client, e, _ = stub
    before = len(recorder.requests)
    with pytest.raises(ValueError, match="filter_samples_by"):
        await client.list_comparison_samples(e, e, filter_samples_by="better")
    with pytest.raises(ValueError, match="categorical_filters"):
        await client.list_comparison_samples(e, e, categorical_filters={"cat": "a"})
    with pytest.raises(ValueError, match="experiment_id"):
        await client.list_response_samples(e, filters=ResponsesSampleFilter(experiment_id=5))
    with pytest.raises(ValueError):
        await client.list_response_samples(e, sort_by="fastest")
    with pytest.raises(ValueError, match="at least 1"):
        await client.get_experiment_map(e, page=0)
    assert len(recorder.requests) == before
