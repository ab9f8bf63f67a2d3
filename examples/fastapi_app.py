"""A FastAPI app with one AsyncClient for the whole app (lifespan handler).

ELLUMINATE_BASE_URL=... ELLUMINATE_API_KEY=... uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI, Request
from pydantic import BaseModel

from elluminate import AsyncClient


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with AsyncClient() as client:  # one client per app, closed on shutdown
        app.state.elluminate = client
        yield


app = FastAPI(lifespan=lifespan)


class EvaluateRequest(BaseModel):
    prompt: str
    test_case: dict[str, str]


@app.post("/evaluate")
async def evaluate_prompt(body: EvaluateRequest, request: Request) -> dict[str, float | int]:
    client: AsyncClient = request.app.state.elluminate
    timestamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    template, _ = await client.get_or_create_prompt_template(
        name="API Template", template=body.prompt
    )
    await template.aget_or_generate_criteria()
    criterion_set = await client.get_criterion_set(name=template.name)
    collection = await client.create_collection(name=f"Test {timestamp}")
    await collection.aadd_many(variables=[body.test_case])
    experiment = await client.run_experiment(
        name=f"Eval {timestamp}",
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
    )
    return {
        "experiment_id": experiment.id,
        "pass_rate": experiment.results.mean_all_ratings.yes if experiment.results else 0,
    }
