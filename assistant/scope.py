"""Whether the sources can answer a question, judged from its content rather than from a term list.

Retrieval always finds *some* walking passage, because every article is about walking and the back.
So a question is declined when its specific content is something the corpus never speaks to:

- a near-topic subject asked about without the back (another joint, a route, insurance);
- a request to act as a clinician (prescribe, diagnose, sign a note), refused whatever else it says;
- a topic concept the corpus does not cover (pregnancy, medicines, scans): the words that name it
  in the question are looked up in the corpus;
- a content word that is rare in English and absent from the corpus: the name of a drug, a gadget,
  a brand or a scan finding the sources have never heard of;
- a count ("how many calories") that no sentence of the top passages gives a figure for.

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
COMMON_ZIPF = 4.0  # an everyday word (once in ten thousand words or more): "wierd" is "weird" misspelt
# Rare words shaped like descriptions or actions ("creaky", "jolting", "oiled", "gently") describe how
# a person feels or moves, which the sources do cover; medical word endings keep a word a name.
_DESCRIPTIVE = re.compile(r"(ing|ed|ly|[^e]y|ish)$")
_PERSON = re.compile(r"(ist|ists|ician|icians|opath|opaths)$")  # a podiatrist, a physician or a naturopath is who said it
_UNIT = re.compile(r"(metre|meter|litre|liter|gram|gramme|inch|inche|mile|pound|stone)s?$")  # a quantity, not a name
_MEDICAL_ENDING = re.compile(r"(itis|osis|algia|pathy|ology|therapy|ectomy|otomy|plasty|scopy|graphy|oid|ine|ol|en|ide|ate|ex)$")

# a subject named only to be set aside, right before it: "not a marathon", "rather than the gym"
_DENIED = re.compile(r"\b(not|no|nor|never|isn'?t|aren'?t|rather than|instead of)\s+(even\s+)?"
                     r"((a|an|the|like|doing|running|training for|going to)\s+){0,2}$")
# "back" as a direction, not the body part: "get the movement back", "back to walking"
_ADVERB_BACK = re.compile(r"\b((get|gets|got|getting|come|comes|came|coming|go|goes|going|went|bring|brings|brought|"
                          r"movement|motion|strength|fitness|confidence|way|turn|turned|bounce|bounced) back|"
                          r"back (to|from|home|then|again|into|and forth|on track|in the day))\b")
# "back" that is not anyone's back: a back garden, backing up photos, the back of a chair, a cat's back
_OBJECT_BACK = re.compile(
    r"\bback (gardens?|yards?|doors?|seats?|rows?|pockets?|streets?|lanes?|rooms?|bedroom|office|burner|end|log|pay|"
    r"order|catalogue|issues?|copy|page|fire)\b|\bback(ed|ing|s)? (it|them|this|that|my|your|all|everything|stuff|files|"
    r"photos|pictures|data|phone|laptop|computer) up\b|\bback ?ups?\b|\b(cat|kitten|dog|puppy|pup|horse|pony|rabbit|"
    r"hamster)s?'?s? back\b|\bback (of|on) (the|my|a|our|his|her|their) ([a-z']+ )?(car|seat|chair|sofa|couch|house|queue|"
    r"bus|van|book|drawer|cupboard|fridge|door|wardrobe|shop|class|hall|card|phone|tv|cinema|bike|head)\b")


# an animal's own back, said with a pronoun: "my cat keeps arching her back" (not dogs: "walking the dog and her
# back gave out" is as likely a person's)
_ANIMAL_BACK = re.compile(r"\b((cats?|kittens?|horses?|ponies|pony|rabbits?|hamsters?|guinea pigs?)\b.{0,30}?\b(her|his|its|their) )back\b")


def without_object_backs(text: str) -> str:
    return _ANIMAL_BACK.sub(lambda m: m.group(1), _OBJECT_BACK.sub(" ", text))


# the back named only to rule it out: "my back is fine.", "not my back, just the hip", "no back pain"
_BACK_RULED_OUT = re.compile(
    r"\b(not|isn'?t|nothing to do with|no (problems?|issues?|trouble) with) (my |the |her |his |their )?(lower )?(back|spine)\b|"
    r"\b(my|the|her|his|their) (lower )?(back|spine)(\s(is|are|feels|seems)|'s)( absolutely| totally| completely| perfectly| really)? "
    r"(fine|ok|okay|alright|all right|good|normal|not the problem)(?=\s*([.,!;)]|$|(it'?s|just|only|but)\b))|"
    r"\bno (back|spine) (pain|problems?|issues?|trouble)\b")
# asking how to treat a body part: "exercises for my knees", "something to strengthen the ankle"
_TREATMENT_FOR = re.compile(r"\b(exercises?|stretch\w*|treat\w*|remed\w*|cures?|fix|strengthen\w*|rehab\w*|physio)\s+"
                            r"((for|on|of)\s+)?((my|the|your|her|his|a|an|both|sore|bad)\s+)?$")
# "how many calories", "how much weight", "what percentage of": the thing a figure is asked for
_HOW_MANY = re.compile(r"\b(how (many|much)|what (percentage|proportion|number|amount) of)\s+(more |extra |fewer |less )?"
                       r"(?P<thing>[a-z]+)")
# what the sources do give figures for (how long, how far, how often), and words that ask how much
# something helps rather than for a count
_NOT_COUNTED = frozenset("""
    minutes minute mins min hours hour hrs hr seconds secs days day weeks week times goes sessions walks reps
    repetitions rounds k ks km kms kilometres kilometre kilometers kilometer miles mile metres meters
    of do does did is are can could should would will time longer further difference good better harm damage
    it this that they i you we he she them though then each every per people someone more walking exercise
    on in at for to with from by about a an the my your his her our their first""".split())
_FIGURE = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|hundred|"
                     r"half|few|several|couple|dozen)\b")
_QUOTED = re.compile(r"(?:^|\s)['\"\u2018\u201c]([^'\"\u2019\u201d]{1,80})['\"\u2019\u201d]")
_WALKING = re.compile(r"\b(walk\w*|strides?|gait|posture|steps?|pace|hik\w*|stroll\w*)\b")
_QUOTED_WORD = re.compile(r"[^\W\d_]+")
# who is asking: "I'm a sceptic by nature", "as a retired teacher", "Sceptic here."
_SELF = re.compile(r"\b(i'?m|i am|as) (a|an) ([a-z-]+ ){0,2}[a-z-]+|(^|[.!?]\s*)[a-z-]+ here\b")
# a letter's sign-off and the name under it: who wrote, not what is asked ("Yours faithfully, H. Okafor")
_SIGN_OFF = re.compile(r"(?:^|(?<=[\s.!?,]))(?i:(yours )?(faithfully|sincerely|truly)|(kind|kindest|best|warm|warmest|many) "
                       r"(regards|wishes|thanks)|regards|thanks( so much| a lot| in advance| again)?|"
                       r"thank you( so much| in advance| again)?|cheers|with thanks|all the best)[,.!]?\s+"
                       r"([A-Z][\w'-]*\.?\s*){1,3}(\(\d+\)\s*)?$")

Verdict = Literal["answer", "no_answer", "out_of_scope", "not_a_doctor"]


def outside_quotes(text: str) -> str:
    return _QUOTED.sub(" ", text)


def without_sign_off(message: str) -> str:
    """The message without a letter's closing name, which is rare as a word but never the subject."""
    return _SIGN_OFF.sub("", message.rstrip()).rstrip()


def _typo(word: str, corrected: str) -> bool:
    """A correction two edits away is a typo; "acupressure" mapped to "pressure" is a different word."""
    from rapidfuzz.distance import Levenshtein

    return corrected != word and Levenshtein.distance(word, corrected) <= 2


@lru_cache(maxsize=1)
def _common_words() -> dict[int, tuple[str, ...]]:
    """Everyday English words by length: a slip changes a word's length by one letter at most."""
    from wordfreq import top_n_list, zipf_frequency

    by_length: dict[int, list[str]] = {}
    for w in top_n_list("en", 20000):  # most frequent first
        if zipf_frequency(w, "en") < COMMON_ZIPF:
            break
        if w.isalpha() and len(w) >= 4:
            by_length.setdefault(len(w), []).append(w)
    return {n: tuple(ws) for n, ws in by_length.items()}


def _common_misspelt(word: str) -> bool:
    """One slip (a letter swapped, missed or doubled) away from an everyday English word."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    common = _common_words()
    candidates = [w for n in (len(word) - 1, len(word), len(word) + 1) for w in common.get(n, ())]
    return process.extractOne(word, candidates, scorer=OSA.distance, score_cutoff=1) is not None


def _pattern(text: str) -> re.Pattern:
    return re.compile("".join(line.strip() for line in str(text).splitlines()))


@dataclass(frozen=True)
class Concept:
    name: str
    pattern: re.Pattern
    even_with_back: bool = False  # near-topic subjects only: out of scope even when the back is named
    walking_ok: bool = False  # near-topic subjects only: in scope when the question is about walking
    helped_by: str = ""  # near-topic subjects only: who can help instead ("" for a clinician, "-" for no one)


@dataclass
class ScopeDecision:
    verdict: Verdict = "answer"
    terms: list[str] = field(default_factory=list)  # what is not covered, named in the reply
    rare_words: list[str] = field(default_factory=list)  # the terms that are unknown names, not topics
    helped_by: str = ""  # who can help with a near-topic subject instead

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "terms": list(self.terms), "rare_words": list(self.rare_words),
                "helped_by": self.helped_by}


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
            return tuple(Concept(str(c["name"]), _pattern(c["pattern"]), bool(c.get("even_with_back")),
                                 bool(c.get("walking_ok")), str(c.get("helped_by") or ""))
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
        _common_words()  # loaded now, not on the first question with a rare word

    def judge(self, text: str, words: list[str], foreign: bool = False) -> ScopeDecision:
        """``text`` is the question as retrieval read it (typos mapped, follow-ups joined to what
        they follow); ``words`` the lower-cased words as the person typed them. Words of another language, inside
        quotes (what someone said, a phrase to repeat) or describing the writer are not the question's subject."""
        lowered = " ".join(text.lower().split())
        if self.rules.role_requests.search(lowered):
            return ScopeDecision("not_a_doctor")
        about_back = bool(self.rules.back.search(
            _BACK_RULED_OUT.sub(" ", _ADVERB_BACK.sub(" ", without_object_backs(lowered)))))
        near = [c for c in self.rules.near_topic if (c.even_with_back or not about_back) and self._near_topic(c, lowered)]
        if near:
            return ScopeDecision("out_of_scope", [c.name for c in near], helped_by=near[0].helped_by)
        quotes = [m.span(1) for m in _QUOTED.finditer(lowered)]
        terms = [c.name for c in self.rules.uncovered
                 if any(not self._in_corpus(m.group(0)) and not any(a <= m.start() < b for a, b in quotes)
                        for m in c.pattern.finditer(lowered))]
        rare: list[str] = []
        if not foreign:
            aside = " ".join(lowered[a:b] for a, b in quotes) + " " + " ".join(m.group(0) for m in _SELF.finditer(lowered))
            said = set(_QUOTED_WORD.findall(aside))
            rare = self.rare_unknown(w for w in words if w not in said)
            terms += rare
        return ScopeDecision("no_answer", terms, rare) if terms else ScopeDecision()

    def missing_figure(self, text: str, passages: Iterable[str]) -> list[str]:
        """What a "how many X" question counts, when no sentence of the top passages gives a figure
        for X: the sources say walking burns calories but never how many, so a number would be made up."""
        from .ingestion import split_sentences
        from .retrieval import stemmer

        asked = {m.group(0): m.group("thing") for m in _HOW_MANY.finditer(" ".join(text.lower().split()))
                 if m.group("thing") not in _NOT_COUNTED}
        if not asked:
            return []
        stem = stemmer().stemWord
        figures = [{stem(t) for t in _QUOTED_WORD.findall(s)}
                   for p in passages for s in split_sentences(p.lower()) if _FIGURE.search(s)]
        return [phrase for phrase, thing in asked.items() if not any(stem(thing) in f for f in figures)]

    def _near_topic(self, concept: Concept, lowered: str) -> bool:
        """A subject the corpus itself talks about (knees, shoulders) is in scope when the question
        is about walking: how the knees or shoulders move in a stride is posture, not a knee problem."""
        walking = bool(_WALKING.search(lowered))
        if walking and concept.walking_ok:
            return False  # walking after a back operation: the sources say to ask first
        walking = walking and not concept.even_with_back
        for m in concept.pattern.finditer(lowered):
            if _DENIED.search(lowered, 0, m.start()):
                continue  # "it's a walk, not a marathon" says what the question is not about
            if not (walking and self._in_corpus(m.group(0))) or _TREATMENT_FOR.search(lowered, 0, m.start()):
                return True  # exercises for the knees are a knee question, walk or no walk
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
            if _typo(w, self._correct(w)) or _common_misspelt(w):  # "excercise", "wierd": known words misspelt
                continue
            zipf = zipf_frequency(w, "en")
            if zipf < VERY_RARE_ZIPF or (zipf < RARE_ZIPF and self._pieces(w) >= NAME_PIECES):
                out.append(w)
        return out
