#!/usr/bin/env python
"""Generate the sync twin: ``elluminate/_async`` -> ``_sync``, ``tests/_async`` -> ``_sync``.

    python scripts/unasync.py           # (re)write the generated files
    python scripts/unasync.py --check   # fail if any generated file is stale, missing or extra

Rules: unasync's token rules (async/await dropped, ``__aenter__ -> __enter__``, ...), plus the
explicit table below, plus every method ``async def a<name>`` of a class in the rich-object
modules (``RICH_MODULES``: the rich models and ``client.projects``) renamed to ``<name>``. A
replacement that is never used is an error, so the table cannot rot.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import sys
import tempfile
from pathlib import Path

# This file is named like the library it drives: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import tokenize_rt  # noqa: E402
import unasync  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIRS = [
    ("elluminate/_async", "elluminate/_sync"),
    ("tests/_async", "tests/_sync"),
    ("tests/faults/_async", "tests/faults/_sync"),
]
RICH_MODULES = [ROOT / "elluminate/_async/models.py", ROOT / "elluminate/_async/projects.py"]
HEADER = "# DO NOT EDIT: generated from {src} by scripts/unasync.py; edit the _async original.\n"

REPLACEMENTS = {
    "AsyncClient": "Client",
    "AsyncTransport": "Transport",
    "AsyncHTTP": "HTTP",
    "aiohttp": "requests",
    "asleep": "sleep",
    "agather": "gather",
    "ALock": "Lock",
    "lazy_init": "eager_init",
    "_async": "_sync",
    "aevaluate": "evaluate",
    "alocal_client": "local_client",
    "aclosing": "closing",
}


def rich_method_renames() -> dict[str, str]:
    """``a<name> -> <name>`` for every ``async def a<name>`` in a class of RICH_MODULES."""
    renames: dict[str, str] = {}
    for module in RICH_MODULES:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if (
                    isinstance(fn, ast.AsyncFunctionDef)
                    and fn.name.startswith("a")
                    and len(fn.name) > 1
                ):
                    renames[fn.name] = fn.name[1:]
    return renames


class TrackingRule(unasync.Rule):  # type: ignore[misc]
    """unasync.Rule that remembers which explicit replacements were used."""

    def __init__(self, replacements: dict[str, str]) -> None:
        super().__init__("/_async/", "/_sync/", additional_replacements=replacements)
        self.explicit = set(replacements)
        self.used: set[str] = set()

    def _unasync_name(self, name: str) -> str:
        if name in self.explicit:
            self.used.add(name)
        return super()._unasync_name(name)  # type: ignore[no-any-return]

    def convert(self, source: str) -> str:
        tokens = tokenize_rt.src_to_tokens(source)
        return tokenize_rt.tokens_to_src(list(self._unasync_tokens(tokens)))


def generate(out_root: Path) -> tuple[dict[Path, str], set[str], set[str]]:
    """Render every generated file under ``out_root``; returns files, rules given, rules used."""
    renames = rich_method_renames()
    clash = set(renames) & set(REPLACEMENTS)
    if clash:
        raise SystemExit(f"rich-method renames clash with the explicit table: {sorted(clash)}")
    rule = TrackingRule({**REPLACEMENTS, **renames})
    files: dict[Path, str] = {}
    for src_dir, dst_dir in DIRS:
        for src in sorted((ROOT / src_dir).rglob("*.py")):
            rel = src.relative_to(ROOT / src_dir)
            text = src.read_text(encoding="utf-8")
            out = HEADER.format(src=f"{src_dir}/{rel.as_posix()}") + rule.convert(text)
            files[out_root / dst_dir / rel] = out
    return files, set(REPLACEMENTS), rule.used


def existing(root: Path) -> set[Path]:
    found: set[Path] = set()
    for _, dst_dir in DIRS:
        found.update(p for p in (root / dst_dir).rglob("*.py"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        files, given, used = generate(Path(tmp))
        unused = sorted(given - used)
        if unused:
            print(f"unused replacement rules in scripts/unasync.py: {unused}", file=sys.stderr)
            return 1
        wanted = {p.relative_to(tmp): text for p, text in files.items()}

    have = {p.relative_to(ROOT) for p in existing(ROOT)}
    problems: list[str] = []
    for rel in sorted(have - set(wanted)):
        problems.append(f"extra generated file (no _async original): {rel}")
        if not args.check:
            (ROOT / rel).unlink()
    for rel, text in sorted(wanted.items()):
        target = ROOT / rel
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if current is None:
            problems.append(f"missing generated file: {rel}")
        else:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(rel), "regenerated", lineterm="", n=1
            )
            problems.append(f"stale generated file: {rel}\n" + "\n".join(list(diff)[:20]))
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    if args.check:
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print("run: python scripts/unasync.py", file=sys.stderr)
            return 1
        print(f"unasync: {len(wanted)} generated files are current")
        return 0
    print(f"unasync: wrote {len(problems)} of {len(wanted)} generated files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
