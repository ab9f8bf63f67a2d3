"""Checks of a response's form: lists, JSON, tables, code, capitals, greetings, its length."""

from __future__ import annotations

import re
from collections.abc import Callable

from . import textfacts as tf
from .checks_common import NUMBER, CheckVerdict, Claim, parse_number, plural, verdict

__all__ = ["recognise_layout", "recognise_length"]


def _claim(check: str, what: str, test: Callable[[str], tuple[bool, str]], negated: bool) -> Claim:
    def decide(response: str) -> CheckVerdict:
        found, finding = test(response)
        return verdict(check, finding, what, found, negated)

    return Claim(check, decide)


def _lists(kind: str) -> Callable[[str], tuple[bool, str]]:
    def test(response: str) -> tuple[bool, str]:
        bullets, numbered = tf.bullet_lines(response), tf.numbered_lines(response)
        found = {
            "bulleted": bullets >= 2,
            "numbered": numbered >= 2,
            "any": bullets >= 2 or numbered >= 2,
        }[kind]
        return found, (
            f"the response has {plural(bullets, 'bulleted line')} and "
            f"{plural(numbered, 'numbered line')} (a list needs two)"
        )

    return test


def _json(object_only: bool) -> Callable[[str], tuple[bool, str]]:
    def test(response: str) -> tuple[bool, str]:
        found = tf.is_json(response, object_only=object_only)
        what = "a JSON object" if object_only else "JSON"
        return found, f"the response {'parses' if found else 'does not parse'} as {what}"

    return test


def _capitals(response: str) -> tuple[bool, str]:
    letters = [c for c in response if c.isalpha()]
    lower = sum(1 for c in letters if c.islower())
    found = bool(letters) and lower == 0
    return found, f"{plural(lower, 'lower-case letter')} among {len(letters)} letters"


def _only_yes_or_no(response: str) -> tuple[bool, str]:
    words = [w.lower() for w in tf.words(response)]
    found = words in (["yes"], ["no"])
    return found, f"the response is {' '.join(words[:6])!r}{'...' if len(words) > 6 else ''}"


def _greeting(response: str) -> tuple[bool, str]:
    greeting = tf.greeting_opening(response)
    return greeting is not None, (
        f"the response opens with {greeting!r}"
        if greeting
        else "the response opens with no greeting"
    )


def _hashtag(response: str) -> tuple[bool, str]:
    tags = re.findall(r"(?<!\w)#\w+", response)
    return bool(tags), f"hashtags found: {', '.join(tags[:3])}" if tags else "no hashtag found"


def _code(response: str) -> tuple[bool, str]:
    found = tf.code_block(response)
    return found, "the response has a fenced code block" if found else "no fenced code block"


def _table(response: str) -> tuple[bool, str]:
    found = tf.markdown_table(response)
    return found, "the response has a table with a header separator row" if found else (
        "the response has no table (rows with | and a |---| separator)"
    )


def recognise_layout(core: str, negated: bool) -> Claim | None:
    """Lists, JSON, tables, code blocks, capitals, opening greetings, hashtags, yes/no only."""
    text = core.lower()
    if re.search(r"\blist of\b", text):
        return None  # "a list of fruits": the content is asked too
    if re.search(r"\bbullet(?:ed|s)?\b|\bbullet[- ]points?\b", text):
        return _claim("format", "for a bulleted list", _lists("bulleted"), negated)
    if re.search(r"\b(?:numbered|enumerated|ordered)\s+(?:list|steps|items|points)\b", text):
        return _claim("format", "for a numbered list", _lists("numbered"), negated)
    if re.search(
        r"\b(?:a|as a|in a|into a|any|in list|of list)\s+(?:list|lists)\b|\blist formatting\b", text
    ):
        return _claim("format", "for a list", _lists("any"), negated)
    if re.search(r"\bjson\b", text):
        object_only = re.search(r"\bjson object\b|\bobject\b", text) is not None
        what = "for a JSON object" if object_only else "for valid JSON"
        return _claim("format", what, _json(object_only), negated)
    if re.search(r"\b(?:markdown\s+)?tables?\b", text) and not re.search(
        r"\btimetable|table of contents\b", text
    ):
        return _claim("format", "for a table", _table, negated)
    if re.search(r"\bcode (?:block|snippet|fence)s?\b|\bfenced code\b", text):
        return _claim("format", "for a code block", _code, negated)
    if re.search(
        r"\b(?:capital letters|capitals|all caps|upper[- ]?case|block letters)\b", text
    ) and re.search(r"\b(?:entirely|all|completely|only|fully|wholly|in)\b", text):
        return _claim("format", "that every letter be a capital", _capitals, negated)
    if re.search(
        r"\b(?:start|begin|open)s?\s+with\s+(?:a\s+)?(?:greeting|salutation|hello)\b", text
    ):
        return _claim("format", "for an opening greeting", _greeting, negated)
    if re.search(r"\bhashtags?\b", text):
        return _claim("format", "for a hashtag", _hashtag, negated)
    if re.search(
        r"\b(?:only|just|solely|simply)\s+(?:with\s+)?(?:a\s+)?(?:yes or no|yes/no)\b", text
    ):
        return _claim("format", "for only yes or no", _only_yes_or_no, negated)
    return None


# --------------------------------------------------------------------------- length

_UNITS = {
    "word": ("word", tf.word_count),
    "sentence": ("sentence", tf.sentence_count),
    "character": ("character", tf.character_count),
    "char": ("character", tf.character_count),
    "letter": ("character", tf.character_count),
    "line": ("line", tf.line_count),
    "paragraph": ("paragraph", lambda t: len([p for p in re.split(r"\n\s*\n", t) if p.strip()])),
}
_UNIT = r"(words?|sentences?|characters?|chars|letters?|lines?|paragraphs?)"
_BOUNDS: list[tuple[str, str]] = [
    (r"under|fewer than|less than|shorter than|below|within", "<"),
    (r"at most|no more than|not more than|no longer than|up to|a maximum of|maximum of|max", "<="),
    (r"over|more than|longer than|above|exceed(?:s|ing)?|in excess of", ">"),
    (r"at least|a minimum of|minimum of|no fewer than|no less than", ">="),
    (r"exactly|precisely|just|only", "=="),
]
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
}
_SAYS = {"<": "fewer than", "<=": "at most", ">": "more than", ">=": "at least", "==": "exactly"}


def recognise_length(core: str, negated: bool) -> Claim | None:
    """Bounds on words, sentences, characters, lines or paragraphs ("under 50 words",
    "no more than two sentences", "exactly one word", "a single sentence long")."""
    text = core.lower()
    for words, op in _BOUNDS:
        match = re.search(rf"\b(?:{words})\s+{NUMBER}\s+{_UNIT}\b", text)
        if match:
            return _length_claim(op, parse_number(match.group(1)), match.group(2), negated)
    match = re.search(
        rf"^(?:is|was|are)\b.*?\b(?:a\s+)?{NUMBER}[- ]{_UNIT}(?:\s+long)?\s*[?.]*$", text
    ) or re.search(rf"\b(?:have|has|of|in|with)\s+{NUMBER}\s+{_UNIT}\s*[?.]*$", text)
    if match and not re.search(r"\b(?:list|name|give|mention|contain|include)s?\b", text):
        return _length_claim("==", parse_number(match.group(1)), match.group(2), negated)
    return None


def _length_claim(op: str, bound: int, unit_word: str, negated: bool) -> Claim | None:
    key = unit_word.rstrip("s") if unit_word != "chars" else "char"
    if key not in _UNITS:
        return None
    unit, count = _UNITS[key]
    asks = f"for {_SAYS[op]} {plural(bound, unit)}"

    def decide(response: str) -> CheckVerdict:
        n = count(response)
        return verdict(
            "length", f"the response has {plural(n, unit)}", asks, _COMPARE[op](n, bound), negated
        )

    return Claim("length", decide)
