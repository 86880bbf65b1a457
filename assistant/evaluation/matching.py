"""Text matching rules shared by the metrics: when a context or quote "contains" an evidence passage,
when an answer "contains" a key fact, and which sentence a ``[n]`` marker belongs to.

Everything here is pure and deterministic, so the metric unit tests can pin exact values.

The hit rule
------------
Texts are compared as token sequences: Unicode NFKC, lower case, runs of letters/digits
(punctuation, Markdown, bullets and curly-vs-straight quotes are ignored). A context *contains*
an evidence passage when at least ``HIT_COVERAGE`` (60 %) of the passage's tokens lie in
stretches of at least ``MIN_BLOCK`` (3) consecutive tokens that appear, in the same order, in the
context. So a chunk that holds the whole passage, or most of it when a chunk boundary falls
inside the sentence, is a hit; a chunk that merely shares scattered words with it is not.
"""

from __future__ import annotations

import math
import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Iterable, Sequence

HIT_COVERAGE = 0.6
MIN_BLOCK = 3
# A cited quote shorter than the evidence passage still "contains the evidence" when it lies inside
# the passage: at least this share of the quote's tokens in the passage, and at least QUOTE_MIN_TOKENS.
QUOTE_INSIDE_COVERAGE = 0.8
QUOTE_MIN_TOKENS = 5
# A sentence marked [n] is supported by quote n when this share of its tokens occurs in the quote.
SUPPORT_OVERLAP = 0.5

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_MARKER = re.compile(r"\[(\d{1,3})\]")
_SENTENCE_END = re.compile(r"(?:[.!?](?=\s)|\n)")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text).strip().lower()


@lru_cache(maxsize=65536)
def tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(normalize(text)))


def collapse_ws(text: str) -> str:
    """Whitespace-collapsed, case-kept: the form evidence must occur in its source file."""
    return re.sub(r"\s+", " ", text or "").strip()


@lru_cache(maxsize=131072)
def coverage(passage: str, text: str, min_block: int = MIN_BLOCK) -> float:
    """Share of ``passage`` tokens found in ``text`` inside common runs of >= min_block tokens."""
    p = tokens(passage)
    if not p:
        return 0.0
    t = tokens(text)
    if not t:
        return 0.0
    need = min(min_block, len(p))
    matcher = SequenceMatcher(None, p, t, autojunk=False)
    covered = sum(b.size for b in matcher.get_matching_blocks() if b.size >= need)
    return covered / len(p)


def contains_passage(text: str, passage: str, threshold: float = HIT_COVERAGE) -> bool:
    """The hit rule: ``text`` (a retrieved context) contains most of ``passage``."""
    return coverage(passage, text) >= threshold


def quote_matches_evidence(quote: str, passage: str) -> bool:
    """A cited quote contains the evidence, or is a long-enough piece of it."""
    if contains_passage(quote, passage):
        return True
    q = tokens(quote)
    return len(q) >= QUOTE_MIN_TOKENS and coverage(quote, passage) >= QUOTE_INSIDE_COVERAGE


# ---------------------------------------------------------------- ranking


def passage_ranks(contexts: Sequence[str], passages: Sequence[str]) -> list[int | None]:
    """For each passage, the 1-based rank of the first context that contains it (None: nowhere)."""
    ranks: list[int | None] = []
    for p in passages:
        rank = None
        for i, c in enumerate(contexts, start=1):
            if contains_passage(c, p):
                rank = i
                break
        ranks.append(rank)
    return ranks


def first_relevant_rank(contexts: Sequence[str], passages: Sequence[str]) -> int | None:
    found = [r for r in passage_ranks(contexts, passages) if r is not None]
    return min(found) if found else None


def hit_at_k(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(ranks: Sequence[int | None], k: int = 5) -> float:
    """Passage-level nDCG: every evidence passage is one relevant item with gain 1, credited at the
    rank of the first context containing it; the ideal puts the n passages at ranks 1..n. One
    context may hold several passages, so the ratio is capped at 1."""
    n = len(ranks)
    if n == 0:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r is not None and r <= k)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(n, k) + 1))
    return min(1.0, dcg / idcg)


# ---------------------------------------------------------------- answers


def _fact_pattern(alternative: str) -> re.Pattern[str]:
    alt = normalize(alternative)
    body = re.escape(alt).replace(r"\ ", r"\s+").replace(r"\-", r"[-\u2010-\u2015 ]?")
    left = r"(?<![^\W_])" if alt[:1].isalnum() else ""
    right = r"(?!\d)" if alt[-1:].isdigit() else ""
    return re.compile(left + body + right)


def fact_present(text: str, alternatives: Iterable[str]) -> bool:
    """A key-fact group is present when any alternative occurs in the text, case-insensitively, at
    the start of a word (so "5" does not match "15", but "stabiliz" matches "stabilize"), and not
    followed by a digit when it ends in one ("5" does not match "50")."""
    norm = normalize(text)
    return any(_fact_pattern(a).search(norm) for a in alternatives if a.strip())


def key_fact_hits(text: str, groups: Sequence[Sequence[str]]) -> list[bool]:
    return [fact_present(text, g) for g in groups]


def marked_sentences(text: str) -> list[tuple[int, str]]:
    """Every ``[n]`` marker in an answer with the sentence it is attached to.

    The sentence is the text before the marker back to the previous sentence end, line break or
    marker; markers that follow one another ("... [1][2]") share the same sentence. A marker that
    opens a line refers to the text after it up to the next sentence end."""
    out: list[tuple[int, str]] = []
    markers = list(_MARKER.finditer(text or ""))
    prev_end = 0
    last_sentence = ""
    for m in markers:
        between = text[prev_end:m.start()]
        if between.strip() == "" and out:
            sentence = last_sentence
        else:
            prefix = text[:m.start()].rstrip()
            prefix_wo_end = prefix[:-1] if prefix[-1:] in ".!?" else prefix
            cuts = [c.end() for c in _SENTENCE_END.finditer(prefix_wo_end)]
            start = max([prev_end] + cuts)
            sentence = prefix[start:].strip()
            if not tokens(sentence):  # marker at the start of a line or sentence: look forward
                rest = text[m.end():]
                nxt = _SENTENCE_END.search(rest)
                sentence = _MARKER.sub("", rest[: nxt.end() if nxt else len(rest)]).strip()
        last_sentence = sentence
        out.append((int(m.group(1)), sentence))
        prev_end = m.end()
    return out


def token_overlap(sentence: str, quote: str) -> float:
    """Share of the sentence's tokens (with multiplicity) that occur in the quote."""
    s = tokens(sentence)
    if not s:
        return 0.0
    pool: dict[str, int] = {}
    for t in tokens(quote):
        pool[t] = pool.get(t, 0) + 1
    hit = 0
    for t in s:
        if pool.get(t, 0) > 0:
            pool[t] -= 1
            hit += 1
    return hit / len(s)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), without numpy."""
    vals = sorted(values)
    if not vals:
        return None
    pos = (len(vals) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)
