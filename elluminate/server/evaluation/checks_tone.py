"""Checks of what a response does with words: refusals, rude words, mentions of a name."""

from __future__ import annotations

import re

from . import textfacts as tf
from .checks_common import CheckVerdict, Claim, verdict

__all__ = ["recognise_mention", "recognise_refusal", "recognise_tone"]

# --------------------------------------------------------------------------- refusals

_REFUSES = re.compile(
    r"\b(?:refus\w*|declin\w*|turn(?:s|ed|ing)? down|say(?:s|ing)? no to|reject\w*|"
    r"(?:a|as a) refusal)\b",
    re.IGNORECASE,
)
_COMPLIES = re.compile(
    r"\b(?:compl(?:y|ies|ying) with|fulfil\w*|fulfill\w*|go(?:es)? along with|"
    r"attempt(?:s)? (?:the|to do the) (?:task|request)|carr(?:y|ies) out the (?:task|request)|"
    r"do(?:es)? (?:the task|what (?:was|is|it was) asked)|perform(?:s)? the (?:task|request))\b",
    re.IGNORECASE,
)


def recognise_refusal(core: str, negated: bool) -> Claim | None:
    """ "Does it decline / refuse / turn down ...?" and "Does it comply with / fulfil ...?"."""
    refuses = _REFUSES.search(core) is not None
    complies = _COMPLIES.search(core) is not None
    if refuses == complies:
        return None

    def decide(response: str) -> CheckVerdict:
        phrase = tf.refusal_phrase(response)
        if not response.strip():
            finding = "the response is empty"
        elif phrase:
            finding = f"the response opens with a refusal ({phrase!r})"
        else:
            finding = "the response contains no refusal phrase near its start"
        refused = phrase is not None or not response.strip()
        if refuses:
            return verdict("refusal", finding, "whether it refuses", refused, negated)
        return verdict("refusal", finding, "whether it complies", not refused, negated)

    return Claim("refusal", decide)


# --------------------------------------------------------------------------- rudeness

_PROFANITY_CRITERION = re.compile(
    r"\b(?:profan\w*|swear\w*|curse words?|cursing|obscen\w*|vulgar\w*|foul language|"
    r"expletives?|four-letter words?)\b",
    re.IGNORECASE,
)
_RUDE_CRITERION = re.compile(
    r"\b(?:rude\w*|insult\w*|offensive|hostile|hostility|disrespectful|impolite|abusive|"
    r"demeaning|condescending|belittl\w*|aggressive|toxic|mean-spirited|derogatory)\b",
    re.IGNORECASE,
)
_POLITE_CRITERION = re.compile(
    r"\b(?:polite\w*|courteous\w*|respectful\w*|civil|considerate)\b", re.IGNORECASE
)


def recognise_tone(core: str, negated: bool) -> Claim | None:
    """Profanity (both ways), rudeness and insults (both ways, from a small lexicon), and
    politeness (only a no, when the lexicon finds rude words; else the model decides)."""
    if _PROFANITY_CRITERION.search(core):

        def decide_profanity(response: str) -> CheckVerdict:
            found = tf.profanity_in(response)
            finding = (
                f"the response uses {', '.join(repr(w) for w in found[:3])}"
                if found
                else "the response uses none of the profanity lexicon's words"
            )
            return verdict("tone", finding, "for profanity", bool(found), negated)

        return Claim("tone", decide_profanity)
    rude = _RUDE_CRITERION.search(core) is not None
    polite = _POLITE_CRITERION.search(core) is not None
    if rude == polite:
        return None

    def decide(response: str) -> CheckVerdict | None:
        found = tf.insult_in(response) + tf.profanity_in(response)
        finding = (
            f"the response uses {', '.join(repr(w) for w in found[:3])}"
            if found
            else "the response uses none of the insults, hostile phrases or profanity of the "
            "judge's lexicon"
        )
        if rude:
            return verdict("tone", finding, "whether it is rude or insulting", bool(found), negated)
        if not found:
            return None  # no rude words does not make a text polite
        return verdict("tone", finding, "whether it is polite", False, negated)

    return Claim("tone", decide)


# --------------------------------------------------------------------------- mentions

_MENTION_VERB = re.compile(
    r"\b(?:mention\w*|names?|named|naming|include[sd]?|including|contains?|us(?:e|es|ing)|"
    r"refer(?:s|red|ring)? to|address(?:es|ed|ing)?|call(?:s|ed|ing)?|cite[sd]?|"
    r"reference[sd]?|spell(?:s|ed)? out|greet(?:s|ed)?|thank(?:s|ed)?)\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"(?:^|[\s(])[\"“‘'«]([^\"”’'»]{1,60})[\"”’'»](?=$|[\s?.,!)])")
#: Capitalised words that are not names in a criterion.
_NOT_NAMES = frozenset(
    "i does do did is are was were has have can could should would will the a an it its "
    "json yaml html xml csv markdown sql url api ok".split()
)
_HONORIFICS = frozenset("mr mrs ms miss dr prof sir madam mx".split())
_CATEGORY = re.compile(
    r"\b(?:any|a|an|some|specific|particular|one or more|at least one|other|another|"
    r"certain|several|every|each)\s+\w+\s*(?:by name)?\s*[?.]*$",
    re.IGNORECASE,
)


def _quoted_or_names(criterion: str) -> list[str]:
    quoted = [m.group(1).strip() for m in _QUOTED.finditer(criterion)]
    if quoted:
        return quoted
    names = []
    tokens = list(re.finditer(r"[^\W\d_][\w.'’-]*|\d+", criterion))
    i = 0
    while i < len(tokens):
        token = tokens[i].group(0).rstrip(".")
        if i > 0 and token[:1].isupper() and token.lower() not in _NOT_NAMES:
            run = [tokens[i].group(0)]
            j = i + 1
            while (
                j < len(tokens)
                and (tokens[j].group(0)[:1].isupper() or tokens[j].group(0).isdigit())
                and criterion[tokens[j - 1].end() : tokens[j].start()].strip() == ""
            ):
                run.append(tokens[j].group(0))
                j += 1
            names.append(re.sub(r"(?:['’]s?|[.,;:])$", "", " ".join(run)))
            i = j
        else:
            i += 1
    return names


def recognise_mention(core: str, negated: bool) -> Claim | None:
    """A name or a quoted word the response must contain ("Does it address Maria by name?",
    "Does the blurb include the word "Aurora"?", "Does the response mention the chain?")."""
    if not _MENTION_VERB.search(core) or re.search(r"\babout\b", core, re.I):
        return None
    terms = _quoted_or_names(core)
    if not terms:
        single = re.search(
            r"\bmention(?:s)?\s+(?:the\s+(?:word\s+)?)?([a-z][a-z-]{2,})(?:\s+by name)?\s*[?.]*$",
            core,
        )
        if single is None or _CATEGORY.search(core):
            return None
        terms = [single.group(1)]
    if len(terms) != 1:
        return None  # two names: which one, or both? the model decides
    term = terms[0]
    parts = [p for p in re.split(r"\s+", term) if p.lower().rstrip(".") not in _HONORIFICS]

    def decide(response: str) -> CheckVerdict | None:
        if tf.contains_term(response, term):
            finding = f"the response contains {term!r}"
            return verdict("mention", finding, f"for {term!r}", True, negated)
        if len(parts) > 1 and any(len(p) > 2 and tf.contains_term(response, p) for p in parts):
            return None  # part of the name: "Dr. Raman" for "Dr. Priya Raman"; model decides
        finding = f"the response does not contain {term!r}"
        return verdict("mention", finding, f"for {term!r}", False, negated)

    return Claim("mention", decide)
