"""Readable objects: one-line reprs (id, name, status, counts, pass rate) and the notebook
table of per-criterion pass rates, with results hand-computed from the echo judge's rules.

The echo judge says "no" to a criterion or a response containing ECHO_NO, "yes" otherwise.
Rows "AI" and "ECHO_NO" and criteria "Is it clear?" and "Is it <b>bold</b> & ECHO_NO-proof?"
give: clear 1 yes / 1 no (50%), bold 0 yes / 2 no (0%), overall 1 of 4 (25%).
"""

from __future__ import annotations

import pytest

CLEAR = "Is it clear?"
BOLD = "Is it <b>bold</b> & ECHO_NO-proof?"


@pytest.fixture
async def finished(client):
    template = await client.create_prompt_template(name="Readable", template="Explain {{topic}}.")
    collection = await client.create_collection(
        name="Rows", variables=[{"topic": "AI"}, {"topic": "ECHO_NO"}]
    )
    criterion_set = await client.create_criterion_set(name="Two", criteria=[CLEAR, BOLD])
    exp = await client.run_experiment(
        name="Readable run",
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
    )
    return template, collection, criterion_set, exp


async def test_experiment_repr_is_one_short_line(finished):
    *_, exp = finished
    text = repr(exp)
    assert text == (
        f"Experiment(id={exp.id}, name='Readable run', status='finished', responses=2, "
        "failed=0, criteria=2, pass_rate=25.0%)"
    )
    assert str(exp) == text
    assert exp.results.mean_all_ratings.yes == pytest.approx(0.25)  # the data is untouched
    assert len(exp.rated_responses[0].prompt.messages) == 1


async def test_experiment_html_has_the_pass_rate_table(finished):
    *_, exp = finished
    page = exp._repr_html_()
    assert page.startswith("<div>") and f"Experiment {exp.id}: Readable run" in page
    assert "pass rate 25.0%" in page
    assert "<th>Criterion</th><th>Pass rate</th><th>Yes</th><th>No</th>" in page
    assert "<tr><td>Is it clear?</td><td>50.0%</td><td>1</td><td>1</td></tr>" in page
    bold = "Is it &lt;b&gt;bold&lt;/b&gt; &amp; ECHO_NO-proof?"
    assert f"<tr><td>{bold}</td><td>0.0%</td><td>0</td><td>2</td></tr>" in page
    assert "<b>bold</b>" not in page  # criterion text is escaped


async def test_results_repr_and_html(finished):
    *_, exp = finished
    results = exp.results
    assert repr(results) == "ExperimentResults(pass_rate=25.0%, rated=2, failed=0, criteria=2)"
    page = results._repr_html_()
    assert "pass rate 25.0%, 2 rated, 0 failed" in page
    assert page.count("<tr><td>criterion ") == 2


async def test_other_reprs_are_short_and_name_the_key_facts(finished):
    template, collection, criterion_set, exp = finished
    assert repr(template) == (
        f"PromptTemplate(id={template.id}, name='Readable', version=1, "
        "placeholders=['topic'], messages=1)"
    )
    assert repr(collection) == (
        f"TemplateVariablesCollectionWithEntries(id={collection.id}, name='Rows', entries=2, "
        "columns=['topic'])"
    )
    assert repr(criterion_set) == (
        f"CriterionSet(id={criterion_set.id}, name='Two', criteria=2, templates=0)"
    )
    response = next(r for r in exp.responses() if "AI" in r.response_str)
    assert repr(response) == (
        f"PromptResponse(id={response.id}, epoch=1, response='Echo: Explain AI.', "
        "ratings=2, passed=1)"
    )
    rating = next(r for r in response.ratings if r.criterion.criterion_str == CLEAR)
    assert repr(rating).startswith(f"Rating(id={rating.id}, rating='YES', criterion='{CLEAR}'")
    entry = collection.variables[0]
    assert repr(entry) == f"TemplateVariables(id={entry.id}, input_values={{'topic': 'AI'}})"
    for obj in (exp, template, collection, criterion_set, response, rating, entry):
        assert len(repr(obj)) < 200 and "\n" not in repr(obj)


async def test_repr_of_an_experiment_that_never_ran(client, finished):
    template, collection, criterion_set, _ = finished
    exp = await client.create_experiment(
        name="x" * 100, prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    text = repr(exp)
    assert "status='created'" in text and "responses=0" in text and "pass_rate" not in text
    assert "'" + "x" * 59 + "…'" in text  # long names are cut
    assert "No ratings yet." in exp._repr_html_()


async def test_llm_config_repr_hides_the_key(client):
    config = await client.create_llm_config(
        name="Cfg", llm_model_name="gpt-test", api_key="sk-very-secret"
    )
    assert repr(config) == (
        f"LLMConfig(id={config.id}, name='Cfg', llm_model_name='gpt-test', inference_type='openai')"
    )
