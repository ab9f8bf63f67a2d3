"""Runs the OFFICIAL elluminate package (black box, its own virtualenv) against our server.

Usage: python official_flow.py BASE_URL API_KEY STAGE   (STAGE: basic | full | projects)
Prints one line "OK <stage> <details>" on success; any exception fails the run.
"""

from __future__ import annotations

import sys

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


def main() -> None:
    base_url, api_key, stage = sys.argv[1], sys.argv[2], sys.argv[3]
    with Client(base_url=base_url, api_key=api_key) as client:
        result = {"basic": basic, "full": full, "projects": projects}[stage](client)
    print(f"OK {stage} {result}")


if __name__ == "__main__":
    main()
