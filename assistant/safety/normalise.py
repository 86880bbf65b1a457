"""Text normalisation for the screen, with an offset map back to the person's own words.

Rules and the detector both read the normalised text; the offset map lets every reason quote
what the person actually wrote.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

# Straightened punctuation; everything else is NFKC-normalised and lower-cased.
_CHAR_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2009": " ", "\u200b": "",
}
_ALPHA_TOKEN = re.compile(r"[a-z]+")


def normalise(text: str) -> tuple[str, list[int]]:
    """Lower-case, straighten quotes, drop apostrophes, collapse whitespace.

    Returns the normalised text and, for every character of it, the index of the character of
    ``text`` it came from (so matches can be quoted in the person's own words).
    """
    if text.isascii():
        return _normalise_ascii(text)
    out: list[str] = []
    idx: list[int] = []
    prev_space = True
    for i, ch in enumerate(text):
        ch = _CHAR_MAP.get(ch, ch)
        if ch and ord(ch[0]) > 127:
            ch = unicodedata.normalize("NFKC", ch)
        for c in ch.lower():
            if c == "'":
                continue
            if c.isspace():
                if c == "\n":
                    if out and out[-1] == " ":
                        out[-1] = "\n"
                        prev_space = True
                        continue
                    if prev_space and out and out[-1] == "\n":
                        continue
                elif prev_space:
                    continue
                c = "\n" if c == "\n" else " "
                prev_space = True
            else:
                prev_space = False
            out.append(c)
            idx.append(i)
    while out and out[-1] in " \n":
        out.pop()
        idx.pop()
    return "".join(out), idx


_ASCII_PIECE = re.compile(r"[^\s'`]+|\s+|['`]+")


def _normalise_ascii(text: str) -> tuple[str, list[int]]:
    """Fast path of :func:`normalise` for plain ASCII (most messages)."""
    low = text.lower()
    out: list[str] = []
    idx: list[int] = []
    for m in _ASCII_PIECE.finditer(low):
        piece = m.group(0)
        c = piece[0]
        if c in "'`":
            continue
        if c.isspace():
            if not out:
                continue
            sep = "\n" if "\n" in piece else " "
            if out[-1] in (" ", "\n"):
                if sep == "\n":
                    out[-1] = "\n"
                continue
            out.append(sep)
            idx.append(m.start())
        else:
            out.append(piece)
            idx.extend(range(m.start(), m.end()))
    if out and out[-1] in (" ", "\n"):
        out.pop()
        idx.pop()
    return "".join(out), idx



def _is_english_word(token: str) -> bool:
    """A word English uses at least once in a hundred million words ("shoveling") is a word, not a
    typo of a symptom ("shivering"); misspellings are rarer ("numbess", "feaver")."""
    from wordfreq import zipf_frequency

    return zipf_frequency(token, "en") >= 2.0


class TypoFixer:
    """Replaces likely misspellings of the rules' key words ("numbess", "bladdder") before matching.

    A word is only corrected when neither the embedding model's own vocabulary nor English word
    frequencies know it, so real words are never "fixed" into symptoms.
    """

    def __init__(self, vocabulary: Iterable[str], protected: Iterable[str], known_words: Iterable[str]) -> None:
        self.vocabulary = tuple(vocabulary)
        self._known = set(known_words) | set(self.vocabulary) | set(protected)
        self._cache: dict[str, str | None] = {}

    def fix(self, text: str, index: list[int]) -> tuple[str, list[int]]:
        vocab = self.vocabulary
        if not vocab:
            return text, index
        pieces: list[str] = []
        new_index: list[int] = []
        pos = 0
        changed = False
        for m in _ALPHA_TOKEN.finditer(text):
            tok = m.group(0)
            if len(tok) < 5 or tok in self._known:
                continue
            fix = self._cache.get(tok, "")
            if fix == "" and _is_english_word(tok):
                fix = None
            if fix == "":
                limit = 2 if len(tok) >= 9 else 1
                best = process.extractOne(tok, vocab, scorer=Levenshtein.distance, score_cutoff=limit)
                fix = best[0] if best else None
                if len(self._cache) < 20000:
                    self._cache[tok] = fix
            if not fix or fix == tok:
                continue
            changed = True
            s, e = m.span()
            pieces.append(text[pos:s])
            new_index.extend(index[pos:s])
            pieces.append(fix)
            # every character of the fix points into the original token
            span = index[s:e]
            new_index.extend(span[min(k, len(span) - 1)] for k in range(len(fix)))
            pos = e
        if not changed:
            return text, index
        pieces.append(text[pos:])
        new_index.extend(index[pos:])
        return "".join(pieces), new_index

