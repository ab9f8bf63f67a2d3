"""Compare two surface dumps (see surface_dump.py): the official package's and ours.

Every difference is classified by tier:

- ``core``: CONTRACT.md section 12 Core; must be zero.
- ``advanced``: CONTRACT.md section 12 Advanced (listed by feature); must be zero too.
- ``internal``: helpers of the official package's own implementation that are public by name
  only; each is listed in ``INTERNAL`` with the reason it is not reproduced.

What ours has beyond the official package is an *extra*; the test lists every extra with its
reason (a regex on ``"<path>: <what>"``) and checks that every entry is used, so the list
cannot rot.

Rich models: the official package puts ``x()`` and its coroutine ``ax()`` on one class; here
the sync twin (``elluminate._sync.models.X``) has ``x`` and the async twin has ``ax``, both
subclasses of the wire struct ``elluminate.schemas.X``. A member of an official class is
therefore looked up on the twin it is meant for; methods without a pair on both twins.

Usage: python surface_compare.py OFFICIAL_PYTHON   (dumps both packages, prints the report)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---- classification --------------------------------------------------------------------------

ADVANCED: dict[str, str] = {
    "agent results and ATIF trajectories (CONTRACT.md 4.12, 7.17)": (
        r"ATIF|AgentResult|AgentTrial|CriterionRatingIn|agent_results|agent_evaluation"
        r"|for_evaluation\b|EVALUATION_POLLING_INTERVAL|schemas\.atif\b"
    ),
    "scenario sets (CONTRACT.md 4.11, 7.16)": r"[Ss]cenario",
    "conversation envelope (CONTRACT.md 7.18)": (
        r"UCE|schemas\.conversation\b|ResolvedPromptContext|schemas\.ResponseFormat\b"
    ),
    "response and comparison samples, stats, experiment map (CONTRACT.md 4.8, 4.9, 7.15)": (
        r"ResponsesSample|ResponsesStats|DailyUsageStats|ExperimentMap|PersonaMinimal"
        r"|experiment_map|comparison_samples"
    ),
}

INTERNAL: dict[str, str] = {
    r"^elluminate\.resources(\.|$)": (
        "the official per-resource classes, used through private client attributes "
        "(client._responses, ...); their public methods are on the clients and rich models "
        "here, and client.projects is compared as an instance attribute"
    ),
    r"^elluminate\.utils\.build_(a)?sync_retrying$": (
        "build tenacity Retrying objects around httpx2 exceptions; here RetryConfig (same "
        "knobs and defaults) drives the transport's own retry loop"
    ),
    r"^elluminate\.utils\.translate_transport_errors$": (
        "context manager turning httpx2 exceptions into TransportError; this transport "
        "raises TransportError itself"
    ),
    r"^elluminate\.utils\.deprecated$": "decorator for the official package's own deprecations",
    r"^elluminate\.async_client\.requires_initialization$": (
        "decorator of the official AsyncClient methods; every call initialises lazily here"
    ),
    r"^elluminate\.(Async)?Client\(\)\.(async|sync)_session$": (
        "the official package's httpx2 client object; the transport here is aiohttp/requests"
    ),
    r"^elluminate\.schemas\.response\.(fix_message_tool_calls|ensure_tool_calls_list)$": (
        "pydantic validator helpers of the official response models"
    ),
}

def tier(path: str) -> str:
    for pattern in INTERNAL:
        if re.search(pattern, path):
            return "internal"
    for pattern in ADVANCED.values():
        if re.search(pattern, path):
            return "advanced"
    return "core"


def feature(path: str) -> str:
    for name, pattern in ADVANCED.items():
        if re.search(pattern, path):
            return name
    return ""


# ---- results ---------------------------------------------------------------------------------


@dataclass
class Report:
    gaps: list[tuple[str, str, str]] = field(default_factory=list)  # (tier, path, problem)
    extras: list[tuple[str, str]] = field(default_factory=list)  # (path, what)
    totals: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tier, kind) -> n
    matched: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, kind: str, path: str, problem: str | None) -> None:
        t = tier(path)
        self.totals[t, kind] += 1
        if problem is None:
            self.matched[t, kind] += 1
        else:
            self.gaps.append((t, path, problem))

    def gaps_of(self, wanted: str) -> list[tuple[str, str]]:
        return sorted((path, problem) for t, path, problem in self.gaps if t == wanted)

    def figures(self) -> dict[str, str]:
        out = {}
        for t in ("core", "advanced", "internal"):
            for kind in ("modules", "names", "methods", "fields", "enum members", "bases"):
                total = self.totals[t, kind]
                if total:
                    out[f"{t} {kind}"] = f"{self.matched[t, kind]} of {total}"
        return out

    def unlisted_extras(self, listed: dict[str, str]) -> list[str]:
        """Extras (``"<path>: <what>"``) that match no pattern of ``listed``."""
        found = [f"{p}: {w}" for p, w in self.extras]
        return [e for e in found if not any(re.search(x, e) for x in listed)]

    def unused_extra_rules(self, listed: dict[str, str]) -> list[str]:
        found = [f"{p}: {w}" for p, w in self.extras]
        return [x for x in listed if not any(re.search(x, e) for e in found)]

    def advanced_features_open(self) -> dict[str, int]:
        """Advanced feature -> number of its differences (only features with some)."""
        out: Counter[str] = Counter()
        for t, path, _ in self.gaps:
            if t == "advanced":
                out[feature(path)] += 1
        return dict(out)

    def text(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.figures().items()]
        for t in ("core", "advanced", "internal"):
            found = self.gaps_of(t)
            lines.append(f"-- {t} differences: {len(found)}")
            lines.extend(f"   {p}: {w}" for p, w in found)
        lines.append(f"-- extras of ours: {len(self.extras)}")
        lines.extend(f"   {p}: {w}" for p, w in sorted(self.extras))
        return "\n".join(lines)


# ---- comparison ------------------------------------------------------------------------------


def compare_params(official: dict[str, Any], ours: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, extras) of our signature against the official one."""
    problems: list[str] = []
    extras: list[str] = []
    if official.get("params") is None or ours.get("params") is None:
        return problems, extras
    theirs = {p[0]: p for p in official["params"]}
    mine = {p[0]: p for p in ours["params"]}
    positional = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
    their_pos = [p[0] for p in official["params"] if p[1] in positional]
    my_pos = [p[0] for p in ours["params"] if p[1] in positional]
    my_kinds = {p[1] for p in ours["params"]}
    var_keyword = [p[0] for p in ours["params"] if p[1] == "VAR_KEYWORD"]
    for name, kind, default in official["params"]:
        if kind == "VAR_KEYWORD" and var_keyword:
            name = var_keyword[0]  # the name of **kwargs is not part of the interface
        if name not in mine:
            if "VAR_KEYWORD" in my_kinds and kind == "KEYWORD_ONLY":
                continue
            if "VAR_POSITIONAL" in my_kinds and kind in positional:
                continue  # e.g. __exit__(self, *exc_info)
            problems.append(f"parameter {name!r} missing")
            continue
        _, my_kind, my_default = mine[name]
        if my_kind != kind:
            problems.append(f"parameter {name!r} is {my_kind}, official {kind}")
        elif kind in positional and my_pos.index(name) != their_pos.index(name):
            problems.append(f"parameter {name!r} at position {my_pos.index(name)}")
        if not same_default(my_default, default):
            if default == "<required>":
                extras.append(f"parameter {name!r} optional here (default {my_default})")
            else:
                problems.append(f"parameter {name!r} defaults to {my_default}, official {default}")
    for name, kind, default in ours["params"]:
        if name in theirs or kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        if default == "<required>":
            problems.append(f"extra required parameter {name!r}")
        else:
            extras.append(f"extra parameter {name!r}")
    if official.get("returns") and not same_type(ours.get("returns", ""), official["returns"]):
        problems.append(f"returns {ours.get('returns')!r}, official {official['returns']!r}")
    return problems, extras


# Spellings that are the same thing at run time: openai's message TypedDicts are plain dicts;
# our progress events are generic in their result type (the official ones are not).
TYPE_EQUIVALENTS = [
    (r"\bChatCompletionMessageParam\b", "dict[str, Any]"),
    (r"\b(ExperimentStatusEvent)\[[^\[\]]*\]", r"\1"),
]


def same_type(mine: str, theirs: str) -> bool:
    for pattern, replacement in TYPE_EQUIVALENTS:
        mine, theirs = re.sub(pattern, replacement, mine), re.sub(pattern, replacement, theirs)
    return mine == theirs


def same_default(mine: str, theirs: str) -> bool:
    """Equal, or a str-valued enum member and the string it equals (``"STANDARD"``)."""
    if mine == theirs:
        return True
    values = []
    for spelled in (mine, theirs):
        match = re.fullmatch(r"\w+\.\w+=(.*)", spelled)
        values.append(match.group(1) if match else spelled)
    return values[0] == values[1]


KIND_OF_VALUE = {"module", "class", "constant", "type alias"}
CALLABLE = {"function", "coroutine", "asyncgen", "generator"}


def same_kind(theirs: str, mine: str) -> bool:
    if theirs == mine:
        return True
    # a plain function returning an (async) iterator is a generator here, and vice versa
    return {theirs, mine} <= {"function", "generator"} or {theirs, mine} <= {"function", "asyncgen"}


class Comparer:
    def __init__(self, official: dict[str, Any], ours: dict[str, Any]) -> None:
        self.off = official
        self.ours = ours
        self.report = Report()
        self.seen: dict[str, str] = {}  # official class ref -> our class ref compared for it

    # -- helpers

    def our_entry(self, module: str, name: str) -> dict[str, Any] | None:
        return self.ours["modules"].get(module, {}).get(name)

    def twins(self, ref: str) -> tuple[str | None, str | None]:
        """(async twin, sync twin) of one of our wire classes, if it has rich subclasses."""
        info = self.ours["classes"].get(ref, {})
        a = s = None
        for sub in info.get("subclasses", []):
            sub_info = self.ours["classes"].get(sub, {})
            if sub_info.get("name") != info.get("name"):
                continue
            if "._async." in sub:
                a = sub
            elif "._sync." in sub:
                s = sub
        return a, s

    # -- entry points

    def run(self) -> Report:
        for module in sorted(self.off["modules"]):
            mine = self.ours["modules"].get(module)
            self.report.count("modules", module, None if mine is not None else "missing")
            for name, entry in sorted(self.off["modules"][module].items()):
                if entry["kind"] == "module" and entry["module"] in self.off["modules"]:
                    continue  # a public submodule: counted as a module
                self.compare_name(module, name, entry)
        for module in sorted(set(self.ours["modules"]) - set(self.off["modules"])):
            self.report.extras.append((module, "module"))
        for module in sorted(set(self.ours["modules"]) & set(self.off["modules"])):
            mine, theirs = self.ours["modules"][module], self.off["modules"][module]
            for name in sorted(set(mine) - set(theirs)):
                self.report.extras.append((f"{module}.{name}", "name"))
        for client in ("Client", "AsyncClient"):
            self.compare_instance(client)
        return self.report

    def compare_name(self, module: str, name: str, entry: dict[str, Any]) -> None:
        path = f"{module}.{name}"
        mine = self.our_entry(module, name)
        if entry["kind"] == "missing":
            return
        if mine is None:
            self.report.count("names", path, "missing")
            return
        if not same_kind(entry["kind"], mine["kind"]):
            self.report.count("names", path, f"is a {mine['kind']}, official {entry['kind']}")
            return
        if entry["kind"] == "class":
            ref, my_ref = entry["ref"], mine["ref"]
            if ref in self.seen and self.seen[ref] != my_ref:
                self.report.count(
                    "names", path, f"not the same class as {self.seen[ref]} (official: same)"
                )
                return
            self.report.count("names", path, None)
            if ref not in self.seen:
                self.seen[ref] = my_ref
                self.compare_class(path, ref, my_ref)
            return
        self.report.count("names", path, None)
        if entry["kind"] in CALLABLE:
            problems, extras = compare_params(entry, mine)
            self.report.count("methods", path, "; ".join(problems) or None)
            self.report.extras.extend((path, e) for e in extras)

    def compare_instance(self, client: str) -> None:
        theirs = self.off["instances"].get(client, {})
        mine = self.ours["instances"].get(client, {})
        side = "async" if client.startswith("Async") else "sync"
        for attr, entry in sorted(theirs.items()):
            path = f"elluminate.{client}().{attr}"
            if attr not in mine:
                self.report.count("names", path, "instance attribute missing")
                continue
            self.report.count("names", path, None)
            if entry["kind"] == "instance" and mine[attr]["kind"] == "instance":
                off_cls = self.off["classes"][entry["ref"]]
                my_cls = self.ours["classes"][mine[attr]["ref"]]
                self.compare_members(path, off_cls, {side: my_cls})
        for attr in sorted(set(mine) - set(theirs)):
            self.report.extras.append((f"elluminate.{client}().{attr}", "instance attribute"))

    def compare_class(self, path: str, ref: str, my_ref: str) -> None:
        off_cls = self.off["classes"][ref]
        my_cls = self.ours["classes"][my_ref]
        # bases: the official MRO names must all be in ours (ours may add more)
        if off_cls["category"] == "exception":
            wanted = [b for b in off_cls["bases"] if b != "object"]
            missing = [b for b in wanted if b not in my_cls["bases"]]
            self.report.count("bases", path, f"lacks bases {missing}" if missing else None)
        if off_cls["category"] != my_cls["category"] and not (
            {off_cls["category"], my_cls["category"]} <= {"model", "class"}
        ):
            problem = f"is {my_cls['category']}, official {off_cls['category']}"
            self.report.count("names", path + " (category)", problem)
        if "enum" in off_cls:
            mine = my_cls.get("enum", {})
            for member, value in sorted(off_cls["enum"].items()):
                problem = None
                if member not in mine:
                    problem = "missing"
                elif mine[member] != value:
                    problem = f"value {mine[member]!r}, official {value!r}"
                self.report.count("enum members", f"{path}.{member}", problem)
            for member in sorted(set(mine) - set(off_cls["enum"])):
                self.report.extras.append((f"{path}.{member}", "enum member"))
        self.compare_fields(path, off_cls, my_cls)
        a_ref, s_ref = self.twins(my_ref)
        views = {"shared": my_cls}
        if a_ref and s_ref:
            views = {"async": self.ours["classes"][a_ref], "sync": self.ours["classes"][s_ref]}
        self.compare_members(path, off_cls, views)

    def compare_fields(self, path: str, off_cls: dict[str, Any], my_cls: dict[str, Any]) -> None:
        theirs = off_cls.get("fields")
        if theirs is None:
            return
        mine = my_cls.get("fields") or {}
        for name, info in sorted(theirs.items()):
            fpath = f"{path}.{name} (field)"
            problem = None
            if name not in mine:
                problem = "missing"
            elif mine[name]["required"] != info["required"]:
                if info["required"]:
                    self.report.extras.append((fpath, "optional here"))
                else:
                    problem = "required here, optional in the official package"
            elif not info["required"] and not same_default(mine[name]["default"], info["default"]):
                problem = f"defaults to {mine[name]['default']}, official {info['default']}"
            self.report.count("fields", fpath, problem)
        for name in sorted(set(mine) - set(theirs)):
            self.report.extras.append((f"{path}.{name} (field)", "field"))

    def compare_members(
        self, path: str, off_cls: dict[str, Any], views: dict[str, dict[str, Any]]
    ) -> None:
        """``views``: {"shared": cls} or {"async": twin, "sync": twin} or one side only."""
        members = off_cls["members"]
        coroutines = {n for n, m in members.items() if m["kind"] in ("coroutine",)}
        paired_sync = {n[1:] for n in coroutines if n.startswith("a") and n[1:] in members}
        for name, member in sorted(members.items()):
            mpath = f"{path}.{name}"
            if name in coroutines and name[1:] in paired_sync:
                sides = ["async"]
            elif name in paired_sync:
                sides = ["sync"]
            else:
                sides = ["async", "sync"]
            targets = [views[s] for s in sides if s in views] or (
                [views["shared"]] if "shared" in views else []
            )
            if not targets:
                continue  # a member for the other twin (e.g. ax() seen from Client().projects)
            problems: list[str] = []
            for target in targets:
                mine = target["members"].get(name)
                where = f" on the {target['name']} twin" if len(views) > 1 else ""
                if mine is None:
                    problems.append("missing" + where)
                    continue
                if not same_kind(member["kind"], mine["kind"]):
                    problems.append(f"is a {mine['kind']}, official {member['kind']}{where}")
                    continue
                if member["kind"] == "property":
                    if member.get("returns") and mine.get("returns") != member["returns"]:
                        problems.append(
                            f"property type {mine.get('returns')!r}, official {member['returns']!r}"
                        )
                    continue
                found, extras = compare_params(member, mine)
                problems.extend(p + where for p in found)
                self.report.extras.extend((mpath, e) for e in extras)
            kind = "names" if member["kind"] == "property" else "methods"
            self.report.count(kind, mpath, "; ".join(sorted(set(problems))) or None)
        known = set(members)
        for side, target in views.items():
            for name, mine in sorted(target["members"].items()):
                if name in known or name.startswith("__"):
                    continue
                twin = name[1:] if side == "async" and name.startswith("a") else name
                if twin in known and side == "async":
                    continue
                self.report.extras.append((f"{path}.{name}", f"{mine['kind']} ({side})"))


def compare(official: dict[str, Any], ours: dict[str, Any]) -> Report:
    report = Comparer(official, ours).run()
    report.extras = sorted(set(report.extras))
    return report


def dump_with(python: str, workdir: str) -> dict[str, Any]:
    """Run surface_dump.py under ``python`` in ``workdir`` and load its JSON."""
    out = Path(workdir) / f"surface-{abs(hash(python))}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELLUMINATE_", "PYTHON"))}
    proc = subprocess.run(
        [python, str(Path(__file__).with_name("surface_dump.py")), str(out)],
        cwd=workdir,  # never import a package from this repository's folder by accident
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"surface dump with {python} failed:\n{proc.stdout}{proc.stderr}")
    with open(out, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        official = dump_with(sys.argv[1], tmp)
        ours = dump_with(sys.executable, tmp)
    print(compare(official, ours).text())


if __name__ == "__main__":
    main()
