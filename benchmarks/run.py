"""Side-by-side benchmarks: this SDK vs the official ``elluminate`` package vs the raw HTTP floor.

    python benchmarks/run.py                        # every section, 5 repetitions (~4 min)
    python benchmarks/run.py --quick                # small sizes, well under a minute
    python benchmarks/run.py --sections large small --repeat 7
    python benchmarks/run.py --no-official          # leave out the official package's sides

One server process (``python -m elluminate.server --llm echo``) serves every section (a second
one with a fixed echo latency serves the concurrency headline); the data is created once.
Every measured side runs in its own fresh interpreter (``benchmarks/side.py``), so import time
and peak RSS are the side's own; repetitions are interleaved (A, B, C, A, B, C, ...) and the
tables show medians and ratios measured in this one run. The official package runs in its own
virtualenv: ``ELLUMINATE_OFFICIAL_PYTHON`` (or ``--official-python``) names its interpreter,
otherwise one is created under the run's temporary directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _harness import (
    BENCH_DIR,
    OFFICIAL_VERSION,
    Results,
    ServerProcess,
    Side,
    Target,
    fmt_ratio,
    fmt_seconds,
    log,
    machine,
    measure,
    official_python,
    ratio,
    table,
)

SECTIONS = ("import", "large", "small", "gather", "upload", "concurrency", "server", "decode")
CRITERIA = ["Is it relevant?", "Is it clear?", "Is it short?"]


@dataclass(frozen=True)
class Sizes:
    large_rows: int = 5000
    small_calls: int = 2000
    gather_calls: int = 2000
    gather_concurrency: int = 50
    upload_rows: int = 10_000
    concurrency_n: tuple[int, ...] = (3, 10, 30)
    latency: float = 0.2
    throughput_experiments: int = 50
    throughput_rows: int = 10
    rating_rows: int = 2000
    list_experiments: int = 20
    list_requests: int = 3000
    list_clients: int = 50


QUICK = Sizes(
    large_rows=300,
    small_calls=200,
    gather_calls=200,
    upload_rows=1000,
    concurrency_n=(3,),
    latency=0.05,
    throughput_experiments=10,
    rating_rows=200,
    list_experiments=5,
    list_requests=300,
)


@dataclass
class Data:
    """Ids of the data created once for the whole run."""

    tid: int
    criterion_set_id: int
    experiment_id: int
    response_bytes: int
    pages: int
    page_size: int
    small_collection_id: int
    list_collection_id: int
    response_ids: list[int]
    pages_file: str
    page_sizes: list[int]


def prepare(server: ServerProcess, sizes: Sizes, workdir: Path) -> Data:
    """Create the benchmark data through this SDK (echo provider at zero latency)."""
    from elluminate import Client

    start = time.perf_counter()
    with Client(base_url=server.base_url, api_key=server.api_key) as client:
        template = client.create_prompt_template(
            name="bench", template="Explain {{topic}} in a few words."
        )
        criterion_set = client.create_criterion_set(name="bench criteria", criteria=CRITERIA)

        def collection(name: str, rows: int) -> Any:
            variables = [{"topic": f"topic number {i}"} for i in range(rows)]
            return client.create_collection(name=name, variables=variables)

        def run(name: str, coll: Any) -> Any:
            return client.run_experiment(
                name=name,
                prompt_template=template,
                collection=coll,
                criterion_set=criterion_set,
                show_progress=False,
            )

        big = run("bench read", collection("bench big", sizes.large_rows))
        rated = run("bench ratings", collection("bench ratings", sizes.rating_rows))
        small = collection("bench small", sizes.throughput_rows)
        listed = collection("bench list", sizes.throughput_rows)
        for i in range(sizes.list_experiments):
            run(f"bench list {i}", listed)
        response_ids = [r.id for r in rated.rated_responses]
    # the experiment's response pages, as bytes, for the decode-only section
    pages_file = workdir / "pages.bin"
    page_sizes: list[int] = []
    with open(pages_file, "wb") as out:
        page, seen, count, page_size = 1, 0, None, 0
        while count is None or seen < count:
            url = (
                f"{server.base_url}/api/v0/projects/{server.project_id}/responses"
                f"?experiment_id={big.id}&page={page}"
            )
            req = urllib.request.Request(url, headers={"X-API-Key": server.api_key})
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = resp.read()
            decoded = json.loads(body)
            count, page_size = decoded["count"], page_size or len(decoded["items"])
            seen += len(decoded["items"])
            out.write(body)
            page_sizes.append(len(body))
            page += 1
    log(f"data ready in {time.perf_counter() - start:.1f} s")
    return Data(
        tid=template.id,
        criterion_set_id=criterion_set.id,
        experiment_id=big.id,
        response_bytes=sum(page_sizes),
        pages=len(page_sizes),
        page_size=page_size,
        small_collection_id=small.id,
        list_collection_id=listed.id,
        response_ids=response_ids,
        pages_file=str(pages_file),
        page_sizes=page_sizes,
    )


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.sizes = QUICK if args.quick else Sizes()
        self.repeat = args.repeat or (1 if args.quick else 5)
        self.workdir = workdir
        self.ours = sys.executable
        self.official: str | None = None
        self.targets: list[Target] = []
        self.report: list[str] = []
        self.raw: dict[str, Any] = {}
        self.failed: list[str] = []

    # -- helpers ---------------------------------------------------------------------------

    def side(self, name: str) -> Side:
        if name.startswith("official"):
            return Side(name, self.official, official=True)
        return Side(name, self.ours)

    def spec(self, server: ServerProcess, section: str, **extra: Any) -> dict[str, Any]:
        return {
            "section": section,
            "base_url": server.base_url,
            "api_key": server.api_key,
            "project_id": server.project_id,
            **extra,
        }

    def run(
        self,
        key: str,
        sides: list[str],
        spec: dict[str, Any],
        per_side: dict[str, dict[str, Any]] | None = None,
    ) -> Results:
        results = measure(
            [self.side(s) for s in sides], spec, self.workdir, self.repeat, per_side=per_side
        )
        self.raw[key] = {"runs": results.runs, "errors": results.errors}
        for name, error in results.errors.items():
            if not name.startswith("official") and not error.startswith("skipped"):
                self.failed.append(f"{key} / {name}: {error}")
        return results

    def section(self, title: str, headers: list[str], rows: list[list[str]]) -> None:
        text = f"### {title}\n\n{table(headers, rows)}\n"
        self.report.append(text)
        print(text, flush=True)

    def target(
        self, name: str, value: float | None, limit: float, op: str, unit: str = "x"
    ) -> None:
        self.targets.append(Target(name, value, limit, op, unit))

    # -- sections --------------------------------------------------------------------------

    def s_import(self, server: ServerProcess, data: Data) -> None:
        modules = {
            "ours": ["elluminate"],
            "official": ["elluminate"],
            "floor (aiohttp+msgspec+requests)": ["aiohttp", "msgspec", "requests"],
        }
        res = self.run(
            "import",
            list(modules),
            self.spec(server, "import"),
            {name: {"modules": mods} for name, mods in modules.items()},
        )
        rows = [
            [
                f"`import {' + '.join(mods)}`" if name != "official" else
                f"`import elluminate` (official {OFFICIAL_VERSION})",
                fmt_seconds(res.median(name)),
                f"{res.median(name, 'peak_rss_mib') or 0:.0f} MiB",
            ]
            for name, mods in modules.items()
            if name in res.runs
        ]  # fmt: skip
        self.section("Import", ["what", "median time", "peak RSS"], rows)
        self.target("`import elluminate`", res.median("ours"), 0.35, "<=", " s")

    def s_large(self, server: ServerProcess, data: Data) -> None:
        sides = ["ours-sync", "ours-async", "official-sync", "official-async",
                 "raw-requests", "raw-json"]  # fmt: skip
        spec = self.spec(
            server,
            "large",
            experiment_id=data.experiment_id,
            tid=data.tid,
            page_size=data.page_size,
        )
        res = self.run("large", sides, spec)
        labels = {
            "ours-sync": "this SDK, `Client`",
            "ours-async": "this SDK, `AsyncClient`",
            "official-sync": f"official {OFFICIAL_VERSION}, `Client`",
            "official-async": f"official {OFFICIAL_VERSION}, `AsyncClient`",
            "raw-requests": "floor: requests, no decoding",
            "raw-json": "floor: requests + json.loads",
        }
        rows = []
        for name in sides:
            if name not in res.runs:
                continue
            ref = "official-async" if "async" in name else "official-sync"
            speed = ratio(res.median(ref), res.median(name)) if name.startswith("ours") else None
            mem = (
                ratio(res.median(name, "peak_rss_mib"), res.median(ref, "peak_rss_mib"))
                if name.startswith("ours")
                else None
            )
            lo, hi = res.spread(name) or (0.0, 0.0)
            rows.append(
                [
                    labels[name],
                    fmt_seconds(res.median(name)),
                    f"{lo:.3f}-{hi:.3f}",
                    f"{res.median(name, 'peak_rss_mib'):.0f} MiB",
                    "" if speed is None else f"{speed:.2f}x faster",
                    "" if mem is None else f"{mem:.2f}",
                ]
            )
        mb = data.response_bytes / 1e6
        self.section(
            f"1. Large read: `get_experiment(id=...)` + iterate, {self.sizes.large_rows:,} "
            f"responses x {len(CRITERIA)} ratings ({mb:.1f} MB, {data.pages} pages)",
            ["side", "median", "min-max", "peak RSS", "vs official", "RSS / official"],
            rows,
        )
        for twin, ref in (("sync", "official-sync"), ("async", "official-async")):
            ours = f"ours-{twin}"
            self.target(
                f"large read, {twin}: speed-up vs official",
                ratio(res.median(ref), res.median(ours)),
                5,
                ">=",
            )
            self.target(
                f"large read, {twin}: peak RSS / official",
                ratio(res.median(ours, "peak_rss_mib"), res.median(ref, "peak_rss_mib")),
                1 / 3,
                "<=",
            )

    def s_small(self, server: ServerProcess, data: Data) -> None:
        n = self.sizes.small_calls
        sides = ["ours-sync", "official-sync", "raw-requests",
                 "ours-async", "official-async", "raw-aiohttp"]  # fmt: skip
        res = self.run("small", sides, self.spec(server, "small", n=n, tid=data.tid))
        per_call = {s: (res.median(s) or 0) / n if s in res.runs else None for s in sides}
        labels = {
            "ours-sync": ("sync", "this SDK, `Client`"),
            "official-sync": ("sync", f"official {OFFICIAL_VERSION}, `Client`"),
            "raw-requests": ("sync", "floor: requests Session (trust_env off), no decoding"),
            "ours-async": ("async", "this SDK, `AsyncClient`"),
            "official-async": ("async", f"official {OFFICIAL_VERSION}, `AsyncClient`"),
            "raw-aiohttp": ("async", "floor: bare aiohttp, no decoding"),
        }
        rows = []
        for name in sides:
            if per_call[name] is None:
                continue
            floor = "raw-requests" if labels[name][0] == "sync" else "raw-aiohttp"
            ours = "ours-sync" if labels[name][0] == "sync" else "ours-async"
            rows.append(
                [
                    labels[name][0],
                    labels[name][1],
                    fmt_seconds(per_call[name], "us"),
                    fmt_ratio(ratio(per_call[name], per_call[floor])),
                    fmt_ratio(ratio(per_call[name], per_call[ours])),
                ]
            )
        self.section(
            f"2. Small calls: {n:,} sequential `get_prompt_template(id=...)`",
            ["", "side", "per call", "vs floor", "vs this SDK"],
            rows,
        )
        self.target(
            "small sync: SDK / requests floor",
            ratio(per_call["ours-sync"], per_call["raw-requests"]),
            1.15,
            "<=",
        )
        self.target(
            "small async sequential: SDK / aiohttp floor",
            ratio(per_call["ours-async"], per_call["raw-aiohttp"]),
            1.3,
            "<=",
        )

    def s_gather(self, server: ServerProcess, data: Data) -> None:
        n, conc = self.sizes.gather_calls, self.sizes.gather_concurrency
        sides = ["ours-async", "official-async", "raw-aiohttp"]
        res = self.run(
            "gather",
            sides,
            self.spec(server, "gather", n=n, tid=data.tid, concurrency=conc),
        )
        per_call = {s: (res.median(s) or 0) / n if s in res.runs else None for s in sides}
        labels = {
            "ours-async": "this SDK, `AsyncClient`",
            "official-async": f"official {OFFICIAL_VERSION}, `AsyncClient`",
            "raw-aiohttp": "floor: bare aiohttp, no decoding",
        }
        rows = [
            [
                labels[s],
                fmt_seconds(per_call[s], "us"),
                fmt_ratio(ratio(per_call[s], per_call["raw-aiohttp"])),
                fmt_ratio(ratio(per_call[s], per_call["ours-async"])),
            ]
            for s in sides
            if per_call[s] is not None
        ]
        self.section(
            f"3. Concurrent small calls: {n:,} `get_prompt_template` under "
            f"`asyncio.gather` + `Semaphore({conc})`",
            ["side", "wall time per call", "vs floor", "vs this SDK"],
            rows,
        )
        self.target(
            "small async gathered: SDK / aiohttp floor",
            ratio(per_call["ours-async"], per_call["raw-aiohttp"]),
            1.5,
            "<=",
        )

    def s_upload(self, server: ServerProcess, data: Data) -> None:
        n = self.sizes.upload_rows
        sides = ["ours-sync", "ours-async", "official-sync"]
        res = self.run("upload", sides, self.spec(server, "upload", n=n))
        labels = {
            "ours-sync": "this SDK, `Client`",
            "ours-async": "this SDK, `AsyncClient`",
            "official-sync": f"official {OFFICIAL_VERSION}, `Client`",
        }
        rows = [
            [
                labels[s],
                fmt_seconds(res.median(s)),
                f"{res.median(s, 'peak_rss_mib'):.0f} MiB",
                str(res.first(s, "requests")),
                fmt_ratio(ratio(res.median(s), res.median("ours-sync"))),
            ]
            for s in sides
            if s in res.runs
        ]
        self.section(
            f"4. Bulk upload: `add_many` of {n:,} entries",
            ["side", "median", "peak RSS", "HTTP requests", "time vs this SDK (sync)"],
            rows,
        )

    def s_concurrency(self, server: ServerProcess, data: Data) -> None:
        sizes = self.sizes
        rows = []
        with ServerProcess(self.workdir, echo_latency=sizes.latency, name="latency") as slow:
            for n in sizes.concurrency_n:
                res = self.run(
                    f"concurrency-{n}",
                    ["sequential-sync", "gathered-async"],
                    self.spec(slow, "concurrency", n=n, bench_dir=str(BENCH_DIR)),
                )
                speedup = ratio(res.median("sequential-sync"), res.median("gathered-async"))
                rows.append(
                    [
                        str(n),
                        fmt_seconds(res.median("sequential-sync")),
                        fmt_seconds(res.median("gathered-async")),
                        fmt_ratio(speedup),
                        f"{n}x",
                    ]
                )
                if n in (3, 10):
                    self.target(f"concurrency N={n}: speed-up / N", ratio(speedup, n), 0.9, ">=")
        self.section(
            f"5. Concurrency headline: N experiments x 5 cases x 2 criteria at "
            f"{sizes.latency:g} s echo latency (`benchmarks/concurrency.py`)",
            ["N", "sequential `Client`", "gathered `AsyncClient`", "speed-up", "ideal"],
            rows,
        )

    def s_server(self, server: ServerProcess, data: Data) -> None:
        sizes = self.sizes
        lists = {
            "list experiments": f"experiments?collection_id={data.list_collection_id}",
            "list prompt templates": "prompt_templates",
        }
        res_list = self.run(
            "server-list",
            list(lists),
            self.spec(server, "server-list", n=sizes.list_requests, clients=sizes.list_clients),
            {name: {"endpoint": endpoint} for name, endpoint in lists.items()},
        )
        res = self.run(
            "server-throughput",
            ["experiments", "ratings"],
            self.spec(
                server,
                "server",
                tid=data.tid,
                criterion_set_id=data.criterion_set_id,
                small_collection_id=data.small_collection_id,
                small_rows=sizes.throughput_rows,
                criteria=len(CRITERIA),
                response_ids=data.response_ids,
                n=sizes.throughput_experiments,
            ),
            {
                "experiments": {"section": "server-experiments"},
                "ratings": {"section": "server-ratings"},
            },
        )
        rows = []
        if "experiments" in res.runs:
            rows.append(
                [
                    f"experiments/s ({sizes.throughput_experiments} at once, "
                    f"{sizes.throughput_rows} rows x {len(CRITERIA)} criteria each)",
                    f"{res.median('experiments', 'per_second'):,.1f}",
                    f"{res.median('experiments', 'ratings') / res.median('experiments'):,.0f}"
                    " ratings/s",
                ]
            )
        if "ratings" in res.runs:
            rows.append(
                [
                    f"ratings/s (one batch: {len(data.response_ids):,} responses x "
                    f"{len(CRITERIA)} criteria)",
                    f"{res.median('ratings', 'per_second'):,.0f}",
                    fmt_seconds(res.median("ratings")),
                ]
            )
        for name, endpoint in lists.items():
            if name in res_list.runs:
                rows.append(
                    [
                        f"{name} req/s, {sizes.list_clients} concurrent clients "
                        f"(`GET .../{endpoint.split('?')[0]}`)",
                        f"{res_list.median(name, 'per_second'):,.0f}",
                        f"{sizes.list_requests:,} requests",
                    ]
                )
        self.section(
            "6. Server throughput (echo at zero latency, bare aiohttp load)",
            ["figure", "median", "detail"],
            rows,
        )

    def s_decode(self, server: ServerProcess, data: Data) -> None:
        sides = ["msgspec-structs", "json.loads", "pydantic-mirror", "official-pydantic"]
        spec = self.spec(server, "decode", pages_file=data.pages_file, page_sizes=data.page_sizes)
        res = self.run("decode", sides, spec)
        labels = {
            "msgspec-structs": "this SDK's msgspec structs (`Page[PromptResponse]`)",
            "json.loads": "json.loads only (dicts)",
            "pydantic-mirror": "pydantic v2 models of the same shape (json.loads + model_validate)",
            "official-pydantic": f"official {OFFICIAL_VERSION} pydantic `PromptResponse`",
        }
        mb = data.response_bytes / 1e6
        rows = [
            [
                labels[s],
                fmt_seconds(res.median(s), "ms"),
                f"{mb / (res.median(s) or 1):,.0f} MB/s",
                f"{res.median(s, 'peak_rss_mib'):.0f} MiB",
                fmt_ratio(ratio(res.median(s), res.median("msgspec-structs"))),
            ]
            for s in sides
            if s in res.runs
        ]
        self.section(
            f"7. Decode only: {mb:.1f} MB of response pages ({data.pages} pages) already in memory",
            ["decoder", "median", "throughput", "peak RSS", "time vs msgspec"],
            rows,
        )

    # -- driver ----------------------------------------------------------------------------

    def main(self) -> int:
        wanted = self.args.sections or list(SECTIONS)
        needs_official = {"import", "large", "small", "gather", "upload", "decode"}
        if not self.args.no_official and needs_official & set(wanted):
            self.official = official_python(self.workdir, self.args.official_python)
        header = (
            f"elluminate benchmarks ({'quick' if self.args.quick else 'full'} sizes, median of "
            f"{self.repeat}, sides interleaved, each in a fresh interpreter)\n"
            f"machine: {machine()}\n"
            f"official package: "
            f"{'elluminate ' + OFFICIAL_VERSION if self.official else 'not measured'}\n"
        )
        print(header, flush=True)
        started = time.perf_counter()
        with ServerProcess(self.workdir) as server:
            data = prepare(server, self.sizes, self.workdir)
            for name in SECTIONS:
                if name in wanted:
                    log(f"== {name}")
                    getattr(self, "s_" + name)(server, data)
        rows = [t.row() for t in self.targets]
        if rows:
            note = " (quick sizes: indicative only)" if self.args.quick else ""
            text = f"### Targets{note}\n\n" + table(["target", "measured", "goal", "status"], rows)
            self.report.append(text)
            print(text + "\n")
        print(f"total {time.perf_counter() - started:.0f} s")
        if self.args.json:
            Path(self.args.json).write_text(
                json.dumps(
                    {
                        "header": header,
                        "sizes": asdict(self.sizes),
                        "results": self.raw,
                        "targets": [asdict(t) | {"status": t.status} for t in self.targets],
                    },
                    indent=1,
                )
            )
        if self.failed:
            print("FAILED sides:\n  " + "\n  ".join(self.failed), file=sys.stderr)
            return 1
        return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, help="default: all")
    parser.add_argument("--repeat", type=int, help="repetitions per side (default 5; quick 1)")
    parser.add_argument("--quick", action="store_true", help="small sizes (< 60 s)")
    parser.add_argument("--no-official", action="store_true", help="skip the official package")
    parser.add_argument("--official-python", help="interpreter of a venv with the official package")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="elluminate-bench-") as tmp:
        return Bench(args, Path(tmp)).main()


if __name__ == "__main__":
    sys.exit(main())
