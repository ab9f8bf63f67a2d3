"""The one ``Retry-After`` parser (``elluminate._retry``), shared by the client and the server's
OpenAI provider: whatever a server sends, the wait it yields is bounded.

Property tests with hypothesis over arbitrary header text, numbers of every size and sign,
non-finite floats and HTTP-dates, plus a table of the values that used to break a client
(``nan`` made the async client sleep forever and the sync client raise ValueError).
"""

from __future__ import annotations

import email.utils
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elluminate import RetryConfig
from elluminate._retry import MAX_RETRY_AFTER, parse_retry_after, retry_after_from_headers

NOW = 1_700_000_000.0
DEFAULT = RetryConfig()
PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True)


def bounded(seconds: float | None) -> bool:
    return seconds is None or (math.isfinite(seconds) and 0.0 <= seconds <= MAX_RETRY_AFTER)


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),
        ("+2", 2.0),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("1e999", None),
        ("1e3", None),
        ("9" * 400, MAX_RETRY_AFTER),
        (str(10**30), MAX_RETRY_AFTER),
        ("soon", None),
        ("", None),
        ("   ", None),
        ("0x10", None),
        ("1_000", None),
        ("Mon, 32 Foo 2024 99:99:99 GMT", None),
        ("Mon, 01 Jan 99999 00:00:00 GMT", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        (http_date(NOW + 7), 7.0),
        (http_date(NOW - 100), 0.0),
        ("Tue, 14 Nov 2023 22:13:27 -0000", 7.0),  # a zone-less date counts as UTC
        (None, None),
    ],
)
def test_table(value: str | None, expected: float | None) -> None:
    got = parse_retry_after(value, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


@PROPERTY
@given(st.text())
def test_any_text_gives_a_bounded_wait(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert bounded(seconds)
    wait = DEFAULT.wait_seconds(1, seconds)
    assert math.isfinite(wait) and 0.0 <= wait <= DEFAULT.max_wait


@PROPERTY
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_spelling_gives_a_bounded_wait(number: float) -> None:
    for spelling in (repr(number), f"{number:f}", str(number).upper()):
        seconds = parse_retry_after(spelling, now=NOW)
        assert bounded(seconds)
        if math.isfinite(number) and "e" not in spelling.lower():
            written = float(spelling)  # what the text says (``:f`` rounds to 6 places)
            assert seconds == min(max(written, 0.0), MAX_RETRY_AFTER)


@PROPERTY
@given(st.integers())
def test_integers_are_clamped(number: int) -> None:
    assert parse_retry_after(str(number)) == min(max(float(number), 0.0), MAX_RETRY_AFTER)


@PROPERTY
@given(st.integers(min_value=-(10**10), max_value=10**10))
def test_http_dates_count_from_now(offset: int) -> None:
    target = NOW + offset
    if not -62135596800 < target < 253402300799:  # years 1 to 9999
        return
    seconds = parse_retry_after(http_date(target), now=NOW)
    assert seconds == pytest.approx(min(max(float(offset), 0.0), MAX_RETRY_AFTER))


@PROPERTY
@given(
    st.dictionaries(
        st.sampled_from(["Retry-After", "retry-after", "retry-after-ms", "X"]), st.text()
    )
)
def test_headers_give_a_bounded_wait(headers: dict[str, str]) -> None:
    assert bounded(retry_after_from_headers(headers, now=NOW))


def test_headers_prefer_milliseconds() -> None:
    assert retry_after_from_headers({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_from_headers({"RETRY-AFTER": "9"}) == 9.0
    assert retry_after_from_headers({"retry-after-ms": "nan", "Retry-After": "9"}) == 9.0
    assert retry_after_from_headers({"retry-after-ms": "-3"}) == 0.0
    assert retry_after_from_headers({"retry-after-ms": "9" * 400}) == MAX_RETRY_AFTER
    assert retry_after_from_headers({"Retry-After": http_date(NOW + 7)}, now=NOW) == 7.0
    assert retry_after_from_headers({}) is None


@pytest.mark.parametrize("hint", [math.nan, math.inf, -math.inf, -1.0, 1e300])
def test_wait_seconds_is_bounded_for_any_hint(hint: float) -> None:
    config = RetryConfig(min_wait=0.5, max_wait=4.0, jitter=0)
    wait = config.wait_seconds(1, hint)
    assert math.isfinite(wait) and 0.0 <= wait <= 4.0
    if math.isnan(hint):
        assert wait == config.wait_seconds(1)  # no usable hint: the usual backoff
