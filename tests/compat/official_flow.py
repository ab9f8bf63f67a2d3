"""Runs the OFFICIAL elluminate package (black box, its own virtualenv) against our server.

Usage: python official_flow.py BASE_URL API_KEY STAGE   (STAGE: basic | full | projects | views)
Prints one line "OK <stage> <details>" on success; any exception fails the run.
"""

from __future__ import annotations

import sys
from typing import Any

from elluminate import Client  # the official package, not this repository's


def basic(client: Client) -> str:
    template = client.create_prompt_template(name="Compat", messages="Explain {{topic}} briefly.")
    again = client.get_prompt_template(name="Compat")
    assert again.id == template.id, (again, template)
    assert list(again.placeholders) == ["topic"], again.placeholders
    same, created = client.get_or_create_prompt_template(
        name="Compat", messages="Explain {{topic}} briefly."
    )
    assert not created and same.id == template.id
    collection = client.create_collection(name="CompatTopics", variables=[{"topic": "AI"}])
    collection.add_many(variables=[{"topic": "ML"}, {"topic": "AI"}], skip_existing=True)
    fetched = client.get_collection(name="CompatTopics")
    topics = sorted(v.input_values["topic"] for v in fetched.variables)
    assert topics == ["AI", "ML"], topics
    listed = [t.name for t in client.list_prompt_templates()]
    assert "Compat" in listed, listed
    return f"template={template.id} collection={fetched.id} rows={len(topics)}"


def full(client: Client) -> str:
    details = basic(client)
    template = client.get_prompt_template(name="Compat")
    criteria = template.generate_criteria()
    assert criteria, "no criteria generated"
    collection = client.get_collection(name="CompatTopics")
    experiment = client.run_experiment(
        name="CompatRun", prompt_template=template, collection=collection
    )
    responses = list(experiment.responses())
    assert len(responses) == 2, len(responses)
    for response in responses:
        assert response.response_str, response
        assert len(response.ratings) == len(criteria), response.ratings
        for rating in response.ratings:
            assert rating.criterion.criterion_str and rating.rating in ("YES", "NO")
    assert experiment.results is not None
    return f"{details} criteria={len(criteria)} pass_rate={experiment.results.mean_all_ratings.yes}"


def projects(client: Client) -> str:
    listed = client.projects.list_projects()
    assert [p.id for p in listed] == [client.current_project.id], listed
    selected = client.projects.select_project(listed[0].id)
    assert client.project_route_prefix.endswith(f"/api/v0/projects/{selected.id}")
    created = client.projects.create("CompatSecond", public_in_org=True)
    assert created.name == "CompatSecond" and created.public_in_org, created
    assert created.organization.id == selected.organization.id
    loaded = client.projects.load_project()
    assert loaded.id == selected.id, loaded
    try:
        client.projects.select_project(created.id + 1000)
    except ValueError:  # NotFoundError is a ValueError too
        pass
    else:
        raise AssertionError("selecting an unknown project did not fail")
    return f"project={selected.id} created={created.id}"


def views(client: Client) -> str:
    """The Advanced views (samples, comparison samples, stats, map) on data whose figures
    follow from the echo rules: A generates "Echo: Explain AI briefly." (3 words in, 4 out,
    passes both criteria) and, for the ECHO_NO row, 4 in / 5 out failing both; B stores
    "ECHO_NO worse" (fails both) and "better" (passes both), each 4/2 tokens and 1.0 s."""
    from elluminate.schemas import (
        GenerationMetadata,
        RatingValue,
        ResponsesSampleFilter,
        ResponsesSampleSortBy,
    )

    template = client.create_prompt_template(name="Views", messages="Explain {{topic}} briefly.")
    rows = client.create_collection(
        name="ViewRows",
        variables=[{"topic": "AI", "lang": "de"}, {"topic": "ECHO_NO cats", "lang": "en"}],
    )
    criteria = client.create_criterion_set(
        name="ViewQuality", criteria=["Is it clear?", "Is it short?"]
    )
    clear, short = (c.id for c in criteria.criteria)
    a = client.run_experiment(
        name="ViewsA", prompt_template=template, collection=rows, criterion_set=criteria
    )
    b = client.create_experiment(
        name="ViewsB", prompt_template=template, collection=rows, criterion_set=criteria
    )
    entries = sorted(rows.variables, key=lambda v: v.id)
    r1, r2 = (e.id for e in entries)
    metadata = GenerationMetadata(duration_seconds=1.0, input_tokens=4, output_tokens=2)
    b.add_responses(["ECHO_NO worse", "better"], template_variables=entries,
                    metadata=[metadata, metadata])
    b.rate_responses()

    def rows_of(samples: list[Any]) -> list[int]:
        return [s.template_variables_id for s in samples]

    responses = client._responses
    assert rows_of(responses.list_samples(a)) == [r1, r2]
    assert rows_of(responses.list_samples(a, exclude_perfect_responses=True)) == [r2]
    failing = ResponsesSampleFilter(experiment_id=a.id, criteria_filter_by={clear: RatingValue.NO})
    assert rows_of(responses.list_samples(a, filters=failing)) == [r2]
    rating_up = responses.list_samples(a, sort_by=ResponsesSampleSortBy.RATING_ASC)
    assert rows_of(rating_up) == [r2, r1], rating_up
    improved = client.list_comparison_samples(a, b, filter_samples_by="improved")
    assert [(s.experiment_id, s.template_variables_id) for s in improved] == [
        (a.id, r2), (b.id, r2)
    ], improved
    regressed = client.list_comparison_samples(
        a, b, filter_samples_by="regressed", criterion_ids=[short],
        categorical_filters={"lang": ["de"]},
    )
    assert rows_of(regressed) == [r1, r1], regressed
    assert len(client.list_comparison_samples(a, b)) == 4
    stats = responses.get_stats(days=7)
    assert stats.total_responses == 4, stats
    assert (stats.total_input_tokens, stats.total_output_tokens) == (3 + 4 + 8, 4 + 5 + 4)
    assert (stats.average_input_tokens, stats.average_output_tokens) == (3.75, 3.25)
    assert stats.average_rating == 0.5, stats
    assert len(stats.daily_usage) == 7 and stats.daily_usage[-1].requests == 4
    idle = client.create_llm_config(name="ViewsIdle", llm_model_name="m", api_key="sk-x")
    quiet = responses.get_stats(llm_config=idle, days=1)
    assert (quiet.total_responses, quiet.average_rating) == (0, None), quiet
    mapped = client._experiments.get_map(b, page=1, limit=1)
    assert (mapped.num_samples, mapped.num_responses) == (2, 2), mapped
    [sample] = mapped.samples
    [response] = sample.responses
    assert sample.template_variables_id == r1 and sample.persona is None
    assert (response.num_criteria_passed, response.num_criteria_failed) == (0, 2), response
    second = client._experiments.get_map(b.id, page=2, limit=1)
    assert second.samples[0].responses[0].num_criteria_passed == 2
    return (
        f"samples={len(responses.list_samples(a))} improved={len(improved)} "
        f"requests={stats.total_responses} map={mapped.num_samples}"
    )


def main() -> None:
    base_url, api_key, stage = sys.argv[1], sys.argv[2], sys.argv[3]
    with Client(base_url=base_url, api_key=api_key) as client:
        stages = {"basic": basic, "full": full, "projects": projects, "views": views}
        result = stages[stage](client)
    print(f"OK {stage} {result}")


if __name__ == "__main__":
    main()
