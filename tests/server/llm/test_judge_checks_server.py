"""The judge's deterministic checks through the server: claimed criteria are rated by the
check, the others by the (here: fake) local model; ``--judge-checks off`` rates all by the
model; other providers never use the checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from elluminate import AsyncClient
from elluminate.schemas import RatingMode
from elluminate.server import LocalServer
from elluminate.server.cli import config_from_args
from elluminate.server.config import ServerConfig
from elluminate.server.evaluation import judging, registry
from elluminate.server.evaluation.providers import ChatParams, Completion, ProviderConfig
from elluminate.server.evaluation.providers.base import YesNoScore

pytest.importorskip("lingua")


class FakeLocalModel:
    """Stands in for the local provider: always P(yes) = 0.9, counts what it was asked."""

    name = "local"
    model = "fake-local"

    def __init__(self) -> None:
        self.scored: list[str] = []

    async def chat(self, *args: Any, **kwargs: Any) -> Completion:
        raise AssertionError("the probability judge does not generate")

    async def yes_no_score(
        self, messages: list[dict[str, Any]], *, params: ChatParams | None = None
    ) -> YesNoScore:
        self.scored.append(messages[-1]["content"])
        return YesNoScore(
            p_yes=0.9, mass=0.8, input_tokens=50, duration_seconds=0.01, model=self.model
        )

    async def aclose(self) -> None:
        return None


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> FakeLocalModel:
    fake = FakeLocalModel()
    real = registry.make_provider

    def make(config: ProviderConfig) -> Any:
        return fake if config.kind == "local" else real(config)

    monkeypatch.setattr(registry, "make_provider", make)
    return fake


ROWS = [
    # claimed: the language check says no (the fake model would say yes)
    {"criterion": "Is the response written in French?", "response": "The weather is lovely today."},
    # claimed: the digits check says yes
    {"criterion": "Does the reply contain any digits?", "response": "We open at 9 tomorrow."},
    # no check claims it: the model rates it
    {"criterion": "Is it persuasive?", "response": "Buy now and save the planet."},
]


async def _rate(base_url: str, api_key: str) -> dict[str, tuple[str, str | None]]:
    async with AsyncClient(base_url=base_url, api_key=api_key) as client:
        collection = await client.create_collection(name="checks", variables=ROWS)
        column = next(c for c in collection.columns or [] if c.name == "response")
        template = await client.create_prompt_template(name="checks", template="Say something.")
        criteria = await client.create_criterion_set(name="checks", criteria=["{{criterion}}"])
        experiment = await client.run_experiment(
            name="checks",
            prompt_template=template,
            collection=collection,
            criterion_set=criteria,
            rating_mode=RatingMode.DETAILED,
            response_column_id=column.id,
            show_progress=False,
        )
        await experiment.afetch_responses()
        out = {}
        for response in experiment.rated_responses:
            criterion = response.prompt.template_variables.input_values["criterion"]
            (rating,) = response.ratings
            value = rating.rating.value if hasattr(rating.rating, "value") else rating.rating
            out[criterion] = (str(value).upper(), rating.reasoning)
        return out


async def test_checks_rate_what_they_claim_and_the_model_the_rest(
    fake_model: FakeLocalModel,
) -> None:
    async with LocalServer(llm="local") as server:
        rated = await _rate(server.base_url, server.api_key)
    french = rated["Is the response written in French?"]
    assert french[0] == "NO"
    assert french[1] is not None and french[1].startswith(
        "Checked: the response is detected as English"
    )
    assert french[1].endswith(": no.")
    digits = rated["Does the reply contain any digits?"]
    assert digits[0] == "YES" and digits[1] is not None and digits[1].endswith(": yes.")
    persuasive = rated["Is it persuasive?"]
    assert persuasive[0] == "YES" and "token probabilities" in (persuasive[1] or "")
    # the model was asked about the one criterion no check claimed, and only about it
    assert len(fake_model.scored) == 1 and "Is it persuasive?" in fake_model.scored[0]


async def test_judge_checks_off_leaves_every_criterion_to_the_model(
    fake_model: FakeLocalModel,
) -> None:
    async with LocalServer(llm="local", judge_checks=False) as server:
        rated = await _rate(server.base_url, server.api_key)
    assert {rating for rating, _ in rated.values()} == {"YES"}  # the fake model's answer
    assert not any((reasoning or "").startswith("Checked:") for _, reasoning in rated.values())
    assert len(fake_model.scored) == len(ROWS)


def test_the_switch_applies_to_the_local_provider_only(tmp_path: Any) -> None:
    db = tmp_path / "x.db"
    assert registry.Providers(ServerConfig(db_path=db, llm="local")).judge_checks
    assert not registry.Providers(
        ServerConfig(db_path=db, llm="local", judge_checks=False)
    ).judge_checks
    assert not registry.Providers(ServerConfig(db_path=db, llm="echo")).judge_checks
    assert not registry.Providers(
        ServerConfig(db_path=db, llm="openai", llm_base_url="http://x/v1", llm_model="m")
    ).judge_checks


def test_the_cli_flag_and_its_environment_variable() -> None:
    assert config_from_args([], {}).judge_checks is True
    assert config_from_args(["--judge-checks", "off"], {}).judge_checks is False
    assert config_from_args([], {"ELLUMINATE_SERVER_JUDGE_CHECKS": "off"}).judge_checks is False
    assert config_from_args(
        ["--judge-checks", "on"], {"ELLUMINATE_SERVER_JUDGE_CHECKS": "off"}
    ).judge_checks
    with pytest.raises(SystemExit):
        config_from_args(["--judge-checks", "maybe"], {})
    with pytest.raises(SystemExit):
        config_from_args([], {"ELLUMINATE_SERVER_JUDGE_CHECKS": "maybe"})


async def test_a_failing_check_falls_back_to_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(criterion: str, response: str) -> None:
        raise RuntimeError("bug in a check")

    monkeypatch.setattr(judging, "check_criterion", broken)
    assert await judging._checked("Is it in German?", "Hallo Welt, wie geht es?") is None


class Direct:
    """A limiter that just runs the call."""

    async def llm(self, call: Any) -> Any:
        return await call()


@pytest.mark.parametrize("detailed", [True, False])
async def test_judge_one_stores_the_check_and_no_tokens(detailed: bool) -> None:
    fake = FakeLocalModel()
    judge = judging.Judge(provider=fake, detailed=detailed, checks=True)  # type: ignore[arg-type]
    criterion = judging.Criterion(id=7, text="Does the reply contain any {{what}}?", row_id=None)
    outcome = await judging.judge_one(
        Direct(), judge, criterion, {"what": "digits"}, [{"role": "user", "content": "Hi"}], "112"
    )
    assert (outcome.criterion_id, outcome.rating, outcome.error) == (7, "YES", None)
    assert json.loads(outcome.raw_text or "") == {"rating": "yes", "check": "numbers"}
    assert outcome.metadata is not None and outcome.metadata.output_tokens == 0
    if detailed:
        assert outcome.reasoning == (
            "Checked: the response contains digits ('112'); the criterion asks for digits: yes."
        )
    else:
        assert outcome.reasoning is None
    assert fake.scored == []
