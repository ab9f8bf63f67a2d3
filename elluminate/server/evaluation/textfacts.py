"""Facts about a response that can be read off its text: the measurements behind :mod:`.checks`.

Every function is pure and deterministic. The language of a text comes from
``lingua-language-detector`` (``elluminate[local]``), loaded on first use; everything else is
plain string work.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DetectedLanguage",
    "LanguageUnavailable",
    "bullet_lines",
    "character_count",
    "contains_term",
    "detect_language",
    "digits_in",
    "ends_with_question",
    "greeting_opening",
    "is_json",
    "language_names",
    "line_count",
    "markdown_table",
    "numbered_lines",
    "number_words_in",
    "profanity_in",
    "question_sentences",
    "refusal_phrase",
    "insult_in",
    "sentence_count",
    "word_count",
    "words",
]

# --------------------------------------------------------------------------- language

#: Languages people name differently from lingua's enum (lower-case name -> lingua names).
_LANGUAGE_ALIASES: dict[str, tuple[str, ...]] = {
    "norwegian": ("BOKMAL", "NYNORSK"),
    "bokmal": ("BOKMAL",),
    "bokmål": ("BOKMAL",),
    "nynorsk": ("NYNORSK",),
    "farsi": ("PERSIAN",),
    "mandarin": ("CHINESE",),
    "filipino": ("TAGALOG",),
    "flemish": ("DUTCH",),
    "castilian": ("SPANISH",),
    "brazilian portuguese": ("PORTUGUESE",),
    "serbo-croatian": ("SERBIAN", "CROATIAN", "BOSNIAN"),
}

#: The shortest text (in words) whose language is detected at all; shorter ones are undecided.
MIN_LANGUAGE_WORDS = 3
#: The confidence the detector must give its best language for a decision.
MIN_LANGUAGE_CONFIDENCE = 0.6

_detector: Any = None
_detector_lock = threading.Lock()


class LanguageUnavailable(RuntimeError):
    """``lingua-language-detector`` is not installed (it comes with ``elluminate[local]``)."""


def _lingua() -> Any:
    try:
        import lingua
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise LanguageUnavailable(
            "language checks need lingua-language-detector: pip install 'elluminate[local]'"
        ) from exc
    return lingua


def _language_detector() -> Any:
    global _detector
    with _detector_lock:
        if _detector is None:
            lingua = _lingua()
            # low-accuracy mode: trigram models only, 70 MB and a few seconds to load instead
            # of 1 GB and minutes; still reliable from a few words on (see BENCHMARKS.md)
            _detector = (
                lingua.LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
            )
        return _detector


def language_names() -> dict[str, tuple[str, ...]]:
    """Every language name a criterion may use (lower case) -> lingua enum names."""
    names: dict[str, tuple[str, ...]] = {}
    for language in _lingua().Language.all():
        names[language.name.lower()] = (language.name,)
    names.update(_LANGUAGE_ALIASES)
    return names


def pretty_language(enum_name: str) -> str:
    """``BOKMAL`` -> ``Norwegian (Bokmål)``, ``ENGLISH`` -> ``English``."""
    special = {"BOKMAL": "Norwegian (Bokmål)", "NYNORSK": "Norwegian (Nynorsk)"}
    return special.get(enum_name, enum_name.capitalize())


@dataclass(frozen=True)
class DetectedLanguage:
    """The detector's best language (a lingua enum name) and its confidence in [0, 1]."""

    language: str
    confidence: float


def detect_language(text: str) -> DetectedLanguage | None:
    """The language of ``text``, or ``None`` when it is too short or the detector is unsure."""
    if len(words(text)) < MIN_LANGUAGE_WORDS:
        return None
    values = _language_detector().compute_language_confidence_values(text)
    if not values or values[0].value < MIN_LANGUAGE_CONFIDENCE:
        return None
    return DetectedLanguage(values[0].language.name, float(values[0].value))


# --------------------------------------------------------------------------- words, lengths

_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)|\n\s*\n")


def words(text: str) -> list[str]:
    """The words of ``text`` (runs of letters or digits, inner apostrophes and hyphens kept)."""
    return _WORD.findall(text)


def word_count(text: str) -> int:
    return len(words(text))


def character_count(text: str) -> int:
    return len(text.strip())


def line_count(text: str) -> int:
    """Non-empty lines."""
    return sum(1 for line in text.splitlines() if line.strip())


def sentences(text: str) -> list[str]:
    """The sentences of ``text``: split after ``.``, ``!``, ``?`` followed by a space, and at
    blank lines; list items on their own lines count one each."""
    parts: list[str] = []
    for line in text.strip().splitlines():
        for piece in _SENTENCE_END.split(line):
            if words(piece):
                parts.append(piece.strip())
    return parts


def sentence_count(text: str) -> int:
    return len(sentences(text))


# --------------------------------------------------------------------------- numbers

_DIGIT = re.compile(r"\d")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred thousand million billion dozen half".split()
)


def digits_in(text: str) -> list[str]:
    """The numbers written with digits in ``text`` (``8,849``, ``9:30``, ``3.5``)."""
    return re.findall(r"\d+(?:[.,:]\d+)*", text) if _DIGIT.search(text) else []


def number_words_in(text: str) -> list[str]:
    """Numbers spelled out as words (``eight``, ``one hundred``, ``forty-four``)."""
    found = []
    for word in words(text.lower()):
        parts = word.split("-")
        if all(part in _NUMBER_WORDS for part in parts) and word != "one":
            found.append(word)
    return found


# --------------------------------------------------------------------------- layout

_BULLET = re.compile(r"^\s*[-*•+▪‣]\s+\S")
_NUMBERED = re.compile(r"^\s*(?:\d+|[a-z])[.)]\s+\S", re.IGNORECASE)


def bullet_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if _BULLET.match(line))


def numbered_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if _NUMBERED.match(line))


def is_json(text: str, *, object_only: bool = False) -> bool:
    """Whether the whole text (inside a code fence, if it has one) parses as JSON."""
    body = text.strip()
    fenced = re.fullmatch(r"```[\w-]*\n(.*?)\n?```", body, re.DOTALL)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) if object_only else isinstance(value, (dict, list))


def markdown_table(text: str) -> bool:
    """A header row, a ``|---|`` separator row and at least one more row."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i in range(1, len(lines) - 1):
        if re.fullmatch(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?", lines[i]) and (
            "|" in lines[i - 1] and "|" in lines[i + 1]
        ):
            return True
    return False


def code_block(text: str) -> bool:
    return bool(re.search(r"```.*?```", text, re.DOTALL))


_GREETINGS = re.compile(
    r"^\W*(hi|hello|hey|dear|good (morning|afternoon|evening)|greetings|howdy|hiya|"
    r"to whom it may concern|welcome)\b",
    re.IGNORECASE,
)


def greeting_opening(text: str) -> str | None:
    """The greeting the text opens with, if any."""
    match = _GREETINGS.match(text)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- questions

_CLOSERS = "\"'”’»)]*_ \t\n"


def question_sentences(text: str) -> list[str]:
    """The sentences that end with a question mark."""
    return re.findall(r"[^.!?\n]*\?", text)


def ends_with_question(text: str) -> bool:
    return text.rstrip(_CLOSERS).endswith("?")


# --------------------------------------------------------------------------- mentions


def contains_term(text: str, term: str) -> bool:
    """Whether ``term`` occurs in ``text`` as whole words (case and spacing ignored; a plural
    ``-s``/``-es`` or possessive ``'s`` after it still counts)."""
    parts = [re.escape(part) for part in term.split()]
    if not parts:
        return False
    pattern = r"(?<![\w])" + r"\s+".join(parts) + r"(?:e?s|['’]s)?(?![\w])"
    return re.search(pattern, text, re.IGNORECASE) is not None


# --------------------------------------------------------------------------- refusals, rudeness

_REFUSAL = re.compile(
    r"\b(?:i|we)\s*(?:can(?:no|')t|cannot|won['’]?t|will not|am not able to|['’]m not able to|"
    r"am unable to|['’]m unable to|must decline|have to decline|refuse to|do not|don['’]t|"
    r"would rather not|['’]d rather not|prefer not to|['’]d prefer not to|"
    r"am not going to|['’]m not going to)\b"
    r"|\bunfortunately,? i\b|\bi['’]m sorry,? but\b|\bsorry,? (?:but )?i (?:can|am|won)"
    r"|\bnot (?:able|allowed|permitted) to (?:help|share|provide|assist|do|write|give)\b"
    r"|\bi (?:can|will) (?:only )?not\b",
    re.IGNORECASE,
)
#: How far into the response a refusal must start to count as declining the request.
_REFUSAL_WINDOW = 160


def refusal_phrase(text: str) -> str | None:
    """The refusing phrase near the start of ``text`` ("I can't", "Sorry, I am..."), if any."""
    match = _REFUSAL.search(text[:_REFUSAL_WINDOW])
    return match.group(0).strip() if match else None


_PROFANITY = frozenset(
    "shit shitty fuck fucking fucked damn damned goddamn hell crap bullshit bastard bitch ass "
    "asshole arse arsehole piss pissed bloody wtf".split()
)
_INSULTS = frozenset(
    "idiot idiots idiotic stupid moron morons moronic dumb dumbest fool fools foolish loser "
    "losers pathetic useless worthless incompetent imbecile clown jerk ignorant lazy "
    "ridiculous garbage trash".split()
)
_HOSTILE_PHRASES = re.compile(
    r"\b(shut up|get lost|go away|not my problem|mind your own|wasting my time|"
    r"who cares|figure it out yourself|leave me alone|screw you|piss off|get out)\b",
    re.IGNORECASE,
)


def profanity_in(text: str) -> list[str]:
    return [w for w in words(text.lower()) if w in _PROFANITY]


def insult_in(text: str) -> list[str]:
    """Insulting words and hostile phrases in ``text`` (a small English lexicon)."""
    found = [w for w in words(text.lower()) if w in _INSULTS]
    found += [m.group(0).lower() for m in _HOSTILE_PHRASES.finditer(text)]
    return found
