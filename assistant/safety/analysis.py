"""One message cut into sentences and clauses, with every scoping trigger found once.

The rule matcher and the learned detector both work on this analysis, so negation, the past and
questions about information are scoped the same way for both.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .normalise import TypoFixer, normalise
from .rules import Rules

WORD = re.compile(r"\w+")
_STRONG_BREAK = re.compile(r"(?<!\d)[.!?;:]+(?!\d)|[.!?;:]+(?=\s|$)|\n+")


@dataclass
class Span:
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
    triggers: dict[str, list[Span]]
    units: list[tuple[int, int]]  # clause spans the detector embeds
    unit_texts: list[str]
    # the whole message as the detector embeds it, when it has more than one clause: signs spread
    # over several clauses ("I'm 74 and smoke ... sudden pain ... throbbing in my tummy") add up
    message_text: str = ""
    # sentences of two or more units (not the whole message), as the detector embeds them: a sign
    # can sit across a clause break ("wiping after the loo and I couldn't feel the paper"); with the
    # units each holds, as [first, last) unit indexes
    sentence_texts: list[str] = field(default_factory=list)
    sentence_units: list[tuple[int, int]] = field(default_factory=list)
    contexts_present: dict[str, bool] = field(default_factory=dict)
    # the rule matcher's mentions, kept with the analysis: they do not depend on any cut-off
    lexicon: list | None = None

    def clause_of(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.clause_starts, pos) - 1)

    def sentence_of(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.sentence_starts, pos) - 1)

    def scored(self) -> tuple[list[str], list[tuple[int, int]]]:
        """The texts the detector embeds (units, sentences of several units, the whole message) and,
        for each, the [first, last) units it is scoped through."""
        texts = [*self.unit_texts, *self.sentence_texts]
        groups = [(i, i + 1) for i in range(len(self.units))] + list(self.sentence_units)
        if self.message_text:
            texts.append(self.message_text)
            groups.append((0, len(self.units)))
        return texts, groups

    def words(self, start: int, end: int) -> str:
        """The person's own words for text[start:end]."""
        if start >= end or not self.index:
            return ""
        a = self.index[start]
        b = self.index[min(end, len(self.index)) - 1] + 1
        return " ".join(self.original[a:b].split())



class Analyser:
    """Builds the :class:`Analysis` of a message from the rules' scoping patterns."""

    def __init__(self, rules: Rules, typos: TypoFixer) -> None:
        self.rules = rules
        self.typos = typos

    def prepare(self, message: str) -> Analysis:
        text, index = normalise(message or "")
        text, index = self.typos.fix(text, index)
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

        def within_sentences(pat: re.Pattern[str]):
            # a trigger's word gap never reaches into the next sentence ("a bit of blood. back is bruised. ok")
            for ss, se in sentence_spans:
                yield from pat.finditer(text, ss, se)

        triggers = {
            name: [Span(*m.span()) for m in within_sentences(pat)]
            for name, pat in (
                ("normal_finding", r.normal_finding),
                ("historical", r.historical),
                ("hypothetical", r.hypothetical),
                ("definitional", r.definitional),
                ("experiencer", r.experiencer),
                ("affirmation", r.affirmation),
                ("info_request", r.info_request),
            )
        }
        # "prob nothing", "no feeling": wording that looks like a denial and is not, either side
        pseudo = [m.span() for m in within_sentences(r.pseudo_negation)]
        for name, pat in (("negation_pre", r.negation_pre), ("negation_post", r.negation_post)):
            triggers[name] = [
                Span(*m.span()) for m in within_sentences(pat) if not any(ps <= m.start() < pe for ps, pe in pseudo)
            ]
        for name, pat in (("resolution", r.resolution), ("clearance", r.clearance)):
            spans = []
            for m in within_sentences(pat):
                if name == "clearance" or _looks_like_clearance(m.group(0), r):
                    if r.clearance_negators.search(m.group(0)) or _negated_before(text, m.start(), triggers["negation_pre"], clause_starts, r):
                        continue
                spans.append(Span(*m.span()))
            triggers[name] = spans
        # getting better, unless denied ("not getting better") or a prospect ("should get better")
        triggers["improving"] = [
            Span(*m.span()) for m in within_sentences(r.improving)
            if not _negated_before(text, m.start(), triggers["negation_pre"], clause_starts, r)
        ]

        # detector units: clauses, short ones joined to their neighbour within the sentence
        units: list[tuple[int, int]] = []
        for cs, ce, si in zip(clause_starts, clause_ends, clause_sentence):
            piece = text[cs:ce]
            n = len(WORD.findall(piece))
            if n == 0:
                continue
            if units and n < r.unit_min_words and clause_sentence[clause_starts.index(units[-1][0])] == si:
                units[-1] = (units[-1][0], ce)
            elif (
                units
                and len(WORD.findall(text, units[-1][0], units[-1][1])) < r.unit_min_words
                and clause_sentence[clause_starts.index(units[-1][0])] == si
            ):
                units[-1] = (units[-1][0], ce)
            else:
                units.append((cs, ce))
        units = units[: r.unit_max_clauses]
        unit_texts = []
        kept = []
        for s, e in units:
            t = _clean(text[s:e])
            if len(WORD.findall(t)) >= 2:
                kept.append((s, e))
                unit_texts.append(t)

        sentence_texts: list[str] = []
        sentence_units: list[tuple[int, int]] = []
        for ss, se in sentence_spans:
            inside = [i for i, (us, ue) in enumerate(kept) if ss <= us and ue <= se]
            if 1 < len(inside) < len(kept):
                sentence_texts.append(_clean(text[ss:se]))
                sentence_units.append((inside[0], inside[-1] + 1))

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
            message_text=_clean(text) if len(unit_texts) > 1 else "",
            sentence_texts=sentence_texts,
            sentence_units=sentence_units,
        )



def _looks_like_clearance(matched: str, rules: Rules) -> bool:
    return bool(rules.clearance.search(matched))


def _negated_before(text: str, start: int, negs: list[Span], clause_starts: list[int], rules: Rules) -> bool:
    ci = max(0, bisect.bisect_right(clause_starts, start) - 1)
    cs = clause_starts[ci]
    before = " ".join(WORD.findall(text, cs, start)[-3:])
    if rules.clearance_negators.search(before):
        return True
    return any(
        cs <= x.start and x.end <= start and len(WORD.findall(text, x.end, start)) <= 3 for x in negs
    )


def _clean(text: str) -> str:
    """Words and the symbols that carry meaning in symptoms (38.5°, 50%, and/or)."""
    return " ".join(re.sub(r"[^\w%&/.\-°]+", " ", text).split())
