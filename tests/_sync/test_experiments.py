# DO NOT EDIT: generated from tests/_async/test_experiments.py by scripts/unasync.py; edit the _async original.
"""Experiments end to end on both twins: run, stream, results, rich methods, terminal states."""

from __future__ import annotations

import pytest

from elluminate import Client, RatingMode, TaskStatus
from elluminate.exceptions import (
    ConflictError,
    NotFoundError,
    TaskFailedError,
    TaskTimeoutError,
)
from elluminate.server import LocalServer
from elluminate.server.evaluation.providers.echo import echo_verdict

CRITERIA = ["Is the answer relevant?", "Is it clear?"]


@pytest.fixture
def criterion_set(client):
    return client.create_criterion_set(name="Quality", criteria=CRITERIA)


def expected_yes_fraction(experiment) -> float:
    verdicts = [
        echo_verdict(c, r.response_str)[0] for r in experiment.responses() for c in CRITERIA
    ]
    return sum(v == "yes" for v in verdicts) / len(verdicts)


def test_run_experiment_end_to_end(client, template, collection, criterion_set):
    exp = client.run_experiment(
        name="Run", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    responses = list(exp.responses())
    assert len(responses) == 2
    assert exp.generation_task_id is None
    for response in responses:
        topic = response.prompt.template_variables.input_values["topic"]
        assert response.response_str == f"Echo: Explain {topic} briefly."
        assert [r.criterion.criterion_str for r in response.ratings] == CRITERIA
        for rating in response.ratings:
            verdict, _ = echo_verdict(rating.criterion.criterion_str, response.response_str)
            assert rating.rating.value == verdict.upper()
            assert rating.reasoning
    assert exp.results is not None
    assert exp.results.mean_all_ratings.yes == pytest.approx(expected_yes_fraction(exp))
    assert exp.results.num_rated_responses == 2
    assert set(exp.results.mean_rating_by_criterion_id) == {c.id for c in criterion_set.criteria}


def test_run_with_criteria_list_and_epochs(client, template, collection):
    exp = client.run_experiment(
        name="Epochs",
        prompt_template=template,
        collection=collection,
        criteria=["Is it short?"],
        n_epochs=2,
        rating_mode=RatingMode.FAST,
    )
    assert len(exp.rated_responses) == 4
    assert sorted({r.epoch for r in exp.rated_responses}) == [1, 2]
    assert exp.criterion_set.name.startswith("Epochs Criteria (")
    with pytest.raises(ValueError, match="not both"):
        client.run_experiment(
            name="X",
            prompt_template=template,
            collection=collection,
            criteria=["a"],
            criterion_set=exp.criterion_set,
        )


def test_uses_the_templates_linked_criteria(client, template, collection):
    template.generate_criteria()
    exp = client.run_experiment(
        name="Linked", prompt_template=template, collection=collection
    )
    assert exp.criterion_set.id == template.criterion_set_id
    assert all(r.ratings for r in exp.rated_responses)


def test_get_list_delete(client, template, collection, criterion_set):
    exp = client.run_experiment(
        name="G", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    by_name = client.get_experiment(name="G")
    assert by_name.id == exp.id and len(by_name.rated_responses) == 2
    light = client.get_experiment(id=exp.id, fetch_responses=False)
    assert light.rated_responses == []
    assert [e.id for e in client.list_experiments(prompt_template=template)] == [exp.id]
    assert client.list_experiments(collection=client.create_collection(name="E")) == []
    with pytest.raises(ConflictError):
        client.create_experiment(
            name="G", prompt_template=template, collection=collection, criterion_set=criterion_set
        )
    client.delete_experiment(exp)
    with pytest.raises(NotFoundError):
        client.get_experiment(name="G")


def test_create_then_run_clone_and_fetch(client, template, collection, criterion_set):
    exp = client.create_experiment(
        name="Later", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    assert exp.rated_responses == [] and exp.results is None
    exp.run()
    assert len(exp.rated_responses) == 2 and exp.results is not None
    clone = exp.clone(name="Later 2")
    assert clone.id != exp.id and clone.prompt_template.id == template.id
    assert clone.rated_responses == []
    ids = [r.id for r in exp.rated_responses]
    exp.rated_responses = []
    fetched = exp.fetch_responses()
    assert fetched is exp  # chains, as in the official package
    assert [r.id for r in exp.rated_responses] == ids


def test_add_and_rate_external_responses(client, template, collection, criterion_set):
    exp = client.create_experiment(
        name="External",
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
    )
    rows = collection.variables
    added = exp.add_responses(
        responses=["A fine answer", [{"role": "assistant", "content": "ECHO_NO here"}]],
        template_variables=rows,
    )
    assert [r.response_str for r in added] == ["A fine answer", "ECHO_NO here"]
    ratings = exp.rate_responses()
    assert len(ratings) == 2 and all(len(r) == len(CRITERIA) for r in ratings)
    assert [x.rating.value for x in ratings[1]] == ["NO", "NO"]
    assert exp.results is not None and exp.results.mean_all_ratings.yes == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one entry per response"):
        exp.add_responses(responses=["x"], template_variables=rows)


def test_stream_experiment_progress_and_result(client, template, collection):
    events = []
    for event in client.stream_experiment(
        name="Streamed",
        prompt_template=template,
        collection=collection,
        criteria=["Is it accurate?", "Is it helpful?"],
        polling_interval=0.1,
    ):
        events.append(event)
    assert sum(e.is_complete for e in events) == 1 and events[-1].is_complete
    final = events[-1]
    assert final.status == TaskStatus.SUCCESS and final.is_success and not final.is_failure
    assert final.result is not None and len(final.result.rated_responses) == 2
    rated = [e.progress.responses_rated for e in events if e.progress]
    assert rated == sorted(rated)
    with pytest.raises(ValueError, match="polling_interval"):
        for _ in client.stream_experiment(
            name="Bad",
            prompt_template=template,
            collection=collection,
            criteria=["x"],
            polling_interval=0.01,
        ):
            pass


def test_refused_stream_experiment_leaves_no_criterion_set(
    client, template, collection, criterion_set
):
    client.create_experiment(
        name="Taken", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    with pytest.raises(ConflictError) as info:
        for _ in client.stream_experiment(
            name="Taken", prompt_template=template, collection=collection, criteria=["Short?"]
        ):
            pass
    assert (info.value.resource_type, info.value.resource_name) == ("experiment", "Taken")
    assert [s.id for s in client.list_criterion_sets()] == [criterion_set.id]
    with pytest.raises(ValueError, match="n_epochs"):  # refused before anything is created
        for _ in client.stream_experiment(
            name="Fresh",
            prompt_template=template,
            collection=collection,
            criteria=["Short?"],
            n_epochs=0,
        ):
            pass
    assert [s.id for s in client.list_criterion_sets()] == [criterion_set.id]
    assert [e.name for e in client.list_experiments()] == ["Taken"]


def test_stream_batch_rate(client, template, collection, criterion_set):
    exp = client.run_experiment(
        name="Rate", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    events = [
        e for e in client.stream_batch_rate(list(exp.responses()), polling_interval=0.1)
    ]
    assert sum(e.is_complete for e in events) == 1
    assert events[-1].status == TaskStatus.SUCCESS and events[-1].progress is None
    assert len(events[-1].result) == 2 and all(len(r) == 2 for r in events[-1].result)


def test_failure_is_raised_and_streamed(client, template, criterion_set):
    bad = client.create_collection(
        name="Bad", variables=[{"topic": "ECHO_FAIL one"}, {"topic": "ECHO_FAIL two"}]
    )
    with pytest.raises(TaskFailedError) as info:
        client.run_experiment(
            name="Fails", prompt_template=template, collection=bad, criterion_set=criterion_set
        )
    assert info.value.status == "FAILURE" and info.value.error_msg
    events = [
        e
        for e in client.stream_experiment(
            name="Fails 2",
            prompt_template=template,
            collection=bad,
            criteria=["x?"],
            polling_interval=0.1,
        )
    ]
    assert events[-1].status == TaskStatus.FAILURE and events[-1].error_msg
    assert sum(e.is_complete for e in events) == 1


def test_retry_failed_reruns_only_failed_rows(client, template, criterion_set):
    coll = client.create_collection(
        name="Mixed", variables=[{"topic": "fine"}, {"topic": "ECHO_FAIL"}]
    )
    exp = client.run_experiment(
        name="Mixed", prompt_template=template, collection=coll, criterion_set=criterion_set
    )
    ok = [r for r in exp.rated_responses if r.error is None]
    failed = [r for r in exp.rated_responses if r.error is not None]
    assert len(ok) == 1 and len(failed) == 1 and "ECHO_FAIL" in (failed[0].error or "")
    assert exp.results is not None and exp.results.num_failed_responses == 1
    bad_row = next(v for v in coll.variables if v.input_values["topic"] == "ECHO_FAIL")
    with pytest.raises(TaskFailedError, match="ECHO_FAIL"):  # the row still fails
        exp.retry_failed()
    coll.update_entry(bad_row, {"topic": "fixed"})
    exp.retry_failed()
    ids = {r.id for r in exp.rated_responses}
    assert ok[0].id in ids and failed[0].id not in ids and len(ids) == 2
    assert all(r.error is None and r.ratings for r in exp.rated_responses)
    assert exp.results is not None and exp.results.num_failed_responses == 0


def test_timeout_state(tmp_path):
    with LocalServer(
        db_path=tmp_path / "t.db", llm="echo", echo_latency=0.5, task_timeout=0.3
    ) as srv:
        with Client(base_url=srv.base_url, api_key=srv.api_key) as c:
            t = c.create_prompt_template(name="T", template="{{x}}")
            coll = c.create_collection(name="C", variables=[{"x": "1"}])
            events = [
                e
                for e in c.stream_experiment(
                    name="Slow",
                    prompt_template=t,
                    collection=coll,
                    criteria=["ok?"],
                    polling_interval=0.1,
                )
            ]
            assert events[-1].status == TaskStatus.TIMEOUT and events[-1].is_failure
            with pytest.raises(TaskFailedError, match="TIMEOUT"):
                c.run_experiment(
                    name="Slow 2", prompt_template=t, collection=coll, criteria=["ok?"]
                )


def test_revoked_and_rejected_states(tmp_path):
    with LocalServer(
        db_path=tmp_path / "t.db", llm="echo", echo_latency=0.3, max_queued_tasks=1
    ) as srv:
        with Client(base_url=srv.base_url, api_key=srv.api_key) as c:
            t = c.create_prompt_template(name="T", template="{{x}}")
            coll = c.create_collection(name="C", variables=[{"x": str(i)} for i in range(6)])
            events = []
            for event in c.stream_experiment(
                name="Long",
                prompt_template=t,
                collection=coll,
                criteria=["ok?"],
                polling_interval=0.1,
            ):
                events.append(event)
                if len(events) == 1:
                    with pytest.raises(TaskFailedError) as info:
                        c.run_experiment(
                            name="Second", prompt_template=t, collection=coll, criteria=["ok?"]
                        )
                    assert info.value.status == "REJECTED"
                    running = c.get_experiment(name="Long", fetch_responses=False)
                    c.cancel_experiment(running)
            assert events[-1].status == TaskStatus.REVOKED
            assert sum(e.is_complete for e in events) == 1


def test_exports_and_repr(client, template, collection, criterion_set, tmp_path, server):
    exp = client.run_experiment(
        name="Export", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    records = exp.to_records()
    assert len(records) == 2 * len(CRITERIA)
    assert {r["input.topic"] for r in records} == {"AI", "ML"}
    assert {r["rating"] for r in records} <= {"YES", "NO"}
    csv_text = exp.to_csv(tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_text() == csv_text
    assert csv_text.splitlines()[0].startswith("experiment,response_id,epoch,input.topic")
    jsonl = exp.to_jsonl(tmp_path / "e.jsonl")
    assert len(jsonl.splitlines()) == len(records)
    text = repr(exp)
    assert text.startswith("Experiment(") and server.api_key not in text
    assert "_client" not in text


def test_blocking_wait_honours_its_timeout(tmp_path):
    with LocalServer(db_path=tmp_path / "t.db", llm="echo", echo_latency=3.0) as srv:
        with Client(base_url=srv.base_url, api_key=srv.api_key) as c:
            t = c.create_prompt_template(name="T", template="{{x}}")
            coll = c.create_collection(name="C", variables=[{"x": "1"}])
            with pytest.raises(TaskTimeoutError):
                c.run_experiment(
                    name="Slow", prompt_template=t, collection=coll, criteria=["ok?"], timeout=0.5
                )
            running = c.get_experiment(name="Slow", fetch_responses=False)
            c.cancel_experiment(running)


def test_large_reads_share_equal_nested_objects(client, template, collection, criterion_set):
    exp = client.run_experiment(
        name="Shared", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    first, second = exp.rated_responses
    assert first.prompt.template_variables.collection is second.prompt.template_variables.collection
    assert first.prompt.prompt_template is second.prompt.prompt_template
    assert first.ratings[0].criterion is second.ratings[0].criterion
    assert first.ratings[0].criterion is not first.ratings[1].criterion
