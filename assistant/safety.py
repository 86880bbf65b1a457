"""Red-flag safety screen: every message is checked before retrieval.

Two detectors, one decision:

* a **lexicon** of red-flag concepts (``data/red_flags.yaml``): synonym patterns over normalised
  text, each mention scoped NegEx/ConText-style - negated ("no numbness"), historical or resolved
  ("years ago", "cleared up", "A&E checked it, all clear"), another person ("my mum has"),
  hypothetical or a question about information ("what if", "which symptoms would mean"), or a
  figure of speech / benign cause ("mind-numbing", "bum went numb on the bench");
* a **semantic** detector: the message's clauses are embedded with the shared model and compared
  with hand-written exemplar phrases of every concept; a clause above the threshold raises the
  concept unless the same scoping says it is negated, past, someone else's or hypothetical.

Either detector can raise the level; every decision carries its reasons (concept id + the
person's own words).  A red flag in an earlier *user* turn keeps the conversation flagged until a
later user turn says it has been checked.  All medical vocabulary lives in the YAML file.
"""

from __future__ import annotations

import bisect
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .embeddings import Embedder
from .results import SafetyReason, SafetyResult, Turn
from .lru import LRU
from .models import Thresholds
from .settings import DATA_DIR, load_yaml

RULES_PATH = DATA_DIR / "red_flags.yaml"
LEVEL_RANK = {"none": 0, "urgent": 1, "emergency": 2}

INFO_REQUEST_NOTE = (
    "If you or someone else has any of these symptoms, please don't wait: see a doctor (GP) within a day "
    "or two, or go to A&E / call the emergency number (999, 911 or 112) straight away for numbness between "
    "the legs, new bladder or bowel problems, sudden leg weakness, chest pain or breathlessness."
)

# Straightened punctuation; everything else is NFKC-normalised and lower-cased.
_CHAR_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2009": " ", "\u200b": "",
}
_WORD = re.compile(r"\w+")
# a first-person subject: ends the reach of a question about a term ("what is going on, i cant pee")
_SELF_REPORT = re.compile(r"\b(?:i|im|ive|id|me)\b")
_ALPHA_TOKEN = re.compile(r"[a-z]+")
_STRONG_BREAK = re.compile(r"(?<!\d)[.!?;:]+(?!\d)|[.!?;:]+(?=\s|$)|\n+")

# Statuses a lexicon/semantic mention can end up with.
OWN, NEGATED, HISTORICAL, RESOLVED, OTHER, HYPOTHETICAL, BENIGN, MISSING_CONTEXT = (
    "own", "negated", "historical", "resolved", "other", "hypothetical", "benign", "missing_context",
)


# ---------------------------------------------------------------------------------------------
# text normalisation with an offset map back to the person's own words


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


# ---------------------------------------------------------------------------------------------
# rules


def _compile(patterns: Sequence[str], macros: dict[str, str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    expanded = [_expand(p, macros) for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in expanded))


def _expand(pattern: str, macros: dict[str, str]) -> str:
    for _ in range(4):  # macros may use macros
        new = re.sub(r"%([A-Z_]+)%", lambda m: macros[m.group(1)], pattern)
        if new == pattern:
            break
        pattern = new
    return pattern


@dataclass
class Concept:
    id: str
    level: str
    comment: str
    label: str
    pattern: re.Pattern[str] | None
    benign: re.Pattern[str] | None
    unless: re.Pattern[str] | None
    requires: tuple[str, ...]
    history_is_risk: bool
    exemplars: tuple[str, ...]
    quote_context: str | None = None


@dataclass
class Rules:
    concepts: list[Concept]
    contexts: dict[str, re.Pattern[str]]
    idioms: re.Pattern[str] | None
    terminators: re.Pattern[str]
    list_continuation: re.Pattern[str]
    pseudo_negation: re.Pattern[str]
    negation_pre: re.Pattern[str]
    negation_post: re.Pattern[str]
    normal_finding: re.Pattern[str]
    negation_window: int
    post_negation_window: int
    historical: re.Pattern[str]
    resolution: re.Pattern[str]
    clearance: re.Pattern[str]
    clearance_negators: re.Pattern[str]
    experiencer: re.Pattern[str]
    first_person: re.Pattern[str]
    hypothetical: re.Pattern[str]
    definitional: re.Pattern[str]
    affirmation: re.Pattern[str]
    info_request: re.Pattern[str]
    fuzzy_vocabulary: tuple[str, ...]
    fuzzy_protected: frozenset[str]
    benign_anchors: tuple[str, ...]
    semantic_min_words: int
    semantic_max_clauses: int


def load_rules(path: Path | None = None) -> Rules:
    data = load_yaml(Path(path or RULES_PATH))
    macros = {k: str(v) for k, v in (data.get("macros") or {}).items()}
    sc = data["scoping"]

    def comp(key_or_list: Any) -> re.Pattern[str]:
        pats = key_or_list if isinstance(key_or_list, list) else [key_or_list]
        compiled = _compile([str(p) for p in pats], macros)
        assert compiled is not None
        return compiled

    concepts = []
    seen = set()
    for c in data["concepts"]:
        cid = str(c["id"])
        if cid in seen:
            raise ValueError(f"duplicate concept id {cid!r} in {path or RULES_PATH}")
        seen.add(cid)
        level = str(c["level"])
        if level not in ("urgent", "emergency"):
            raise ValueError(f"concept {cid!r}: level must be urgent or emergency")
        concepts.append(
            Concept(
                id=cid,
                level=level,
                comment=str(c.get("comment", "")),
                label=str(c.get("label", cid.replace("_", " "))),
                pattern=_compile(c.get("patterns") or [], macros),
                benign=_compile(c.get("benign") or [], macros),
                unless=_compile(c.get("unless") or [], macros),
                requires=tuple(c.get("requires") or ()),
                history_is_risk=bool(c.get("history_is_risk", False)),
                exemplars=tuple(str(e) for e in (c.get("exemplars") or ())),
                quote_context=c.get("quote_context"),
            )
        )
    contexts = {name: comp(pats) for name, pats in (data.get("contexts") or {}).items()}
    for c in concepts:
        for r in c.requires:
            if r not in contexts:
                raise ValueError(f"concept {c.id!r} requires unknown context {r!r}")
    sem = data.get("semantic") or {}
    return Rules(
        concepts=concepts,
        contexts=contexts,
        idioms=_compile(data.get("idioms") or [], macros),
        terminators=comp(sc["terminators"]),
        list_continuation=comp(sc["list_continuation"]),
        pseudo_negation=comp(sc["pseudo_negation"]),
        negation_pre=comp(sc["negation_pre"]),
        negation_post=comp(sc["negation_post"]),
        normal_finding=comp(sc["normal_finding"]),
        negation_window=int(sc.get("negation_window", 6)),
        post_negation_window=int(sc.get("post_negation_window", 4)),
        historical=comp(sc["historical"]),
        resolution=comp(list(sc["resolution"]) + list(sc["clearance"])),
        clearance=comp(sc["clearance"]),
        clearance_negators=comp(sc["clearance_negators"]),
        experiencer=comp(sc["experiencer"]),
        first_person=comp(sc["first_person"]),
        hypothetical=comp(sc["hypothetical"]),
        definitional=comp(sc["definitional"]),
        affirmation=comp(sc["affirmation"]),
        info_request=comp(sc["info_request"]),
        fuzzy_vocabulary=tuple(str(w) for w in data.get("fuzzy_vocabulary") or ()),
        fuzzy_protected=frozenset(str(w) for w in data.get("fuzzy_protected") or ()),
        benign_anchors=tuple(str(a) for a in sem.get("benign_anchors") or ()),
        semantic_min_words=int(sem.get("min_words", 3)),
        semantic_max_clauses=int(sem.get("max_clauses", 16)),
    )


# Plain-language labels for the reply, filled from the rules (default file loaded lazily).
_LABELS: dict[str, str] = {}
_LABELS_LOCK = threading.Lock()


def _label(category: str) -> str:
    with _LABELS_LOCK:
        if not _LABELS:
            try:
                _LABELS.update({c.id: c.label for c in load_rules().concepts})
            except Exception:  # pragma: no cover - the reply must never fail
                pass
        return _LABELS.get(category, category.replace("_", " "))


# ---------------------------------------------------------------------------------------------
# one analysed message


@dataclass
class _Span:
    start: int
    end: int


@dataclass
class Analysis:
    original: str
    text: str  # normalised, typos fixed, idioms blanked
    index: list[int]  # text position -> original position
    clause_starts: list[int]
    clause_ends: list[int]
    clause_sentence: list[int]
    sentence_starts: list[int]
    sentence_ends: list[int]
    triggers: dict[str, list[_Span]]
    units: list[tuple[int, int]]  # clause spans the semantic detector embeds
    unit_texts: list[str]
    contexts_present: dict[str, bool] = field(default_factory=dict)

    def clause_of(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.clause_starts, pos) - 1)

    def sentence_of(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.sentence_starts, pos) - 1)

    def words(self, start: int, end: int) -> str:
        """The person's own words for text[start:end]."""
        if start >= end or not self.index:
            return ""
        a = self.index[start]
        b = self.index[min(end, len(self.index)) - 1] + 1
        return " ".join(self.original[a:b].split())


@dataclass
class _Mention:
    concept: Concept
    start: int
    end: int
    status: str
    detector: str
    score: float = 1.0


# ---------------------------------------------------------------------------------------------
# the screen


class SafetyScreen:
    """Screens one message (and the conversation so far) for red flags."""

    def __init__(self, embedder: Embedder, rules_path: Path | None = None, thresholds: Thresholds | None = None) -> None:
        self.embedder = embedder
        self.rules = load_rules(rules_path)
        with _LABELS_LOCK:
            _LABELS.update({c.id: c.label for c in self.rules.concepts})
        self._by_id = {c.id: c for c in self.rules.concepts}
        self._known_words = self._model_vocabulary() | set(self.rules.fuzzy_vocabulary) | set(self.rules.fuzzy_protected)
        self._fuzzy_cache: dict[str, str | None] = {}
        self._analysis_cache: LRU[str, Analysis] = LRU(256)
        self._turn_cache: LRU[str, tuple[SafetyResult, bool]] = LRU(1024)
        # exemplar matrix, one block of rows per concept
        owners: list[int] = []
        phrases: list[str] = []
        self._sem_concepts = [c for c in self.rules.concepts if c.exemplars]
        for i, c in enumerate(self._sem_concepts):
            for e in c.exemplars:
                owners.append(i)
                phrases.append(self._prepare(e).text)
        # benign anchors form one extra block at the end
        anchors = [self._prepare(t).text for t in self.rules.benign_anchors]
        n_concepts = len(self._sem_concepts)
        owners += [n_concepts] * len(anchors)
        phrases += anchors
        if phrases:
            self._exemplars = np.ascontiguousarray(self.embedder.encode_uncached(phrases).T)  # (dim, n)
        else:
            self._exemplars = np.zeros((self.embedder.dim, 0), dtype=np.float32)
        owners_arr = np.asarray(owners, dtype=np.int64)
        self._has_anchors = bool(anchors)
        self._block_starts = np.searchsorted(owners_arr, np.arange(n_concepts + (1 if anchors else 0)))
        self.set_thresholds(thresholds or Thresholds.load(embedder.spec))

    def set_thresholds(self, thresholds: Thresholds) -> None:
        """The similarity cut-offs measured for the embedding model (``data/model_thresholds.toml``)."""
        self.thresholds = thresholds
        self._concept_cutoffs = np.asarray(
            [thresholds.safety_concepts.get(c.id, thresholds.safety_semantic) for c in self._sem_concepts],
            dtype=np.float32,
        )
        self._turn_cache.clear()

    # ------------------------------------------------------------------ public

    def sentences(self, message: str) -> list[str]:
        """The clause strings the semantic detector embeds for ``message`` (normalised, idioms removed)."""
        return list(self._analyse(message).unit_texts)

    def assess(self, message: str, history: Sequence[Turn] = ()) -> SafetyResult:
        own = self._assess_single(message)
        carried = self._carried_from_history(history)
        if not carried or self._is_clearance(message):
            return own
        level = own.level
        reasons = list(own.reasons)
        have = {r.category for r in reasons}
        for r in carried:
            if r.category in have:
                continue
            reasons.append(r)
            have.add(r.category)
            if LEVEL_RANK[r.level] > LEVEL_RANK[level]:
                level = r.level
        return SafetyResult(level=level, reasons=tuple(reasons), info_request=False)

    # ------------------------------------------------------------------ conversation

    def _carried_from_history(self, history: Sequence[Turn]) -> list[SafetyReason]:
        carried: dict[str, SafetyReason] = {}
        for turn in history or ():
            turn = Turn.coerce(turn) if not isinstance(turn, Turn) else turn
            if turn is None or turn.role != "user" or not turn.content.strip():
                continue
            result, cleared = self._cached_single(turn.content)
            if cleared:
                carried.clear()
            for r in result.reasons:
                carried.setdefault(
                    r.category, SafetyReason(category=r.category, level=r.level, matched=r.matched, detector="history")
                )
        return list(carried.values())

    def _cached_single(self, text: str) -> tuple[SafetyResult, bool]:
        """(screen result, says-it-was-checked) of an earlier turn; earlier turns recur on every call."""
        return self._turn_cache.get_or_compute(text, lambda: (self._assess_single(text), self._is_clearance(text)))

    def _is_clearance(self, message: str) -> bool:
        a = self._analyse(message)
        return bool(a.triggers["clearance"])

    # ------------------------------------------------------------------ one message

    def _assess_single(self, message: str) -> SafetyResult:
        a = self._analyse(message)
        if not a.text:
            return SafetyResult()
        mentions = self._lexicon(a)
        mentions += self._semantic(a, [m for m in mentions if self._raises(m)])
        level = "none"
        reasons: list[SafetyReason] = []
        seen: set[str] = set()
        suppressed_info = False
        taken: list[tuple[int, int]] = []  # spans already explained by a stronger concept
        for m in sorted(mentions, key=lambda m: (-LEVEL_RANK[m.concept.level], m.detector != "lexicon", m.start, m.start - m.end)):
            if not self._raises(m):
                if m.status in (HYPOTHETICAL, OTHER):
                    suppressed_info = True
                continue
            if m.concept.id in seen:
                continue
            if m.detector == "lexicon" and any(s < m.end and m.start < e for s, e in taken):
                continue  # the same words already raised a concept at the same or a higher level
            seen.add(m.concept.id)
            if m.detector == "lexicon":
                taken.append((m.start, m.end))
            qs, qe = self._quote_span(a, m)
            reasons.append(
                SafetyReason(
                    category=m.concept.id,
                    level=m.concept.level,  # type: ignore[arg-type]
                    matched=a.words(qs, qe) or a.original.strip()[:80],
                    detector=m.detector,  # type: ignore[arg-type]
                )
            )
            if LEVEL_RANK[m.concept.level] > LEVEL_RANK[level]:
                level = m.concept.level
        info = level == "none" and (bool(a.triggers["info_request"]) or suppressed_info)
        return SafetyResult(level=level, reasons=tuple(reasons), info_request=info)  # type: ignore[arg-type]

    def _quote_span(self, a: Analysis, m: _Mention) -> tuple[int, int]:
        """Widen a quote to the words of the concept's `quote_context` in the same sentence, if any."""
        name = m.concept.quote_context
        if m.detector != "lexicon" or not name or name not in self.rules.contexts:
            return m.start, m.end
        si = a.sentence_of(m.start)
        ss, se = a.sentence_starts[si], a.sentence_ends[si]
        for c in self.rules.contexts[name].finditer(a.text, ss, se):
            s, e = min(c.start(), m.start), max(c.end(), m.end)
            if len(_WORD.findall(a.text, s, e)) <= 16:
                return s, e
        return m.start, m.end

    @staticmethod
    def _raises(m: _Mention) -> bool:
        if m.status == OWN:
            return True
        # someone describing another person's emergency *now* (a carer) must still be told to get help
        return m.status == OTHER and m.concept.level == "emergency"

    def _lexicon(self, a: Analysis) -> list[_Mention]:
        out: list[_Mention] = []
        for c in self.rules.concepts:
            if c.pattern is None:
                continue
            best: _Mention | None = None
            for m in c.pattern.finditer(a.text):
                s, e = m.span()
                if e <= s:
                    continue
                status = self._status(a, c, s, e, inside=False)
                mention = _Mention(c, s, e, status, "lexicon")
                if self._raises(mention):
                    best = mention
                    break
                if best is None or (status in (HYPOTHETICAL, OTHER) and best.status not in (HYPOTHETICAL, OTHER)):
                    best = mention
            if best is not None:
                out.append(best)
        return out

    def _semantic(self, a: Analysis, lexicon_hits: list[_Mention]) -> list[_Mention]:
        """Clauses near a concept's exemplars. A clause whose words the lexicon already flagged only
        adds a concept of a *higher* level (no second-guessing an explained clause with a weaker one)."""
        if not a.unit_texts or self._exemplars.shape[1] == 0:
            return []
        vecs = self.embedder.encode(a.unit_texts)  # cached by the Embedder
        sims = vecs @ self._exemplars  # (units, exemplars)
        blocks = np.maximum.reduceat(sims, self._block_starts, axis=1)  # (units, concepts [+ anchors])
        n = len(self._sem_concepts)
        per_concept = blocks[:, :n]
        floor = blocks[:, n] + self.thresholds.safety_margin if self._has_anchors else np.full(len(blocks), -1.0)
        # one concept per clause: the nearest, if it clears its threshold and the ordinary anchors
        best = per_concept.argmax(axis=1)
        score = per_concept[np.arange(len(best)), best]
        ok = (score >= self._concept_cutoffs[best]) & (score >= floor)
        out: list[_Mention] = []
        done: set[str] = {m.concept.id for m in lexicon_hits}
        for ui in sorted(np.flatnonzero(ok).tolist(), key=lambda u: -float(score[u])):
            ci = int(best[ui])
            c = self._sem_concepts[ci]
            if c.id in done:
                continue
            s, e = a.units[ui]
            explained = max(
                (LEVEL_RANK[m.concept.level] for m in lexicon_hits if m.start < e and s < m.end), default=0
            )
            if explained >= LEVEL_RANK[c.level]:
                continue
            if explained and float(score[ui]) < self.thresholds.safety_escalation:
                continue
            status = self._status(a, c, s, e, inside=True)
            out.append(_Mention(c, s, e, status, "semantic", float(score[ui])))
            if self._raises(out[-1]):
                done.add(c.id)
        return out

    # ------------------------------------------------------------------ scoping

    def _status(self, a: Analysis, c: Concept, s: int, e: int, inside: bool) -> str:
        ci = a.clause_of(s)
        cs, ce = a.clause_starts[ci], a.clause_ends[ci]
        si = a.sentence_of(s)
        ss, se = a.sentence_starts[si], a.sentence_ends[si]
        t = a.triggers
        affirmed = any(cs <= x.start < ce for x in t["affirmation"])

        # negation: a trigger shortly before the mention (or, for a whole clause, inside it), or after it
        if not affirmed:
            for x in t["negation_pre"]:
                if inside and s <= x.start < e:
                    return NEGATED  # a whole clause (semantic detector): any negation in it
                if x.start < cs or x.start >= ce:
                    continue
                if x.end <= s and len(_WORD.findall(a.text, x.end, s)) <= self.rules.negation_window:
                    return NEGATED
            if inside and any(s <= x.start < e for x in t["normal_finding"]):
                return NEGATED
            for x in t["negation_post"]:
                if e <= x.start < ce and len(_WORD.findall(a.text, e, x.start)) <= self.rules.post_negation_window:
                    return NEGATED

        # the past, and things already resolved or checked
        if not c.history_is_risk:
            if any(cs <= x.start < ce for x in t["historical"]):
                return HISTORICAL
            checks = {(x.start, x.end) for x in t["clearance"]}
            for x in t["resolution"]:
                xi = a.clause_of(x.start)
                if xi == ci:
                    return RESOLVED
                # reaching back to another clause: not with an old check ("the GP said it was fine
                # last year") and, across a sentence break, only an explicit check by a professional
                xcs, xce = a.clause_starts[xi], a.clause_ends[xi]
                if any(xcs <= h.start < xce for h in t["historical"]):
                    continue
                xs = a.sentence_of(x.start)
                if (xs == si and x.start >= e) or (xs == si + 1 and (x.start, x.end) in checks):
                    return RESOLVED

        # hypothetical / asking for information
        if not affirmed:
            for x in t["hypothetical"]:
                if cs <= x.start < ce and (x.start < s or (inside and x.start < e)):
                    return HYPOTHETICAL
            for x in t["definitional"]:
                if cs <= x.start < ce and (x.start < s or (inside and x.start < e)):
                    if not _SELF_REPORT.search(a.text, x.end, e if inside else s):
                        return HYPOTHETICAL

        # figure of speech or benign cause for this concept, within the sentence
        if c.benign is not None and c.benign.search(a.text, ss, se):
            if c.unless is None or not c.unless.search(a.text, ss, se):
                return BENIGN

        # context this concept requires elsewhere in the message
        for req in c.requires:
            if not self._context_present(a, req):
                return MISSING_CONTEXT

        # another person (checked last: an emergency in someone else still raises the level)
        if not self.rules.first_person.search(a.text, s, e):
            for x in t["experiencer"]:
                if cs <= x.start < ce and x.end <= (e if inside else s):
                    if not self.rules.first_person.search(a.text, x.end, s if not inside else e):
                        return OTHER
        return OWN

    def _context_present(self, a: Analysis, name: str) -> bool:
        hit = a.contexts_present.get(name)
        if hit is not None:
            return hit
        found = False
        for m in self.rules.contexts[name].finditer(a.text):
            s, e = m.span()
            ci = a.clause_of(s)
            cs = a.clause_starts[ci]
            negated = any(
                cs <= x.start and x.end <= s and len(_WORD.findall(a.text, x.end, s)) <= self.rules.negation_window
                for x in a.triggers["negation_pre"]
            )
            if not negated:
                found = True
                break
        a.contexts_present[name] = found
        return found

    # ------------------------------------------------------------------ analysis

    def _analyse(self, message: str) -> Analysis:
        return self._analysis_cache.get_or_compute(message, lambda: self._prepare(message))

    def _prepare(self, message: str) -> Analysis:
        text, index = normalise(message or "")
        text, index = self._fix_typos(text, index)
        if self.rules.idioms is not None:
            text = self.rules.idioms.sub(lambda m: " " * (m.end() - m.start()), text)
        r = self.rules

        # sentences, then clauses inside each sentence
        sentence_spans: list[tuple[int, int]] = []
        pos = 0
        for m in _STRONG_BREAK.finditer(text):
            if m.start() > pos:
                sentence_spans.append((pos, m.start()))
            pos = m.end()
        if pos < len(text):
            sentence_spans.append((pos, len(text)))
        sentence_spans = [(s, e) for s, e in sentence_spans if text[s:e].strip()] or [(0, len(text))]

        clause_starts: list[int] = []
        clause_ends: list[int] = []
        clause_sentence: list[int] = []
        for si, (ss, se) in enumerate(sentence_spans):
            cuts: list[tuple[int, int]] = []
            for m in r.terminators.finditer(text, ss, se):
                cuts.append((m.start(), m.start()))  # a word terminator starts the next clause
            commas = [m.start() for m in re.finditer(",", text[ss:se])]
            for k, cpos in enumerate(commas):
                cpos += ss
                nxt = commas[k + 1] + ss if k + 1 < len(commas) else se
                following = text[cpos + 1 : nxt]
                if not r.list_continuation.search(following):
                    cuts.append((cpos, cpos + 1))
            cuts.sort()
            start = ss
            for cs, ce in cuts:
                if cs > start:
                    clause_starts.append(start)
                    clause_ends.append(cs)
                    clause_sentence.append(si)
                start = max(start, ce)
            if start < se:
                clause_starts.append(start)
                clause_ends.append(se)
                clause_sentence.append(si)
        if not clause_starts:
            clause_starts, clause_ends, clause_sentence = [0], [len(text)], [0]

        triggers = {
            name: [_Span(*m.span()) for m in pat.finditer(text)]
            for name, pat in (
                ("negation_post", r.negation_post),
                ("normal_finding", r.normal_finding),
                ("historical", r.historical),
                ("hypothetical", r.hypothetical),
                ("definitional", r.definitional),
                ("experiencer", r.experiencer),
                ("affirmation", r.affirmation),
                ("info_request", r.info_request),
            )
        }
        pseudo = [m.span() for m in r.pseudo_negation.finditer(text)]
        triggers["negation_pre"] = [
            _Span(*m.span())
            for m in r.negation_pre.finditer(text)
            if not any(ps <= m.start() < pe for ps, pe in pseudo)
        ]
        for name, pat in (("resolution", r.resolution), ("clearance", r.clearance)):
            spans = []
            for m in pat.finditer(text):
                if name == "clearance" or _looks_like_clearance(m.group(0), r):
                    if r.clearance_negators.search(m.group(0)) or _negated_before(text, m.start(), triggers["negation_pre"], clause_starts, r):
                        continue
                spans.append(_Span(*m.span()))
            triggers[name] = spans

        # semantic units: clauses, short ones joined to their neighbour within the sentence
        units: list[tuple[int, int]] = []
        for cs, ce, si in zip(clause_starts, clause_ends, clause_sentence):
            piece = text[cs:ce]
            n = len(_WORD.findall(piece))
            if n == 0:
                continue
            if units and n < r.semantic_min_words and clause_sentence[clause_starts.index(units[-1][0])] == si:
                units[-1] = (units[-1][0], ce)
            elif (
                units
                and len(_WORD.findall(text, units[-1][0], units[-1][1])) < r.semantic_min_words
                and clause_sentence[clause_starts.index(units[-1][0])] == si
            ):
                units[-1] = (units[-1][0], ce)
            else:
                units.append((cs, ce))
        units = units[: r.semantic_max_clauses]
        unit_texts = []
        kept = []
        for s, e in units:
            t = " ".join(re.sub(r"[^\w%&/.\-°]+", " ", text[s:e]).split())
            if len(_WORD.findall(t)) >= 2:
                kept.append((s, e))
                unit_texts.append(t)

        return Analysis(
            original=message or "",
            text=text,
            index=index,
            clause_starts=clause_starts,
            clause_ends=clause_ends,
            clause_sentence=clause_sentence,
            sentence_starts=[s for s, _ in sentence_spans],
            sentence_ends=[e for _, e in sentence_spans],
            triggers=triggers,
            units=kept,
            unit_texts=unit_texts,
        )

    # ------------------------------------------------------------------ typos

    def _model_vocabulary(self) -> set[str]:
        try:
            vocab = self.embedder.tokenizer.get_vocab()
        except Exception:  # pragma: no cover - any tokenizer without a vocabulary
            return set()
        return {w for w in vocab if w.isalpha() and w.islower()}

    def _fix_typos(self, text: str, index: list[int]) -> tuple[str, list[int]]:
        vocab = self.rules.fuzzy_vocabulary
        if not vocab:
            return text, index
        pieces: list[str] = []
        new_index: list[int] = []
        pos = 0
        changed = False
        for m in _ALPHA_TOKEN.finditer(text):
            tok = m.group(0)
            if len(tok) < 5 or tok in self._known_words:
                continue
            fix = self._fuzzy_cache.get(tok, "")
            if fix == "":
                limit = 2 if len(tok) >= 9 else 1
                best = process.extractOne(tok, vocab, scorer=Levenshtein.distance, score_cutoff=limit)
                fix = best[0] if best else None
                if len(self._fuzzy_cache) < 20000:
                    self._fuzzy_cache[tok] = fix
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


def _looks_like_clearance(matched: str, rules: Rules) -> bool:
    return bool(rules.clearance.search(matched))


def _negated_before(text: str, start: int, negs: list[_Span], clause_starts: list[int], rules: Rules) -> bool:
    ci = max(0, bisect.bisect_right(clause_starts, start) - 1)
    cs = clause_starts[ci]
    before = " ".join(_WORD.findall(text, cs, start)[-3:])
    if rules.clearance_negators.search(before):
        return True
    return any(
        cs <= x.start and x.end <= start and len(_WORD.findall(text, x.end, start)) <= 3 for x in negs
    )


# ---------------------------------------------------------------------------------------------
# the reply


_EMERGENCY_HEAD = (
    "**Please get medical help now: go to A&E (an emergency department) or call the emergency number "
    "\u2014 999 in the UK, 911 in the US, 112 in Europe.** Please don't wait to see whether it settles."
)
_EMERGENCY_TAIL = (
    "It may turn out to be something simple, but these signs need to be checked in person today. "
    "I'm sorry you're dealing with this \u2014 getting seen quickly is the right thing to do."
)
_URGENT_HEAD = (
    "**Please see a doctor in the next day or two.** Book an appointment with your GP (family doctor), "
    "or an urgent care or out-of-hours service if you can't get one, and hold off on the plan you asked "
    "about until you've been checked."
)
_URGENT_TAIL = (
    "This isn't an emergency on its own, but a doctor should look at it soon. If things change quickly \u2014 "
    "new numbness between your legs or around your bottom, trouble peeing or controlling your bladder or "
    "bowels, or a leg becoming weak \u2014 go to A&E or call 999 / 911 / 112 straight away."
)


def _quote(words: str, limit: int = 90) -> str:
    words = " ".join(str(words).split())
    words = re.sub(r"[*_`#<>\[\]|]", "", words)
    if len(words) > limit:
        words = words[: limit - 1].rsplit(" ", 1)[0] + "\u2026"
    return f"\u201c{words}\u201d"


def red_flag_reply(result: SafetyResult) -> str:
    """Markdown for a kind='red_flag' reply: what to do and how soon, then the words that raised it.

    No walking or exercise advice; the caller appends cited warning-sign passages from the corpus.
    """
    emergency = result.level == "emergency"
    parts = [_EMERGENCY_HEAD if emergency else _URGENT_HEAD]
    lines = []
    seen = set()
    for r in result.reasons:
        key = (r.category, r.matched)
        if key in seen:
            continue
        seen.add(key)
        when = "earlier, you mentioned " if r.detector == "history" else "you mentioned "
        lines.append(f"- {when}{_quote(r.matched)} \u2014 {_label(r.category)}")
    if lines:
        parts.append("What raised the concern:\n" + "\n".join(lines))
    parts.append(_EMERGENCY_TAIL if emergency else _URGENT_TAIL)
    return "\n\n".join(parts)


__all__ = ["INFO_REQUEST_NOTE", "SafetyScreen", "load_rules", "normalise", "red_flag_reply"]
