"""The screen: rules and the learned detector combined, over the message and the conversation.

The higher tier wins, so a red flag either detector sees goes to a professional. Every decision
carries its reasons (concept id + the person's own words). A red flag in an earlier *user* turn
keeps the conversation flagged until a later user turn says it has been checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..embeddings import Embedder
from ..lru import LRU
from ..models import Thresholds
from ..results import SafetyReason, SafetyResult, Turn
from .analysis import Analyser, Analysis
from .detector import NO_SIGNAL, Detector
from .matcher import ASIDE, HYPOTHETICAL, Mention, RuleMatcher
from .normalise import TypoFixer
from .rules import LEVEL_RANK, load_rules, register_labels


class SafetyScreen:
    """Screens one message (and the conversation so far) for red flags."""

    def __init__(self, embedder: Embedder, rules_path: Path | None = None, thresholds: Thresholds | None = None) -> None:
        self.embedder = embedder
        self.rules = load_rules(rules_path)
        register_labels(self.rules)
        typos = TypoFixer(self.rules.fuzzy_vocabulary, self.rules.fuzzy_protected, _model_vocabulary(embedder))
        self.analyser = Analyser(self.rules, typos)
        self.matcher = RuleMatcher(self.rules)
        self._analysis_cache: LRU[str, Analysis] = LRU(256)
        self._turn_cache: LRU[str, tuple[SafetyResult, bool]] = LRU(1024)
        self.detector = Detector(embedder, self.rules, self.matcher, self.analyser, rules_text=self.rules.source)
        # which detectors decide; the report scores each alone and both combined
        self.parts: frozenset[str] = frozenset({"rules", "detector"})
        self.set_thresholds(thresholds or Thresholds.load(embedder.spec))

    def keep_analyses(self, n: int) -> None:
        """Keep up to ``n`` analysed messages (benchmarks re-score the same messages many times)."""
        self._analysis_cache = LRU(max(256, n))

    def set_thresholds(self, thresholds: Thresholds) -> None:
        """The cut-offs measured for the embedding model (``data/model_thresholds.toml``)."""
        self.thresholds = thresholds
        self.detector.set_thresholds(thresholds)
        self._turn_cache.clear()

    # ------------------------------------------------------------------ public

    def sentences(self, message: str) -> list[str]:
        """The texts the detector embeds for ``message``: its clauses, its sentences of several
        clauses and, with more than one clause, the whole message (normalised, idioms removed), so
        the caller can embed them in one batch."""
        return self.analyse(message).scored()[0]

    def analyse(self, message: str) -> Analysis:
        return self._analysis_cache.get_or_compute(message, lambda: self.analyser.prepare(message))

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
        return SafetyResult(level=level, reasons=tuple(reasons), info_request=False, unsure=own.unsure and level != "emergency")

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
        return bool(self.analyse(message).triggers["clearance"])

    # ------------------------------------------------------------------ one message

    def _assess_single(self, message: str) -> SafetyResult:
        a = self.analyse(message)
        if not a.text:
            return SafetyResult()
        if a.lexicon is None:
            a.lexicon = self.matcher.mentions(a)
        mentions = list(a.lexicon) if "rules" in self.parts else []
        signal = self.detector.signal(a, [m for m in mentions if m.raises]) if "detector" in self.parts else NO_SIGNAL
        mentions += signal.mentions
        level = "none"
        reasons: list[SafetyReason] = []
        seen: set[str] = set()
        suppressed_info = False
        taken: list[tuple[int, int]] = []  # spans already explained by a stronger concept
        for m in sorted(mentions, key=_priority):
            if not m.raises:
                if m.status in (HYPOTHETICAL, ASIDE):
                    suppressed_info = True
                continue
            if m.concept.id in seen:
                continue
            if m.detector == "lexicon" and any(s < m.end and m.start < e for s, e in taken):
                continue  # the same words already raised a concept at the same or a higher level
            seen.add(m.concept.id)
            if m.detector == "lexicon":
                taken.append((m.start, m.end))
            qs, qe = self.matcher.quote_span(a, m)
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
        # a red flag is present and an emergency is likely but not certain: say which signs to check now
        unsure = level == "urgent" and signal.emergency >= self.thresholds.safety_unsure
        info = level == "none" and (bool(a.triggers["info_request"]) or suppressed_info)
        return SafetyResult(level=level, reasons=tuple(reasons), info_request=info, unsure=unsure)  # type: ignore[arg-type]


def _priority(m: Mention) -> tuple[int, bool, int, int]:
    """Higher tiers first, then the rules' own words, then reading order."""
    return (-LEVEL_RANK[m.concept.level], m.detector != "lexicon", m.start, m.start - m.end)


def _model_vocabulary(embedder: Embedder) -> set[str]:
    try:
        vocab = embedder.tokenizer.get_vocab()
    except Exception:  # pragma: no cover - any tokenizer without a vocabulary
        return set()
    return {w for w in vocab if w.isalpha() and w.islower()}
