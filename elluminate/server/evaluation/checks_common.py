"""What the deterministic checks share: their results, verdicts with reasoning, numbers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckVerdict:
    """A check's decision: ``YES``/``NO`` and the sentence that says how it was reached."""

    rating: str
    reasoning: str
    check: str


@dataclass(frozen=True)
class Claim:
    """A check that recognised a criterion; ``decide`` rates a response (``None``: undecided)."""

    check: str
    decide: Callable[[str], CheckVerdict | None]


Recogniser = Callable[[str, bool], "Claim | None"]
"""Looks at a criterion (negation removed, and whether there was one) and claims it or not."""


NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "hundred": 100,
    "a hundred": 100,
    "single": 1,
    "a single": 1,
}
NUMBER = r"(\d+|" + "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True)) + ")"


def parse_number(text: str) -> int:
    return int(text) if text.isdigit() else NUMBER_WORDS[text.lower()]


def verdict(check: str, finding: str, asks: str, found: bool, negated: bool) -> CheckVerdict:
    """The verdict ``found`` (inverted when the criterion is negated) with its reasoning."""
    yes = found != negated
    wanted = f"that it is not so ({asks})" if negated else asks
    return CheckVerdict(
        "YES" if yes else "NO",
        f"Checked: {finding}; the criterion asks {wanted}: {'yes' if yes else 'no'}.",
        check,
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
