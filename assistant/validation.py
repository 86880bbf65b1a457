"""Input checks that run before anything else, so bad input gets a clear message and never raises."""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import Any

from .results import Turn

_TAG = re.compile(r"<[^>]{0,500}>")
# terminal colour and cursor codes (CSI and OSC sequences) pasted from a console
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_ZWJ = "\u200d"
_BLACK_FLAG = "\U0001f3f4"  # subdivision flags (England, Scotland) are this plus tag characters


@dataclass(frozen=True)
class Validated:
    ok: bool
    text: str = ""
    problem: str = ""


def _has_words(text: str) -> bool:
    return any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)


def _is_emoji_part(ch: str) -> bool:
    """Pictographs, skin tones and variation selectors: what a zero-width joiner may join."""
    return unicodedata.category(ch) in ("So", "Sk") or 0xFE00 <= ord(ch) <= 0xFE0F or 0x1F3FB <= ord(ch) <= 0x1F3FF


def clean(text: str) -> str:
    """Drops what a reader cannot see: terminal codes, control characters and invisible format
    characters (zero-width spaces, direction overrides, tag characters that can hide text). A
    zero-width joiner inside an emoji, and the tags of a subdivision flag, are kept: they are part
    of what the person typed."""
    text = _ANSI.sub("", text)
    out: list[str] = []
    in_flag = False
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat == "Cc":  # tabs, newlines and other C0/C1 controls become spaces
            out.append(" ")
        elif cat == "Cf":
            if ch == _ZWJ and out and _is_emoji_part(out[-1]) and i + 1 < len(text) and _is_emoji_part(text[i + 1]):
                out.append(ch)
            elif in_flag and 0xE0020 <= ord(ch) <= 0xE007F:
                out.append(ch)
            continue
        else:
            out.append(ch)
        in_flag = ch == _BLACK_FLAG or (in_flag and 0xE0020 <= ord(ch) <= 0xE007F)
    return "".join(out)


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
    text = clean(text)
    if not text.strip():
        return Validated(
            False,
            problem="Your message held only hidden characters (control or formatting codes), no text. Please type your question.",
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


def validate_history(history: Any, max_turns: int, max_chars: int) -> tuple[Turn, ...]:
    """The most recent valid turns, at most ``max_turns`` and ``max_chars`` in all.

    Items are checked one by one: a malformed one is skipped and the rest kept, so an earlier red
    flag is never lost because some other item was broken. Reading is bounded too: of a longer
    history only the last ``4 * max_turns`` items are looked at."""
    if not history or isinstance(history, (str, bytes, dict)):
        return ()
    try:
        items = deque(history, maxlen=4 * max_turns)
    except Exception:  # not iterable, or an iterator that breaks part-way: no usable history
        return ()
    turns: list[Turn] = []
    budget = max_chars
    for item in reversed(items):
        try:
            turn = Turn.coerce(item)
        except (TypeError, ValueError, AttributeError):
            continue
        if turn is None:
            continue
        text = " ".join(clean(turn.content).split())[:budget]
        if not text:
            continue
        turns.append(Turn(turn.role, text))
        budget -= len(text)
        if len(turns) == max_turns or budget <= 0:
            break
    return tuple(reversed(turns))
