"""Deterministic checks for criteria that can be checked by reading the response's text.

A small local judge model cannot tell whether a response is in Swedish or contains a digit
(it judges at chance, see ``BENCHMARKS.md``), but a few lines of code can. Each check has a
*recogniser*, regular expressions over the criterion's text that either claim the criterion
("Is the answer written in Spanish?", "Does the reply contain any digits?", "Is the response
under 50 words?") or leave it alone, and a *decision* over the response's text. Criteria that
no check claims, that two checks claim at once, or whose decision is undecided (a text too
short to tell its language) go to the model unchanged.

Recognisers are deliberately narrow: a criterion with a negation they do not understand,
or one that asks about correctness, truth or a statement ("Does it say that..."), is not
claimed. The reasoning of a check says what was measured and ends in the verdict, so it can
never contradict it: ``"Checked: the response is detected as German (confidence 0.99); the
criterion asks for German: yes."``
"""

from __future__ import annotations

import re
from typing import Any

from . import textfacts as tf
from .checks_common import CheckVerdict, Claim, Recogniser, plural, verdict

__all__ = ["Claim", "CheckVerdict", "check_criterion", "claim", "claims"]


# --------------------------------------------------------------------------- helpers

#: Criteria about correctness or about what a response states are never claimed: checking
#: them needs knowledge, not reading.
_UNCLAIMABLE = re.compile(
    r"\b(correct\w*|accura\w*|true|false|factual\w*|right|wrong|mistakes?|errors?|"
    r"say(?:s|ing)? that|states? that|claims? that|implies|suggests?|persuasive|"
    r"appropriate|relevant|helpful|good|better|best)\b",
    re.IGNORECASE,
)

_NEGATIONS = [
    re.compile(r"\bavoid(?:s|ing)?\s+(?:using\s+|any\s+|the use of\s+)*", re.IGNORECASE),
    re.compile(r"\bfree (?:of|from)\s+(?:any\s+)?", re.IGNORECASE),
    re.compile(r"\bwithout\s+(?:any\s+)?", re.IGNORECASE),
    re.compile(r"\b(?:does|do|did|is|are|was|has|have)\s*n[o']?t\b", re.IGNORECASE),
    re.compile(r"\b(?:contain|include|use|have|has|uses|contains|includes)\s+no\b", re.IGNORECASE),
    re.compile(r"\b(?:refrain|abstain)s?\s+from\s+", re.IGNORECASE),
    re.compile(r"\black(?:s|ing)?\s+(?:any\s+)?", re.IGNORECASE),
    re.compile(r"\bnot\s+", re.IGNORECASE),  # "Is the answer not in English?"
]
#: A negation left over after the known forms were removed: the criterion is not claimed.
_OTHER_NEGATION = re.compile(r"\b(not|never|no|none|neither|nor|except|unless)\b", re.IGNORECASE)


def _split_negation(criterion: str) -> tuple[bool, str] | None:
    """``(negated, criterion without the negation)``, or ``None`` for negations not understood
    (two of them, or a bare ``not`` in an unexpected place)."""
    negated = False
    core = criterion
    for pattern in _NEGATIONS:
        core, count = pattern.subn(" ", core)
        if count:
            if negated or count > 1:
                return None
            negated = True
    # "yes or no" and "no more than" are not negations
    leftover = re.sub(
        r"\byes or no\b|\bno (?:more|longer|fewer|less) than\b", " ", core, flags=re.I
    )
    if _OTHER_NEGATION.search(leftover):
        return None
    return negated, core


# --------------------------------------------------------------------------- language

_LANGUAGE_CUE = r"(?:in|into|use[sd]?|using|uses)"
_language_pattern_cache: dict[str, Any] = {}


def _language_pattern() -> tuple[re.Pattern[str], dict[str, tuple[str, ...]]]:
    if "pattern" not in _language_pattern_cache:
        names = tf.language_names()
        alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
        _language_pattern_cache["pattern"] = re.compile(rf"\b({alternatives})\b", re.IGNORECASE)
        _language_pattern_cache["names"] = names
    return _language_pattern_cache["pattern"], _language_pattern_cache["names"]


def _recognise_language(core: str, negated: bool) -> Claim | None:
    try:
        pattern, names = _language_pattern()
    except tf.LanguageUnavailable:
        return None
    found = list(pattern.finditer(core))
    if not found or re.search(r"\b(about|mention\w*|from|translat\w+ (?:of|from))\b", core, re.I):
        return None
    lowered = core.lower()
    cued = any(
        re.search(rf"\b{_LANGUAGE_CUE}\s+(?:the\s+)?(?:{m.group(1).lower()})\b", lowered)
        or re.search(rf"\b{m.group(1).lower()}(?:\s+language)?\s*[?.!]*\s*$", lowered)
        or "language" in lowered
        for m in found
    )
    if not cued:
        return None
    before = lowered[: found[0].start()]
    other_than = (
        re.search(r"\b(?:other than|anything but|non-?)\s*(?:the\s+)?$", before) is not None
    )
    targets: list[str] = []
    for m in found:
        targets += names[m.group(1).lower()]
    asked = " or ".join(dict.fromkeys(tf.pretty_language(t) for t in targets))
    asks = f"for a language other than {asked}" if other_than else f"for {asked}"

    def decide(response: str) -> CheckVerdict | None:
        detected = tf.detect_language(response)
        if detected is None:
            return None
        finding = (
            f"the response is detected as {tf.pretty_language(detected.language)} "
            f"(confidence {detected.confidence:.2f})"
        )
        found = (detected.language in targets) != other_than
        return verdict("language", finding, asks, found, negated)

    return Claim("language", decide)


# --------------------------------------------------------------------------- numbers

_YEAR = re.compile(r"(?<!\d)(?<!\d[.,])(1[0-9]{3}|20[0-9]{2})(?!\d|[.,]\d)")
_TIME = re.compile(
    r"\b\d{1,2}[:.]\d{2}\s*(?:[ap]\.?m\.?)?(?!\d)|\b\d{1,2}\s*(?:[ap]\.?m\.?|o['’]clock)(?!\w)|"
    r"\b(?:noon|midnight)\b",
    re.IGNORECASE,
)
_TEMPERATURE = re.compile(
    r"-?\d+(?:[.,]\d+)?\s*(?:[°º]\s*[CFK]?\b|[°º]|degrees?\b|deg\b|celsius\b|fahrenheit\b|kelvin\b|[CFK]\b)",
    re.IGNORECASE,
)
_PRICE = re.compile(
    r"[$€£¥₹]\s*\d|\d(?:[\d.,]*)\s*(?:[$€£¥₹]|(?:usd|eur|gbp|dollars?|euros?|pounds?|cents?)\b)",
    re.IGNORECASE,
)
_DIGITS_CRITERION = re.compile(
    r"\b(digits?|numerals?|numeric(?:al)? (?:characters?|values?|figures?)|"
    r"(?:written|expressed|given|shown|stated) (?:as|in|with|using) (?:digits|numerals|numbers))\b",
    re.IGNORECASE,
)
_NUMBERS_CRITERION = re.compile(
    r"\b(?:contain|include|mention|use|have|give|state|feature)s?\s+"
    r"(?:a|an|any|at least one|some|one or more)?\s*"
    r"(?:numbers?|numerical values?|numeric values?)\b"
    r"|\b(?:numbers?|numerical values?) (?:in|anywhere)\b",
    re.IGNORECASE,
)
_NUMERAL = r"(-?\d[\d,]*(?:\.\d+)?)\s*[?.]*$"
#: "Is the answer 132?", "Is the result equal to 7?", "Does the response say 366?"
_SPECIFIC_NUMBER = [
    re.compile(
        r"^(?:is|was)\s+(?:the|its|your)\s+(?:final\s+)?(?:answer|result|total|sum|count)\s+"
        r"(?:equal to\s+|=\s*)?" + _NUMERAL,
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:answer|result|total|sum)\s+(?:is|equals?|=)\s+(?:to\s+)?" + _NUMERAL, re.IGNORECASE
    ),
    re.compile(
        r"\b(?:say|give|mention|contain|include|output|return)s?\s+(?:the number\s+)?" + _NUMERAL,
        re.IGNORECASE,
    ),
]


def _pattern_claim(check: str, what: str, pattern: re.Pattern[str], negated: bool) -> Claim:
    """``what`` with its article ("a year"); the finding names the matches or says none."""
    bare = re.sub(r"^(?:a|an)\s+", "", what)

    def decide(response: str) -> CheckVerdict:
        hits = [m.group(0).strip() for m in pattern.finditer(response)]
        finding = (
            f"the response contains {what} ({', '.join(repr(h) for h in hits[:3])})"
            if hits
            else f"the response contains no {bare}"
        )
        return verdict(check, finding, f"for {what}", bool(hits), negated)

    return Claim(check, decide)


def _recognise_numbers(core: str, negated: bool) -> Claim | None:
    specific = next((m for p in _SPECIFIC_NUMBER if (m := p.search(core))), None)
    if specific:
        wanted = specific.group(1).replace(",", "")

        def decide_specific(response: str) -> CheckVerdict:
            numbers = [n.replace(",", "") for n in tf.digits_in(response)]
            found = wanted in numbers
            finding = (
                f"the response contains the number {wanted}"
                if found
                else f"the response's numbers ({', '.join(numbers) or 'none'}) "
                f"do not include {wanted}"
            )
            return verdict("numbers", finding, f"for the number {wanted}", found, negated)

        return Claim("numbers", decide_specific)
    if re.search(r"\byears?\b", core, re.I) and re.search(
        r"\b(mention|give|contain|include|state|name|cite)s?\b", core, re.I
    ):
        return _pattern_claim("numbers", "a year", _YEAR, negated)
    if re.search(r"\b(?:specific|clock|exact)\s+time\b|\btime of day\b", core, re.I):
        return _pattern_claim("numbers", "a clock time", _TIME, negated)
    if re.search(r"\btemperatures?\b", core, re.I):
        return _pattern_claim("numbers", "a temperature", _TEMPERATURE, negated)
    if re.search(r"\bprices?\b|\bcosts?\b", core, re.I):
        return _pattern_claim("numbers", "a price", _PRICE, negated)
    if _DIGITS_CRITERION.search(core):
        return _pattern_claim("numbers", "digits", re.compile(r"\d+(?:[.,:]\d+)*"), negated)
    if _NUMBERS_CRITERION.search(core):

        def decide_numbers(response: str) -> CheckVerdict:
            hits = tf.digits_in(response) + tf.number_words_in(response)
            finding = (
                f"the response contains numbers ({', '.join(hits[:3])})"
                if hits
                else "the response contains no number, in digits or in words"
            )
            return verdict("numbers", finding, "for a number", bool(hits), negated)

        return Claim("numbers", decide_numbers)
    return None


# --------------------------------------------------------------------------- questions

_REQUEST = re.compile(
    r"\b(?:please\s+(?:tell|share|send|provide|give|let me know|describe|clarify)|"
    r"let me know|can you|could you|would you|tell me (?:more|what|which|how))\b",
    re.IGNORECASE,
)


def _recognise_questions(core: str, negated: bool) -> Claim | None:
    lowered = core.lower()
    if re.search(r"\bquestion marks?\b", lowered):
        if re.search(r"\bend(?:s|ing)?\b", lowered):
            return _question_claim("ends", negated)
        return _question_claim("any", negated)
    if re.search(
        r"\b(?:end|ends|ending|finish|finishes|close|closes)\s+(?:with|in|on)\s+(?:a\s+)?questions?\b",
        lowered,
    ):
        return _question_claim("ends", negated)
    if re.search(
        r"^(?:is|was)\s+(?:the|this|it|its)\b[\w\s]*?\b(?:a|one)\s+(?:single\s+)?question\s*[?.]*$",
        lowered,
    ):
        return _question_claim("is", negated)
    about = re.search(
        r"\bask(?:s|ing)?\s+(?:the\s+)?(?:user|reader|customer|you|them|him|her)?\s*about\s+(.+?)\s*[?.]*$",
        lowered,
    )
    if about:
        return _question_about_claim(about.group(1), negated)
    if re.search(
        r"\b(?:ask|request)(?:s|ing)?\s+(?:the\s+\w+\s+)?(?:for\s+)?(?:more|further|additional|any|some)?\s*"
        r"(?:information|details|clarification|context|specifics|input)\b",
        lowered,
    ):
        return _question_claim("request", negated)
    if re.search(
        r"\b(?:ask|pose|raise)(?:s|ing)?\b[\w\s-]*?\b(?:questions?|anything)\b|"
        r"\b(?:contain|include|have|has)s?\s+(?:a|any|at least one|one or more)?\s*"
        r"(?:rhetorical\s+)?questions?\b",
        lowered,
    ):
        return _question_claim("any", negated)
    return None


def _question_claim(mode: str, negated: bool) -> Claim:
    def decide(response: str) -> CheckVerdict | None:
        questions = tf.question_sentences(response)
        if mode == "ends":
            found = tf.ends_with_question(response)
            finding = (
                "the response ends with a question mark"
                if found
                else ("the response does not end with a question mark")
            )
            return verdict("questions", finding, "that it end with a question", found, negated)
        if mode == "is":
            sentences = tf.sentences(response)
            found = bool(sentences) and len(questions) >= len(sentences)
            finding = (
                f"{plural(len(questions), 'question')} among "
                f"{plural(len(sentences), 'sentence')} of the response"
            )
            return verdict("questions", finding, "that the response be a question", found, negated)
        if mode == "request":
            request = _REQUEST.search(response)
            found = bool(questions) or request is not None
            finding = (
                f"the response asks: {questions[0].strip()!r}"
                if questions
                else f"the response requests: {request.group(0)!r}"
                if request
                else "the response has no question and no request to the reader"
            )
            return verdict("questions", finding, "for a request for information", found, negated)
        found = bool(questions)
        finding = (
            f"the response asks: {questions[0].strip()!r}"
            if questions
            else "the response contains no question mark"
        )
        return verdict("questions", finding, "for a question", found, negated)

    return Claim("questions", decide)


def _question_about_claim(topic: str, negated: bool) -> Claim | None:
    stop = {"the", "a", "an", "their", "his", "her", "its", "your", "my", "our", "of", "and"}
    terms = [w for w in tf.words(topic) if w not in stop]
    if not terms or len(terms) > 3:
        return None

    def decide(response: str) -> CheckVerdict | None:
        questions = tf.question_sentences(response)
        if not questions:
            return verdict(
                "questions",
                "the response contains no question",
                f"for a question about {topic}",
                False,
                negated,
            )
        about = [q for q in questions if any(tf.contains_term(q, t) for t in terms)]
        if not about:
            return None  # a question that may be about the topic in other words
        finding = f"the response asks: {about[0].strip()!r}"
        return verdict("questions", finding, f"for a question about {topic}", True, negated)

    return Claim("questions", decide)


# --------------------------------------------------------------------------- the registry

from .checks_layout import recognise_layout, recognise_length  # noqa: E402
from .checks_tone import recognise_mention, recognise_refusal, recognise_tone  # noqa: E402

#: The specific checks, tried together; the mention check only when none of them claims.
_SPECIFIC: list[Recogniser] = [
    _recognise_language,
    recognise_length,
    recognise_layout,
    _recognise_numbers,
    _recognise_questions,
    recognise_refusal,
    recognise_tone,
]


def claims(criterion: str) -> list[Claim]:
    """Every check that claims ``criterion`` (for :func:`claim` and for tests)."""
    text = " ".join(criterion.split())
    if not text or _UNCLAIMABLE.search(text):
        return []
    split = _split_negation(text)
    if split is None:
        return []
    negated, core = split
    core = " ".join(core.split())
    found = [c for r in _SPECIFIC if (c := r(core, negated)) is not None]
    if not found:
        mention = recognise_mention(core, negated)
        found = [mention] if mention is not None else []
    return found


def claim(criterion: str) -> Claim | None:
    """The one check that claims ``criterion``, or ``None`` (none, or more than one)."""
    found = claims(criterion)
    return found[0] if len(found) == 1 else None


def check_criterion(criterion: str, response: str) -> CheckVerdict | None:
    """The deterministic verdict on ``response`` for ``criterion``, or ``None`` when no check
    claims the criterion or the claiming check cannot decide (the model judges then)."""
    found = claim(criterion)
    return found.decide(response) if found is not None else None
