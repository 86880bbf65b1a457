"""Input checks that run before anything else, so bad input gets a clear message and never raises."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_TAG = re.compile(r"<[^>]{0,500}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Validated:
    ok: bool
    text: str = ""
    problem: str = ""


def _has_words(text: str) -> bool:
    return any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)


def validate_message(message: object, max_chars: int) -> Validated:
    if message is None or not isinstance(message, str):
        return Validated(False, problem="Please send your question as text.")
    text = unicodedata.normalize("NFC", message)
    if not text.strip():
        return Validated(False, problem="Your message is empty. Please type a question about walking and back pain.")
    if len(text) > max_chars:
        return Validated(
            False,
            problem=(
                f"Your message is {len(text):,} characters long; the limit is {max_chars:,}. "
                "Please shorten it to the question you most want answered."
            ),
        )
    if _CONTROL.search(text):
        return Validated(
            False,
            problem="Your message contains hidden control characters. Please retype it as plain text.",
        )
    if _TAG.search(text) and not _has_words(_TAG.sub(" ", text)):
        return Validated(
            False,
            problem="Your message only contained markup (HTML tags), not a question. Please type your question as plain text.",
        )
    if not _has_words(text):
        return Validated(
            False,
            problem="I couldn't find any words in your message. Please describe your question in words.",
        )
    return Validated(True, text=" ".join(text.split()))
