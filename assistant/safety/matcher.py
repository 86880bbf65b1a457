"""The rule matcher: lexicon patterns, each mention scoped NegEx/ConText-style.

A mention can be the person's own symptom, or negated ("no numbness"), past or resolved ("years
ago", "A&E checked it, all clear"), someone else's ("my mum has"), hypothetical or a question
about information ("what if", "which symptoms would mean"), a benign cause ("bum went numb on the
bench"), or missing the context its concept needs. The same scoping is applied to the learned
detector's clauses, so neither detector alerts on "I have no numbness".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .analysis import WORD, Analysis
from .rules import Concept, Rules

# a first-person subject: ends the reach of a question about a term ("what is going on, i cant pee")
_SELF_REPORT = re.compile(r"\b(?:i|im|ive|id|me)\b")

# Statuses a mention can end up with.
OWN, NEGATED, HISTORICAL, RESOLVED, OTHER, ASIDE, HYPOTHETICAL, BENIGN, MISSING_CONTEXT = (
    "own", "negated", "historical", "resolved", "other", "aside", "hypothetical", "benign", "missing_context",
)


@dataclass
class Mention:
    concept: Concept
    start: int
    end: int
    status: str
    detector: str
    score: float = 1.0

    @property
    def raises(self) -> bool:
        # OTHER: someone describing another person's symptoms now must still be told to get them seen
        return self.status in (OWN, OTHER)


# a negation within this many words of a clause's start governs the whole clause
CLAUSE_NEGATION_WORDS = 2


class RuleMatcher:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def mentions(self, a: Analysis) -> list[Mention]:
        """The best mention of each concept: the first that raises, else the most telling one."""
        out: list[Mention] = []
        for c in self.rules.concepts:
            if c.pattern is None:
                continue
            best: Mention | None = None
            for m in c.pattern.finditer(a.text):
                s, e = m.span()
                if e <= s:
                    continue
                status = self.status(a, c, s, e, inside=False)
                mention = Mention(c, s, e, status, "lexicon")
                if mention.raises:
                    best = mention
                    break
                if best is None or (status in (HYPOTHETICAL, ASIDE) and best.status not in (HYPOTHETICAL, ASIDE)):
                    best = mention
            if best is not None:
                out.append(best)
        return out

    def quote_span(self, a: Analysis, m: Mention) -> tuple[int, int]:
        """Widen a quote to the words of the concept's `quote_context` in the same sentence, if any."""
        name = m.concept.quote_context
        if m.detector != "lexicon" or not name or name not in self.rules.contexts:
            return m.start, m.end
        si = a.sentence_of(m.start)
        ss, se = a.sentence_starts[si], a.sentence_ends[si]
        for c in self.rules.contexts[name].finditer(a.text, ss, se):
            s, e = min(c.start(), m.start), max(c.end(), m.end)
            if len(WORD.findall(a.text, s, e)) <= 16:
                return s, e
        return m.start, m.end


    def status(self, a: Analysis, c: Concept, s: int, e: int, inside: bool, negation: bool = True) -> str:
        ci = a.clause_of(s)
        cs, ce = a.clause_starts[ci], a.clause_ends[ci]
        si = a.sentence_of(s)
        ss, se = a.sentence_starts[si], a.sentence_ends[si]
        t = a.triggers
        affirmed = any(cs <= x.start < ce for x in t["affirmation"])

        # negation: a trigger shortly before the mention (or, for a whole clause, inside it), or after it.
        # A pattern that is itself a denial ("didn't hurt it", "can't feel") is not undone by an
        # earlier one ("I don't do sport and didn't hurt it")
        own_denial = not inside and self.rules.negation_pre.match(a.text, s) is not None
        if negation and not affirmed:
            for x in t["negation_pre"]:
                # a whole clause (learned detector): a negation that governs it, at its start
                # ("no numbness down there"), not one inside a detail ("every night without exception")
                if inside and s <= x.start < e and len(WORD.findall(a.text, s, x.start)) <= CLAUSE_NEGATION_WORDS:
                    return NEGATED
                if x.start < cs or x.start >= ce:
                    continue
                if not own_denial and x.end <= s and len(WORD.findall(a.text, x.end, s)) <= self.rules.negation_window:
                    return NEGATED
            if inside and any(s <= x.start and x.end <= e for x in t["normal_finding"]):
                return NEGATED
            for x in t["negation_post"]:
                if e <= x.start < ce and len(WORD.findall(a.text, e, x.start)) <= self.rules.post_negation_window:
                    return NEGATED

        # the past, and things already resolved or checked; a risk that lies in the past (cancer,
        # a known aneurysm) stays a risk only for the writer or the person they write for
        other = self._other_person(a, cs, ce, s, e, inside)
        if not c.history_is_risk or (other and self.rules.first_person.search(a.text)):
            if any(cs <= x.start < ce for x in t["historical"]):
                return HISTORICAL
            checks = {(x.start, x.end) for x in t["clearance"]}
            # easing is part of some signs ("stop for a bit and it's gone"): not a resolution then
            own = [m.span() for m in c.pattern.finditer(a.text, ss, se)] if t["resolution"] and c.pattern is not None else []
            for x in t["resolution"]:
                if any(ms <= x.start < me for ms, me in own):
                    continue
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

        # an urgent sign that is getting better in the same clause is settling; an emergency sign is
        # not ("the numbness is a bit better" still needs to be seen today)
        if c.level == "urgent" and any(cs <= x.start < ce for x in t["improving"]):
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

        # figure of speech or benign cause for this concept, within the sentence - unless denied
        # ("I am not doing any diet")
        if c.benign is not None and any(not self._negated_at(a, b.start()) for b in c.benign.finditer(a.text, ss, se)):
            if c.unless is None or not c.unless.search(a.text, ss, se):
                return BENIGN

        # context this concept requires elsewhere in the message
        for req in c.requires:
            if not self.context_present(a, req):
                return MISSING_CONTEXT

        # another person (checked last: an emergency in someone else still raises the level)
        if other:
            return OTHER if c.level == "emergency" or self._speaks_for_them(a) else ASIDE
        return OWN

    def _other_person(self, a: Analysis, cs: int, ce: int, s: int, e: int, inside: bool) -> bool:
        """The clause is about someone else: a person named before the words, and no "I" between."""
        if self.rules.first_person.search(a.text, s, e):
            return False
        for x in a.triggers["experiencer"]:
            if cs <= x.start < ce and x.end <= (e if inside else s):
                if not self.rules.first_person.search(a.text, x.end, s if not inside else e):
                    return True
        return False

    def _speaks_for_them(self, a: Analysis) -> bool:
        """A carer or relative writing about someone's urgent sign - not an aside in a message about
        the writer's own back ("my neighbour lost weight... is walking good for me?"), a clinician
        asking about a patient, or someone already seeing their doctor about it."""
        r = self.rules
        if r.professional.search(a.text) or r.under_care.search(a.text):
            return False
        return not r.own_report.search(a.text) or bool(r.carer.search(a.text))

    def context_present(self, a: Analysis, name: str) -> bool:
        hit = a.contexts_present.get(name)
        if hit is not None:
            return hit
        found = any(not self._negated_at(a, m.start()) for m in self.rules.contexts[name].finditer(a.text))
        a.contexts_present[name] = found
        return found

    def _negated_at(self, a: Analysis, pos: int) -> bool:
        """A negation shortly before ``pos`` in its clause."""
        cs = a.clause_starts[a.clause_of(pos)]
        return any(
            cs <= x.start and x.end <= pos and len(WORD.findall(a.text, x.end, pos)) <= self.rules.negation_window
            for x in a.triggers["negation_pre"]
        )

    # ------------------------------------------------------------------ analysis
