"""Whether the sources can answer a question, judged from its content rather than from a term list.

Retrieval always finds *some* walking passage, because every article is about walking and the back.
So a question is declined when its specific content is something the corpus never speaks to:

- a near-topic subject asked about without the back (another joint, a route, insurance);
- a request to act as a clinician (prescribe, diagnose, sign a note), refused whatever else it says;
- a topic concept the corpus does not cover (pregnancy, medicines, scans): the words that name it
  in the question are looked up in the corpus;
- a content word that is rare in English and absent from the corpus: the name of a drug, a gadget,
  a brand or a scan finding the sources have never heard of.

The concepts live in ``data/scope.yaml``; the decline names what is not covered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, Literal

from .settings import DATA_DIR, load_yaml

# Words rarer than about one in a million (Zipf 3) that the corpus never uses are mostly names of
# specific things: drugs, devices, brands, diagnoses. Informal everyday words can be as rare, but the
# embedding model's vocabulary (from books and Wikipedia) holds them whole or in two pieces, while it
# spells technical names out in three or more ("ibuprofen" is four); below Zipf 2.0 any word counts.
RARE_ZIPF = 3.0
VERY_RARE_ZIPF = 2.0
NAME_PIECES = 3
# Rare words shaped like descriptions or actions ("creaky", "jolting", "oiled", "gently") describe how
# a person feels or moves, which the sources do cover; medical word endings keep a word a name.
_DESCRIPTIVE = re.compile(r"(ing|ed|ly|[^e]y|ish)$")
_PERSON = re.compile(r"(ist|ists|ician|icians)$")  # a podiatrist or a physician is who said it, not what is asked
_UNIT = re.compile(r"(metre|meter|litre|liter|gram|gramme|inch|inche|mile|pound|stone)s?$")  # a quantity, not a name
_MEDICAL_ENDING = re.compile(r"(itis|osis|algia|pathy|ology|therapy|ectomy|otomy|plasty|scopy|graphy|oid|ine|ol|en|ide|ate|ex)$")

_QUOTED = re.compile(r"(?:^|\s)['\"\u2018\u201c]([^'\"\u2019\u201d]{1,80})['\"\u2019\u201d]")
_WALKING = re.compile(r"\b(walk\w*|strides?|gait|posture|steps?|pace|hik\w*|stroll\w*)\b")
_QUOTED_WORD = re.compile(r"[^\W\d_]+")

Verdict = Literal["answer", "no_answer", "out_of_scope", "not_a_doctor"]


def _typo(word: str, corrected: str) -> bool:
    """A correction two edits away is a typo; "acupressure" mapped to "pressure" is a different word."""
    from rapidfuzz.distance import Levenshtein

    return corrected != word and Levenshtein.distance(word, corrected) <= 2


def _pattern(text: str) -> re.Pattern:
    return re.compile("".join(line.strip() for line in str(text).splitlines()))


@dataclass(frozen=True)
class Concept:
    name: str
    pattern: re.Pattern
    even_with_back: bool = False  # near-topic subjects only: out of scope even when the back is named


@dataclass
class ScopeDecision:
    verdict: Verdict = "answer"
    terms: list[str] = field(default_factory=list)  # what is not covered, named in the reply

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "terms": list(self.terms)}


@dataclass(frozen=True)
class ScopeRules:
    back: re.Pattern
    near_topic: tuple[Concept, ...]
    role_requests: re.Pattern
    uncovered: tuple[Concept, ...]

    @classmethod
    def load(cls, path=None) -> "ScopeRules":
        data = load_yaml(path or DATA_DIR / "scope.yaml")

        def concepts(key: str) -> tuple[Concept, ...]:
            return tuple(Concept(str(c["name"]), _pattern(c["pattern"]), bool(c.get("even_with_back")))
                         for c in data.get(key) or [])

        return cls(
            back=_pattern(data["back_words"]),
            near_topic=concepts("near_topic"),
            role_requests=_pattern(data["role_requests"]),
            uncovered=concepts("uncovered"),
        )


class ScopeJudge:
    """Built once per index: knows the corpus's text and words, to tell what it covers."""

    def __init__(self, corpus_texts: Iterable[str], vocabulary: Callable[[str], bool], pieces: Callable[[str], int],
                 correct: Callable[[str], str] = lambda w: w, rules: ScopeRules | None = None) -> None:
        self.rules = rules or ScopeRules.load()
        self._correct = correct  # retrieval's typo mapping onto the corpus vocabulary
        self._known = vocabulary  # True for a word the corpus (or the lexicon) uses, in any inflection
        self._pieces = pieces  # word pieces of a word in the embedding model's vocabulary
        self._corpus = " ".join(" ".join(t.lower().split()) for t in corpus_texts)
        # the same few phrases come up again and again: a search of the whole corpus is done once each
        self._in_corpus = lru_cache(maxsize=4096)(self._search_corpus)

    def judge(self, text: str, words: list[str], foreign: bool = False) -> ScopeDecision:
        """``text`` is the question as retrieval read it (typos mapped, follow-ups joined to what
        they follow); ``words`` the lower-cased words as the person typed them. Words of another language, or inside
        quotes (what someone said, a phrase to repeat), are not the question's subject."""
        lowered = " ".join(text.lower().split())
        if self.rules.role_requests.search(lowered):
            return ScopeDecision("not_a_doctor")
        about_back = bool(self.rules.back.search(lowered))
        subjects = [c.name for c in self.rules.near_topic
                    if (c.even_with_back or not about_back) and self._near_topic(c, lowered)]
        if subjects:
            return ScopeDecision("out_of_scope", subjects)
        terms = [c.name for c in self.rules.uncovered
                 if any(not self._in_corpus(m.group(0)) for m in c.pattern.finditer(lowered))]
        if not foreign:
            quoted = set(_QUOTED_WORD.findall(" ".join(_QUOTED.findall(lowered))))
            terms += self.rare_unknown(w for w in words if w not in quoted)
        return ScopeDecision("no_answer", terms) if terms else ScopeDecision()

    def _near_topic(self, concept: Concept, lowered: str) -> bool:
        """A subject the corpus itself talks about (knees, shoulders) is in scope when the question
        is about walking: how the knees or shoulders move in a stride is posture, not a knee problem."""
        walking = bool(_WALKING.search(lowered)) and not concept.even_with_back
        for m in concept.pattern.finditer(lowered):
            if not (walking and self._in_corpus(m.group(0))):
                return True
        return False

    def _search_corpus(self, phrase: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", self._corpus) is not None

    def rare_unknown(self, words: Iterable[str]) -> list[str]:
        from wordfreq import zipf_frequency

        out = []
        for w in dict.fromkeys(words):
            if len(w) < 5 or not w.isalpha() or self._known(w):
                continue
            if (_DESCRIPTIVE.search(w) and not _MEDICAL_ENDING.search(w)) or _UNIT.search(w) or _PERSON.search(w):
                continue
            if self._known(w + "g"):  # g dropped in speech: "walkin", "stretchin"
                continue
            if _typo(w, self._correct(w)):  # "excercise" is a known word misspelt, not a new name
                continue
            zipf = zipf_frequency(w, "en")
            if zipf < VERY_RARE_ZIPF or (zipf < RARE_ZIPF and self._pieces(w) >= NAME_PIECES):
                out.append(w)
        return out
