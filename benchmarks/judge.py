"""How often the judge agrees with a labelled answer, through the server's real judge path.

    python benchmarks/judge.py                        # local (alone, then with the server's
                                                      # deterministic checks) and echo, all splits
    python benchmarks/judge.py --llm local --judge-checks on   # only the server's default judge
    python benchmarks/judge.py --llm local --split heldout
    python benchmarks/judge.py --llm openai --llm-base-url http://127.0.0.1:11434/v1 \\
        --llm-model qwen2.5:7b-instruct               # any OpenAI-compatible endpoint
    python benchmarks/judge.py --llm local --llm-model path/to/other-model.gguf
    python benchmarks/judge.py --quick                # 2 items per kind and split, echo only
    python benchmarks/judge.py --calibrate            # fit the local P(yes) threshold on dev

The labelled set is ``benchmarks/judge/items.jsonl`` (see ``benchmarks/judge/README.md``):
(prompt, response, criterion, gold yes/no) items of several kinds, each in the ``dev`` or the
``heldout`` split, plus ``benchmarks/judge/unseen.jsonl`` (split ``unseen``): items whose
criteria, phrasings, response languages and kinds the first set does not use, an
out-of-sample test of anything tuned on ``dev``. For every provider the script starts an
embedded server with that provider as its judge, uploads the items as one collection
(columns ``prompt``, ``criterion``, ``response``), and runs one experiment whose responses are
the stored ``response`` column (``response_column_id``) and whose one criterion is
``{{criterion}}``: the server renders it
per row and rates every response exactly as in production.

With ``--judge-checks`` (default ``both``) the local provider is measured twice: the model
alone (``off``) and with the server's deterministic checks first (``on``, the server's
default; see ``elluminate/server/evaluation/checks.py``). For the latter each split also shows
the fraction of items a check decided ("checked") and the balanced accuracy on those items and
on the ones passed to the model.

Printed per provider and split: balanced accuracy (the mean of the recall on yes-items and the
recall on no-items, so a constant answer scores 50 %), raw agreement, the yes-rate, failed
ratings (counted as wrong), seconds per rating (wall time of the run over its ratings, after a
warm-up run that loads the model), and a confusion table per kind of criterion.

``--calibrate`` scores the dev split in-process with the same function the server's judge calls
(:func:`elluminate.server.evaluation.llm_judge.judge_score`) and prints the P(yes) threshold that
maximises balanced accuracy on dev, with the accuracy it gives on dev and on held-out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from elluminate import AsyncClient
from elluminate._templates import render_str
from elluminate.schemas import RatingMode
from elluminate.server import LocalServer

ITEMS = Path(__file__).resolve().parent / "judge" / "items.jsonl"
#: The out-of-sample set (split ``unseen``): criteria, phrasings, languages and kinds that
#: ``items.jsonl`` does not use, written before any deterministic check existed.
UNSEEN = Path(__file__).resolve().parent / "judge" / "unseen.jsonl"
#: Held-out figures per judge model, written by ``--save``, read by ``examples/ab_test.py``.
RESULTS = Path(__file__).resolve().parent / "judge" / "results.json"
SPLITS = ("dev", "heldout", "unseen")


@dataclass(frozen=True)
class Item:
    """One labelled judge decision."""

    id: str
    kind: str
    split: str
    prompt: str
    response: str
    criterion: str
    gold: str  # "yes" | "no"


def load_items(path: Path = ITEMS) -> list[Item]:
    """The labelled items, with ``{{variables}}`` of prompt and criterion filled in."""
    items: list[Item] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        variables = raw.get("variables") or {}
        gold = raw["gold"]
        if gold not in ("yes", "no") or raw["split"] not in SPLITS:
            raise ValueError(f"{path.name} line {number}: bad gold or split: {line[:80]}")
        items.append(
            Item(
                id=raw["id"],
                kind=raw["kind"],
                split=raw["split"],
                prompt=render_str(raw["prompt"], variables) if variables else raw["prompt"],
                response=raw["response"],
                criterion=render_str(raw["criterion"], variables)
                if variables
                else raw["criterion"],
                gold=gold,
            )
        )
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path.name}: duplicate item ids")
    return items


def quick_subset(items: Sequence[Item], per_kind: int = 2) -> list[Item]:
    """The first ``per_kind`` items of every kind in every split."""
    taken: dict[tuple[str, str], int] = defaultdict(int)
    out = []
    for item in items:
        key = (item.kind, item.split)
        if taken[key] < per_kind:
            taken[key] += 1
            out.append(item)
    return out


# --------------------------------------------------------------------------- metrics


@dataclass
class Confusion:
    """Counts of (gold, verdict); a failed rating counts against the gold answer."""

    yes_yes: int = 0  # gold yes, judged yes
    yes_no: int = 0  # gold yes, judged no (or failed)
    no_yes: int = 0  # gold no, judged yes (or failed)
    no_no: int = 0  # gold no, judged no
    failed: int = 0

    def add(self, gold: str, verdict: str | None) -> None:
        if verdict is None:
            self.failed += 1
        if gold == "yes":
            if verdict == "yes":
                self.yes_yes += 1
            else:
                self.yes_no += 1
        elif verdict == "no":
            self.no_no += 1
        else:
            self.no_yes += 1

    @property
    def n(self) -> int:
        return self.yes_yes + self.yes_no + self.no_yes + self.no_no

    @property
    def yes_recall(self) -> float:
        gold_yes = self.yes_yes + self.yes_no
        return self.yes_yes / gold_yes if gold_yes else float("nan")

    @property
    def no_recall(self) -> float:
        gold_no = self.no_yes + self.no_no
        return self.no_no / gold_no if gold_no else float("nan")

    @property
    def balanced_accuracy(self) -> float:
        return (self.yes_recall + self.no_recall) / 2

    @property
    def agreement(self) -> float:
        return (self.yes_yes + self.no_no) / self.n if self.n else float("nan")

    @property
    def yes_rate(self) -> float:
        return (self.yes_yes + self.no_yes) / self.n if self.n else float("nan")


def confusion(items: Iterable[Item], verdicts: dict[str, str | None]) -> Confusion:
    table = Confusion()
    for item in items:
        table.add(item.gold, verdicts.get(item.id))
    return table


def balanced_accuracy(golds: Sequence[str], verdicts: Sequence[str | None]) -> float:
    """Mean of the yes-recall and the no-recall (a constant answer scores 0.5)."""
    table = Confusion()
    for gold, verdict in zip(golds, verdicts, strict=True):
        table.add(gold, verdict)
    return table.balanced_accuracy


# --------------------------------------------------------------------------- rating via the server


@dataclass
class Run:
    """One provider's verdicts on the items, from one experiment."""

    provider: str
    judge_model: str
    verdicts: dict[str, str | None]
    reasonings: dict[str, str | None]
    ratings: int
    seconds: float
    load_seconds: float
    per_split: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: whether the server's deterministic checks rated what they claim (``--judge-checks``)
    checks: bool = False

    @property
    def seconds_per_rating(self) -> float:
        return self.seconds / self.ratings if self.ratings else float("nan")


async def _rate(client: AsyncClient, items: Sequence[Item], tag: str) -> tuple[dict, dict, int]:
    rows = [
        {"item_id": it.id, "prompt": it.prompt, "criterion": it.criterion, "response": it.response}
        for it in items
    ]
    collection = await client.create_collection(name=f"judge set {tag}", variables=rows)
    response_column = next(c for c in collection.columns or [] if c.name == "response")
    template = await client.create_prompt_template(
        name=f"judge prompt {tag}", template="{{prompt}}"
    )
    criterion_set = await client.create_criterion_set(
        name=f"judge criterion {tag}", criteria=["{{criterion}}"]
    )
    experiment = await client.run_experiment(
        name=f"judge benchmark {tag}",
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
        rating_mode=RatingMode.DETAILED,
        response_column_id=response_column.id,
        show_progress=False,
    )
    await experiment.afetch_responses()
    verdicts: dict[str, str | None] = {it.id: None for it in items}
    reasonings: dict[str, str | None] = {it.id: None for it in items}
    ratings = 0
    for response in experiment.rated_responses:
        item_id = response.prompt.template_variables.input_values["item_id"]
        for rating in response.ratings:
            verdicts[item_id] = str(
                rating.rating.value if hasattr(rating.rating, "value") else rating.rating
            ).lower()
            reasonings[item_id] = rating.reasoning
            ratings += 1
    return verdicts, reasonings, max(ratings, len(items))


async def run_provider(
    kind: str, items: Sequence[Item], args: argparse.Namespace, checks: bool = False
) -> Run:
    """Rate ``items`` with an embedded server whose judge is the ``kind`` provider (with the
    deterministic checks first when ``checks``; the server applies them to ``local`` only)."""
    options: dict[str, Any] = {"judge_checks": checks}
    if kind in ("local", "openai") and args.llm_model:
        options["llm_model"] = args.llm_model
    if kind == "openai":
        options["llm_base_url"] = args.llm_base_url
        options["llm_api_key"] = args.llm_api_key
    async with LocalServer(llm=kind, **options) as server:  # type: ignore[arg-type]
        async with AsyncClient(base_url=server.base_url, api_key=server.api_key) as client:
            start = time.perf_counter()
            await _rate(client, items[:1], f"{kind} warm-up")  # loads a local model
            load_seconds = time.perf_counter() - start
            start = time.perf_counter()
            verdicts, reasonings, ratings = await _rate(client, items, kind)
            seconds = time.perf_counter() - start
    model = judge_model_name(kind, args.llm_model)
    if checks and kind == "local":
        model = f"deterministic checks, then {model}"
    return Run(
        kind, model, verdicts, reasonings, ratings, seconds, load_seconds, checks=checks
    )


def results_key(kind: str, llm_model: str | None, checks: bool = True) -> str:
    """The judge model's key in ``results.json`` (what ``examples/ab_test.py`` looks up): the
    server's default judge (checks on for ``local``) under the model's name, the local model
    without the checks under ``NAME (model alone)``."""
    if kind == "echo":
        return "echo"
    if kind == "local":
        name = Path(llm_model).stem if llm_model else "SmolLM2-135M-Instruct"
        return name if checks else f"{name} (model alone)"
    return llm_model or "?"


CHECKED_PREFIX = "Checked: "


def claimed_by_checks(run: Run, item: Item) -> bool:
    """Whether a deterministic check (not the model) rated ``item`` in ``run``."""
    return (run.reasonings.get(item.id) or "").startswith(CHECKED_PREFIX)


def save_results(runs: Sequence[Run], items: Sequence[Item], args: argparse.Namespace) -> None:
    """Store each run's held-out figures in ``results.json`` (other models' entries stay)."""
    try:
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = {}
    for run in runs:
        held = run.per_split.get("heldout")
        if held is None:
            continue
        entry: dict[str, Any] = {
            "judge": run.judge_model,
            "balanced_accuracy": round(held["balanced_accuracy"], 4),
            "agreement": round(held["agreement"], 4),
            "items": held["n"],
            "split": "heldout",
            "seconds_per_rating": round(run.seconds_per_rating, 3),
            "measured": time.strftime("%Y-%m-%d"),
        }
        unseen = run.per_split.get("unseen")
        if unseen is not None:
            entry["unseen_balanced_accuracy"] = round(unseen["balanced_accuracy"], 4)
            entry["unseen_items"] = unseen["n"]
        results[results_key(run.provider, args.llm_model, run.checks)] = entry
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nsaved held-out figures to {RESULTS}")


def judge_model_name(kind: str, llm_model: str | None) -> str:
    if kind == "echo":
        return "echo (always yes unless the response is empty)"
    if kind == "local":
        if llm_model:
            return Path(llm_model).name
        return "SmolLM2-135M-Instruct (bundled)"
    return llm_model or "?"


# --------------------------------------------------------------------------- calibration


def best_threshold(scores: dict[str, float], subset: Sequence[Item]) -> float:
    """The P(yes) threshold with the best balanced accuracy on ``subset`` (ties: nearest 0.5).

    Candidates are 0.5 and the midpoints between neighbouring scores.
    """
    values = sorted({scores[it.id] for it in subset})
    candidates = [0.5] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    golds = [it.gold for it in subset]

    def accuracy(threshold: float) -> float:
        return balanced_accuracy(
            golds, ["yes" if scores[it.id] >= threshold else "no" for it in subset]
        )

    return max(candidates, key=lambda t: (accuracy(t), -abs(t - 0.5)))


def cross_validated(scores: dict[str, float], dev: Sequence[Item], folds: int = 5) -> float:
    """Balanced accuracy on dev of thresholds fitted on the other folds (folds by group, so the
    items that share a prompt stay together): what calibration is worth on unseen items."""
    groups = sorted({it.id[:-1] for it in dev})
    fold_of = {group: i % folds for i, group in enumerate(groups)}
    golds, verdicts = [], []
    for fold in range(folds):
        test = [it for it in dev if fold_of[it.id[:-1]] == fold]
        train = [it for it in dev if fold_of[it.id[:-1]] != fold]
        if not test or not train:
            continue
        threshold = best_threshold(scores, train)
        golds += [it.gold for it in test]
        verdicts += ["yes" if scores[it.id] >= threshold else "no" for it in test]
    return balanced_accuracy(golds, verdicts)


async def calibrate(items: Sequence[Item], llm_model: str | None) -> dict[str, Any]:
    """Fit the local judge's P(yes) threshold on the dev split (in-process, same scoring
    function as the server's judge) and say whether it is worth using.

    The threshold is recommended only if a 5-fold cross-validation within dev shows that a
    fitted threshold beats 0.5 on items it was not fitted on; held-out items are scored only
    to report what the choice gives there.
    """
    from elluminate.server.evaluation.llm_judge import judge_score
    from elluminate.server.evaluation.providers import ProviderConfig, make_provider

    provider = make_provider(ProviderConfig(kind="local", model=llm_model))
    scores: dict[str, float] = {}
    start = time.perf_counter()
    for item in items:
        prompt = [{"role": "user", "content": item.prompt}]
        score = await judge_score(provider, item.criterion, prompt, item.response)  # type: ignore[arg-type]
        scores[item.id] = score.p_yes
    seconds = (time.perf_counter() - start) / max(1, len(items))
    dev = [it for it in items if it.split == "dev"]
    held = [it for it in items if it.split == "heldout"]

    def accuracy(subset: Sequence[Item], threshold: float) -> float:
        verdicts = ["yes" if scores[it.id] >= threshold else "no" for it in subset]
        return balanced_accuracy([it.gold for it in subset], verdicts)

    fitted = best_threshold(scores, dev)
    dev_cv = cross_validated(scores, dev)
    recommended = fitted if dev_cv > accuracy(dev, 0.5) else 0.5
    return {
        "model": provider.model,
        "fitted_threshold": round(fitted, 4),
        "dev_at_0.5": accuracy(dev, 0.5),
        "dev_at_fitted": accuracy(dev, fitted),
        "dev_cross_validated": dev_cv,
        "recommended_threshold": round(recommended, 4),
        "heldout_at_0.5": accuracy(held, 0.5) if held else float("nan"),
        "heldout_at_fitted": accuracy(held, fitted) if held else float("nan"),
        "heldout_at_recommended": accuracy(held, recommended) if held else float("nan"),
        "seconds_per_rating": seconds,
        "p_yes": {it.id: round(scores[it.id], 4) for it in items},
    }


# --------------------------------------------------------------------------- output


def pct(x: float) -> str:
    return "   -  " if x != x else f"{x:6.1%}"


def report(run: Run, items: Sequence[Item], splits: Sequence[str]) -> None:
    print(f"\n== {run.provider}: judge model {run.judge_model}")
    print(
        f"   {run.ratings} ratings in {run.seconds:.1f} s = {run.seconds_per_rating:.3f} s per "
        f"rating (warm-up incl. model load {run.load_seconds:.1f} s)"
    )
    header = (
        f"   {'split':8s} {'n':>4s} {'bal.acc':>7s} {'agree':>7s} {'yes-rec':>7s} "
        f"{'no-rec':>7s} {'yes-rate':>8s} {'failed':>6s}"
        + (f" {'checked':>8s} {'on chk':>7s} {'on model':>8s}" if run.checks else "")
    )
    print(header)
    for split in splits:
        subset = [it for it in items if it.split == split] if split != "all" else list(items)
        if not subset:
            continue
        table = confusion(subset, run.verdicts)
        run.per_split[split] = {
            "n": table.n,
            "balanced_accuracy": table.balanced_accuracy,
            "agreement": table.agreement,
            "yes_recall": table.yes_recall,
            "no_recall": table.no_recall,
            "yes_rate": table.yes_rate,
            "failed": table.failed,
        }
        extra = ""
        if run.checks:
            checked = [it for it in subset if claimed_by_checks(run, it)]
            passed = [it for it in subset if not claimed_by_checks(run, it)]
            on_checks = confusion(checked, run.verdicts)
            on_model = confusion(passed, run.verdicts)
            run.per_split[split] |= {
                "claimed_by_checks": len(checked),
                "balanced_accuracy_checked": on_checks.balanced_accuracy,
                "agreement_checked": on_checks.agreement,
                "balanced_accuracy_model": on_model.balanced_accuracy,
            }
            extra = (
                f" {len(checked) / len(subset):8.1%} {pct(on_checks.balanced_accuracy)} "
                f"  {pct(on_model.balanced_accuracy)}"
            )
        print(
            f"   {split:8s} {table.n:4d} {pct(table.balanced_accuracy)} {pct(table.agreement)} "
            f"{pct(table.yes_recall)} {pct(table.no_recall)}  {pct(table.yes_rate)} "
            f"{table.failed:6d}{extra}"
        )
    print("   per kind (all splits given): gold yes -> judged yes/no, gold no -> judged yes/no")
    cols = ("y->y", "y->n", "n->y", "n->n")
    print(
        f"   {'kind':10s} {'n':>4s} "
        + " ".join(f"{c:>5s}" for c in cols)
        + f" {'bal.acc':>7s}"
        + (f" {'checked':>7s}" if run.checks else "")
    )
    chosen = [it for it in items if split_matches(it, splits)]
    for kind in sorted({it.kind for it in chosen}):
        of_kind = [it for it in chosen if it.kind == kind]
        table = confusion(of_kind, run.verdicts)
        checked = sum(claimed_by_checks(run, it) for it in of_kind)
        print(
            f"   {kind:10s} {table.n:4d} {table.yes_yes:5d} {table.yes_no:5d} {table.no_yes:5d} "
            f"{table.no_no:5d} {pct(table.balanced_accuracy)}"
            + (f" {checked:3d}/{len(of_kind):<3d}" if run.checks else "")
        )


def split_matches(item: Item, splits: Sequence[str]) -> bool:
    return "all" in splits or item.split in splits


def default_providers(args: argparse.Namespace) -> list[str]:
    import importlib.util

    kinds = []
    if not args.quick and importlib.util.find_spec("llama_cpp") is not None:
        kinds.append("local")
    kinds.append("echo")
    if args.llm_base_url:
        kinds.append("openai")
    return kinds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--llm",
        nargs="+",
        choices=["local", "echo", "openai"],
        default=None,
        help="providers to measure (default: local if installed, echo, and openai "
        "when --llm-base-url is given)",
    )
    parser.add_argument(
        "--llm-model", default=None, help="model name (openai) or .gguf path (local)"
    )
    parser.add_argument("--llm-base-url", default=None, help="OpenAI-compatible endpoint (.../v1)")
    parser.add_argument("--llm-api-key", default=None)
    parser.add_argument(
        "--split",
        choices=[*SPLITS, "all"],
        default=None,
        help="which split to rate (default: both, reported separately)",
    )
    parser.add_argument(
        "--items",
        type=Path,
        nargs="+",
        default=[ITEMS, UNSEEN],
        help="JSON Lines sets of the same form (default: items.jsonl and unseen.jsonl)",
    )
    parser.add_argument("--quick", action="store_true", help="2 items per kind and split")
    parser.add_argument(
        "--judge-checks",
        choices=["on", "off", "both"],
        default="both",
        help="the local judge with the server's deterministic checks first (on, the server's "
        "default), the model alone (off), or both, one after the other (default: both)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="fit the local judge's P(yes) threshold on dev (in-process)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the figures, with every item's verdict and reasoning, here",
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="store the held-out figures in benchmarks/judge/results.json (shown by ab_test.py)",
    )
    args = parser.parse_args(argv)

    items = [item for path in args.items for item in load_items(path)]
    if len({item.id for item in items}) != len(items):
        parser.error("the item sets given share item ids")
    if args.quick:
        items = quick_subset(items)
    if args.split in SPLITS:
        items = [it for it in items if it.split == args.split]
    splits = [args.split] if args.split else [*SPLITS, "all"]
    print(
        f"{len(items)} labelled items from {', '.join(p.name for p in args.items)}: "
        + ", ".join(f"{s} {sum(it.split == s for it in items)}" for s in SPLITS)
    )

    if args.calibrate:
        result = asyncio.run(calibrate(items, args.llm_model))
        print(json.dumps({k: v for k, v in result.items() if k != "p_yes"}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0

    kinds = args.llm or default_providers(args)
    if "openai" in kinds and not (args.llm_base_url and args.llm_model):
        parser.error("--llm openai needs --llm-base-url and --llm-model")
    runs = []
    for kind in kinds:
        modes = {"on": [True], "off": [False], "both": [False, True]}[args.judge_checks]
        for checks in modes if kind == "local" else [False]:
            run = asyncio.run(run_provider(kind, items, args, checks))
            report(run, items, splits)
            runs.append(run)
    if args.save:
        if args.quick or args.items != [ITEMS, UNSEEN]:
            parser.error("--save stores figures of the full labelled set only (no --quick/--items)")
        save_results(runs, items, args)
    if args.json:
        out = [asdict(run) | {"seconds_per_rating": run.seconds_per_rating} for run in runs]
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
