# DO NOT EDIT: generated from elluminate/_async/evaluate.py by scripts/unasync.py; edit the _async original.
"""``evaluate()``: run one experiment from names or objects in a single call."""

from __future__ import annotations

import time

from .. import schemas
from ..schemas import RatingMode
from .client import Client
from .models import Experiment

_default_client: Client | None = None


def reset_default_client() -> None:
    """Forget the client that ``evaluate`` created from the environment."""
    global _default_client
    _default_client = None


def evaluate(
    prompt_template: schemas.PromptTemplate | str,
    collection: schemas.TemplateVariablesCollection | str,
    criterion_set: schemas.CriterionSet | str | None = None,
    llm_config: schemas.LLMConfig | str | None = None,
    *,
    name: str | None = None,
    rating_mode: RatingMode = RatingMode.DETAILED,
    rating_version: str | None = None,
    client: Client | None = None,
) -> Experiment:
    """Run an experiment and return it finished; strings are looked up by name.

    Without ``criterion_set`` the template's linked set is used (ValueError if it has none,
    before anything is created). Without ``client`` one is made from the environment.
    """
    global _default_client
    if client is None:
        if _default_client is None:
            _default_client = Client()
        client = _default_client
    if isinstance(prompt_template, str):
        prompt_template = client.get_prompt_template(name=prompt_template)
    if isinstance(collection, str):
        collection = client.get_collection(name=collection)
    if isinstance(criterion_set, str):
        criterion_set = client.get_criterion_set(name=criterion_set)
    if isinstance(llm_config, str):
        llm_config = client.get_llm_config(name=llm_config)
    if criterion_set is None:
        if prompt_template.criterion_set_id is None:
            raise ValueError(
                f"prompt template {prompt_template.name!r} has no criterion set: "
                "pass criterion_set= or link one to the template"
            )
        criterion_set = client.get_criterion_set(id=prompt_template.criterion_set_id)
    return client.run_experiment(
        name=name or f"evaluate-{int(time.time())}",
        prompt_template=prompt_template,
        collection=collection,
        llm_config=llm_config,
        criterion_set=criterion_set,
        rating_mode=rating_mode,
        rating_version=rating_version,
    )
