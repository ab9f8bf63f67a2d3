"""The judge's deterministic checks: which criteria they claim, what they decide, and that the
reasoning they store always agrees with the verdict."""

from __future__ import annotations

import re

import pytest

from elluminate.server.evaluation import textfacts as tf
from elluminate.server.evaluation.checks import check_criterion, claim, claims

pytest.importorskip("lingua")  # the language check needs elluminate[local]

# (criterion, response, expected rating, expected check)
DECIDED = [
    # language, in phrasings of several shapes, and "other than"
    (
        "Is the reply written in Danish?",
        "Tak for din besked, vi vender tilbage i morgen.",
        "YES",
        "language",
    ),
    (
        "Is the reply written in Danish?",
        "Thanks for your message, we will reply tomorrow.",
        "NO",
        "language",
    ),
    (
        "Does the assistant answer in Italian?",
        "Certo, domani il negozio è aperto tutto il giorno.",
        "YES",
        "language",
    ),
    (
        "Is the language of the text Hungarian?",
        "Köszönjük a türelmét, a csomag holnap érkezik.",
        "YES",
        "language",
    ),
    ("Is the output Greek?", "Ευχαριστούμε πολύ για την υπομονή σας.", "YES", "language"),
    (
        "Is it written in a language other than English?",
        "Wir melden uns morgen bei Ihnen.",
        "YES",
        "language",
    ),
    (
        "Is it written in a language other than English?",
        "We will get back to you tomorrow.",
        "NO",
        "language",
    ),
    (
        "Is the answer not in English?",
        "We will get back to you tomorrow morning.",
        "NO",
        "language",
    ),
    # numbers and digits
    ("Does the answer include any digits?", "Take 2 tablets a day.", "YES", "numbers"),
    ("Does the answer include any digits?", "Take two tablets a day.", "NO", "numbers"),
    ("Does the answer mention a number?", "Take two tablets a day.", "YES", "numbers"),
    ("Is the reply free of numerals?", "Take two tablets a day.", "YES", "numbers"),
    ("Does the reply avoid digits?", "Take 2 tablets a day.", "NO", "numbers"),
    ("Does the text contain no digits?", "Take 2 tablets a day.", "NO", "numbers"),
    ("Does the response mention a year?", "The bridge opened in 1937.", "YES", "numbers"),
    ("Does the response mention a year?", "The bridge opened long ago.", "NO", "numbers"),
    ("Is the answer 56?", "7 times 8 is 56.", "YES", "numbers"),
    ("Is the answer 56?", "7 times 8 is 54.", "NO", "numbers"),
    ("Does it give a price?", "It costs $15 per month.", "YES", "numbers"),
    ("Does it give a price?", "It is quite cheap.", "NO", "numbers"),
    ("Does the reply state a temperature?", "Keep it below 5 °C.", "YES", "numbers"),
    ("Does the reply mention a specific time?", "The shop opens at 8:30 am.", "YES", "numbers"),
    # questions
    (
        "Does the reply pose a question to the user?",
        "Nice! Which city are you in?",
        "YES",
        "questions",
    ),
    ("Does the reply pose a question to the user?", "Nice! Enjoy your stay.", "NO", "questions"),
    (
        "Does the message finish with a question?",
        "Is it raining? I will bring an umbrella.",
        "NO",
        "questions",
    ),
    (
        "Does the message finish with a question?",
        "I will bring an umbrella. Shall I?",
        "YES",
        "questions",
    ),
    ("Does it contain a question mark?", "Really? Wow.", "YES", "questions"),
    (
        "Does the answer ask for more details?",
        "Please tell me which model you own.",
        "YES",
        "questions",
    ),
    ("Does the answer ask for more details?", "Restart the device.", "NO", "questions"),
    ("Does the response avoid asking questions?", "What do you think?", "NO", "questions"),
    # layout
    ("Is the answer a bulleted list?", "* milk\n* eggs\n* flour", "YES", "format"),
    ("Is the answer formatted as a numbered list?", "* milk\n* eggs", "NO", "format"),
    ("Is the answer presented as a list?", "1) milk\n2) eggs", "YES", "format"),
    ("Is the output valid JSON?", '```json\n{"a": 1}\n```', "YES", "format"),
    ("Is the output valid JSON?", "{a: 1}", "NO", "format"),
    ("Does the reply include a table?", "| a | b |\n|---|---|\n| 1 | 2 |", "YES", "format"),
    ("Does the reply include a code block?", "Run `ls`.", "NO", "format"),
    ("Is the headline written entirely in capital letters?", "BIG NEWS TODAY", "YES", "format"),
    ("Is the headline written entirely in capital letters?", "Big News Today", "NO", "format"),
    ("Does the letter begin with a greeting?", "Hello team, the build is green.", "YES", "format"),
    ("Does the letter begin with a greeting?", "The build is green.", "NO", "format"),
    ("Does the post contain a hashtag?", "Loving this weather #summer", "YES", "format"),
    ("Does the bot reply with just yes or no?", "No.", "YES", "format"),
    # length
    ("Is the response under 12 words?", "Short and sweet.", "YES", "length"),
    ("Is the response under 12 words?", " ".join(["word"] * 12), "NO", "length"),
    ("Is the answer at most three sentences?", "One. Two. Three. Four.", "NO", "length"),
    ("Does the reply consist of more than 5 words?", "It is a very nice day.", "YES", "length"),
    ("Is the answer exactly two lines?", "roses are red\nviolets are blue", "YES", "length"),
    ("Is the answer a single word?", "Blue.", "YES", "length"),
    ("Is the answer a single word?", "It is blue.", "NO", "length"),
    ("Is the reply fewer than 100 characters?", "Fine.", "YES", "length"),
    # refusals
    ("Does the assistant decline?", "I'm sorry, but I can't share that.", "YES", "refusal"),
    ("Does the assistant decline?", "Here is the summary you asked for.", "NO", "refusal"),
    ("Does the model reject the request?", "Unfortunately, I cannot do that.", "YES", "refusal"),
    (
        "Does the reply comply with the request?",
        "Here is your poem: roses are red.",
        "YES",
        "refusal",
    ),
    ("Does the reply comply with the request?", "I won't write that poem.", "NO", "refusal"),
    ("Does the response not refuse?", "I can't help with that.", "NO", "refusal"),
    # rude words
    ("Is the message insulting?", "You are an idiot.", "YES", "tone"),
    ("Is the message insulting?", "Thanks for the question.", "NO", "tone"),
    ("Does the comment use swear words?", "This is shit.", "YES", "tone"),
    ("Does the comment use swear words?", "This is bad.", "NO", "tone"),
    ("Is the reply courteous?", "Shut up, moron.", "NO", "tone"),
    # mentions
    ("Does the email address Kofi by name?", "Hi Kofi, the report is attached.", "YES", "mention"),
    ("Does the email address Kofi by name?", "Hi there, the report is attached.", "NO", "mention"),
    ('Does the slogan include the word "fresh"?', "Fresh bread every morning.", "YES", "mention"),
    ('Does the slogan include the word "fresh"?', "Warm bread every morning.", "NO", "mention"),
    ("Does the story mention the lighthouse?", "The lighthouse stood alone.", "YES", "mention"),
    (
        "Is Nordwind GmbH named in the reply?",
        "Thanks for choosing Nordwind GmbH!",
        "YES",
        "mention",
    ),
]

#: Criteria no check may claim: judging them needs reading, knowledge or taste.
NOT_CLAIMED = [
    "Is it persuasive?",
    "Does it use a metaphor?",
    "Is the answer correct?",
    "Does it say Rome is the capital of Italy?",
    "Does the response state that water boils at 100 degrees?",
    "Is the response about gardening?",
    "Does the response mention any food?",
    "Does the reply mention a color?",
    "Is the tone formal?",
    "Is the feedback encouraging?",
    "Is it a list of fruits?",
    "Does the response contain a factual error?",
    "Does the response never mention prices or refuse?",
    "Does it neither ask a question nor use digits?",
    "Does the poem rhyme?",
    "Is the summary faithful to the article?",
]


def _ids(rows: list[tuple[str, ...]]) -> list[str]:
    return [f"{r[0][:40]}->{r[2]}" for r in rows]


@pytest.mark.parametrize(("criterion", "response", "rating", "check"), DECIDED, ids=_ids(DECIDED))
def test_a_claimed_criterion_is_decided_by_its_check(
    criterion: str, response: str, rating: str, check: str
) -> None:
    claimed = claim(criterion)
    assert claimed is not None and claimed.check == check
    verdict = check_criterion(criterion, response)
    assert verdict is not None
    assert (verdict.rating, verdict.check) == (rating, check), verdict.reasoning


@pytest.mark.parametrize("criterion", NOT_CLAIMED)
def test_criteria_that_need_reading_are_left_to_the_model(criterion: str) -> None:
    assert claims(criterion) == [] or claim(criterion) is None
    assert check_criterion(criterion, "Some answer with 3 words? Yes.") is None


@pytest.mark.parametrize(("criterion", "response", "rating", "check"), DECIDED, ids=_ids(DECIDED))
def test_the_reasoning_states_the_check_and_ends_in_the_verdict(
    criterion: str, response: str, rating: str, check: str
) -> None:
    verdict = check_criterion(criterion, response)
    assert verdict is not None
    assert verdict.reasoning.startswith("Checked: ")
    # the last word is the verdict, and the opposite verdict is not stated anywhere
    assert verdict.reasoning.endswith(f": {verdict.rating.lower()}.")
    opposite = "no" if verdict.rating == "YES" else "yes"
    assert not re.search(rf": {opposite}\.$", verdict.reasoning)


def test_two_checks_claiming_one_criterion_leave_it_to_the_model() -> None:
    criterion = "Is the response written in German and under 20 words?"
    assert {c.check for c in claims(criterion)} == {"language", "length"}
    assert claim(criterion) is None
    assert check_criterion(criterion, "Guten Morgen, wie geht es dir?") is None


def test_a_text_too_short_for_its_language_is_undecided() -> None:
    assert claim("Is the reply in Spanish?") is not None
    assert check_criterion("Is the reply in Spanish?", "Sí.") is None  # one word: unsure
    assert tf.detect_language("ok") is None


def test_a_politeness_criterion_is_only_decided_against_rude_words() -> None:
    assert check_criterion("Is the answer polite?", "Here you go.") is None
    verdict = check_criterion("Is the answer polite?", "Get lost, you fool.")
    assert verdict is not None and verdict.rating == "NO"


def test_a_partial_name_is_undecided() -> None:
    criterion = "Does the letter mention Dr. Lena Vogt?"
    assert check_criterion(criterion, "Dear Dr. Lena Vogt, thank you.").rating == "YES"  # type: ignore[union-attr]
    assert check_criterion(criterion, "Dear Dr. Vogt, thank you.") is None
    assert check_criterion(criterion, "Dear colleague, thank you.").rating == "NO"  # type: ignore[union-attr]


def test_norwegian_covers_both_written_standards() -> None:
    verdict = check_criterion(
        "Is the text in Norwegian?", "Takk for meldingen din, vi svarer deg i morgen tidlig."
    )
    assert verdict is not None and verdict.rating == "YES", verdict.reasoning


def test_text_facts() -> None:
    assert tf.word_count("It's a well-known fact, isn't it?") == 6
    assert tf.sentence_count("One. Two! Three? Four") == 4
    assert tf.sentence_count("- a\n- b") == 2
    assert tf.digits_in("8,849 m at 9:30") == ["8,849", "9:30"]
    assert tf.number_words_in("forty-four or one") == ["forty-four"]
    assert tf.ends_with_question('He asked: "why?"')
    assert tf.contains_term("Lisbon's trams", "Lisbon")
    assert not tf.contains_term("Lisbonne", "Lisbon")
    assert tf.refusal_phrase("I'd rather not do that.") is not None
    assert tf.refusal_phrase("Sure, here it is.") is None
    assert tf.is_json('{"a": [1, 2]}', object_only=True) and not tf.is_json("[1]", object_only=True)
