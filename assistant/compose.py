"""Extractive answers: every sentence shown is a sentence of a cited passage, so nothing is invented.

Sentences of the top passages are scored against the question with their precomputed embeddings
(own sentence and its window, less what every sentence of the corpus shares) plus word overlap,
picked without near-repeats, and put back in reading order so the answer reads like the article
rather than a shuffled list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


from .results import Citation, Context
from .retrieval import Retrieved, Retriever, _stopwords, words

DISCLAIMER = (
    "_General information from the sources above, not medical advice. If your pain is severe, "
    "getting worse, or comes with new symptoms, please see a health professional._"
)

SUGGESTIONS = (
    "You could ask, for example:\n"
    "- Is walking good for lower back pain?\n"
    "- How long should I walk when I'm just starting?\n"
    "- What shoes are best for walking with a bad back?"
)
OUT_OF_SCOPE_TEXT = "I can only help with questions about walking and back pain, so I can't answer that one. " + SUGGESTIONS
NOT_A_DOCTOR_TEXT = (
    "I can't act as a doctor: I can't prescribe, diagnose, or write a note for work. What I can do is "
    "tell you what my sources say about walking and back pain, such as how to start, how long and how "
    "often to walk, posture and shoes, and which warning signs need a doctor. For medicines, a diagnosis "
    "or a note, please ask your GP, a pharmacist or a physiotherapist. " + SUGGESTIONS
)
GREETING_TEXT = (
    "Hello! I answer questions about walking and back pain from a small set of articles, "
    "and show the passage each answer comes from. " + SUGGESTIONS
)
THANKS_TEXT = "You're welcome. Ask me anything else about walking and back pain whenever you like."

# How a candidate sentence is scored: its own similarity to the question, its window's, the share
# of the question's keywords it contains, a small penalty per rank of its passage, and for a "which
# ones" question a bonus to a sentence that names several examples (dev key facts 0.746 without it,
# 0.756 at 0.05; 0.1 scored as 0.05 did on an earlier build).
SCORE_WEIGHTS = {"own": 0.55, "window": 0.15, "overlap": 0.15, "rank": 0.02, "examples": 0.05}
# sentences scoring this far below the best one are left out once the minimum is reached
SCORE_MARGIN = 0.12

_GREETING = re.compile(r"^(hi+|hello+|hey+|hiya|good (morning|afternoon|evening)|yo|howdy)\b[\s!.,?]*(there)?[\s!.,?]*$", re.I)
_THANKS = re.compile(r"^(thanks?( you)?( so much| very much| a lot)?|thank u|ty|cheers|ta|great|ok(ay)?|cool|perfect|brilliant)\b[\s!.,?]*$", re.I)

_QUESTIONISH = re.compile(r"\?\s*$")
_RHETORICAL_FACT = re.compile(r"^(did you know|do you know)\b", re.IGNORECASE)
_BARE_INTRO = re.compile(r":\s*$")
_REFERENCE_ONLY = re.compile(r"^\(?\d+\)?\.?$")
# sentences about the article rather than the topic ("In this article we will explore ...") or that only
# pose a question
_META = re.compile(
    r"\b(this article|this blog|this guide|this question|let's explore|"
    r"read(ing)? more|consider reading|below are|here are|here is|"
    r"(things|what) you (need|should|must|ought) (to )?know|"
    # a question set up rather than answered ("many people wonder if ..."): filler in an answer
    r"(people|many|some|you|readers) (may |might |often |probably |sometimes )?(wonder|ask)(s|ed)? (themselves )?(if|whether)|"
    r"you (may|might) (be|have been) wondering|"
    # an article's own blurb ("Discover how walking can relieve ...", "Learn why ...")
    r"^(discover|learn|find out|explore|read on to)\b)\b",
    re.IGNORECASE,
)


# A sentence that leans on the one before it ("Despite these benefits, ...", "This is why ...")
# reads as a dangling reference when that sentence is not in the answer.
_LEANS_BACK = re.compile(
    r"^(this|these|that|those|such|it|they|despite (this|these|that|those)|because of (this|that)|as a result|"
    r"that'?s why|this is why|for this reason|in (this|that) case)\b", re.IGNORECASE)
# Connectives that only link to the sentence before: dropped when that sentence is not shown.
_CONNECTIVE = re.compile(r"^(so|also|but|and|however|moreover|furthermore|in addition|additionally|therefore|thus|"
                         r"besides|then|well|now|of course|indeed|similarly|likewise|in the same way|what'?s more|"
                         r"on top of that|on the other hand|even so|in contrast|by contrast|conversely|as (i|we)( have)? (mentioned|said|noted|explained|saw)"
                         r"( above| before| earlier)?),?\s+", re.IGNORECASE)
# A sentence with fewer content words than this says nothing on its own ("So you must adopt a good
# posture."), unless it carries a number.
MIN_CONTENT_WORDS = 4
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|sixty|"
                     r"once|twice|half|hours?|minutes?|weeks?|days?|daily|miles?|steps)\b", re.IGNORECASE)
# Questions whose answer is a set of things ("which positions", "what exercises", "any tips"), and how
# many items of a list such an answer shows.
_WANTS_LIST = re.compile(r"\b(which|what|any|list|some)\s+(\w+\s+){0,2}?(positions|poses|exercises|stretches|activities|"
                         r"signs|symptoms|benefits|types|kinds|sorts|ways|things|options|habits|tips|causes|reasons|"
                         r"examples|alternatives)\b", re.IGNORECASE)
LIST_ITEMS = 5
# A sentence that names several examples ("stretches like touching your toes, lunges, or seated
# spinal twists"): what a "which ones" question wants to read.
_NAMES_EXAMPLES = re.compile(r"(?<=\w\s)(such as|like|including|e\.g\.|for example|for instance)\s[^.;:]*,[^.;:]*\b(and|or)\s",
                             re.IGNORECASE)
# Questions that want a figure first (how long, how often) and questions that want steps (how do I).
_WANTS_FIGURE = re.compile(r"\b(how (long|often|many|far|much|fast|soon|quickly|high|low|big)|what (distance|pace|speed|height|size)|"
                           r"(a|what|which) (number|figure)|"
                           r"how many times|minutes|when can i|when should i)\b", re.IGNORECASE)
_WANTS_STEPS = re.compile(r"\b(how (do|should|can|could|would) (i|you|we)|how to|what('?s| is) the (best|right) way to|"
                          r"what steps|steps to|tips (for|on|to)|where do i start|how do i (start|begin|get started))\b",
                          re.IGNORECASE)


@dataclass
class Composition:
    text: str
    citations: list[Citation]


@dataclass(frozen=True)
class _Space:
    """One model's sentence and window vectors, with each one's similarity to the corpus mean."""

    sentences: object
    windows: object
    generic_sentences: object
    generic_windows: object

    @classmethod
    def of(cls, sentences, windows) -> "_Space":
        return cls(sentences, windows, sentences @ sentences.mean(axis=0), windows @ windows.mean(axis=0))


@dataclass(frozen=True)
class _Candidate:
    row: int
    chunk_row: int
    rank: int
    position: int
    text: str
    is_item: bool
    score: float


def _usable(text: str, is_item: bool) -> bool:
    if (_QUESTIONISH.search(text) and not _RHETORICAL_FACT.search(text)) or _BARE_INTRO.search(text) or _REFERENCE_ONLY.match(text) or _META.search(text):
        return False
    if is_item:
        return True
    if len(text.split()) < 5:
        return False
    stop = _stopwords()
    return len([w for w in words(text) if w not in stop]) >= MIN_CONTENT_WORDS or bool(_NUMBER.search(text))


class Composer:
    def __init__(self, retriever: Retriever, max_sentences: int = 4, min_sentences: int = 2) -> None:
        self.retriever = retriever
        self.max_sentences = max_sentences
        self.min_sentences = min_sentences
        index = retriever.index
        self.sent_text = index.texts["sentence"]
        self.sent_meta = index.metas["sentence"]
        self.sent_vecs = index.vectors["sentence"]
        self.window_vecs = index.vectors["window"]
        self.rows_by_chunk: dict[int, list[int]] = {}
        for row, chunk_row in enumerate(retriever.sentence_chunk):
            self.rows_by_chunk.setdefault(int(chunk_row), []).append(row)
        self._row_at = {(int(c), int(self.sent_meta[r]["position"])): r for r, c in enumerate(retriever.sentence_chunk)}
        self._stemmed = [set(retriever._stem(words(t))) for t in self.sent_text]
        # Every sentence here is about walking and the back, and so is every question: that shared part
        # favours sentences that say little beyond it. Scoring against the question minus the corpus mean
        # (v.q - v.mean) ranks sentences by what the question asks in particular.
        # With the ensemble on, the second model's vectors score sentences too, and the two are averaged.
        self._spaces = [_Space.of(self.sent_vecs, self.window_vecs)]
        if retriever.second is not None:
            self._spaces.append(_Space.of(index.second["sentence"], index.second["window"]))
        # whether a sentence can stand in an answer depends on the sentence alone: judged once here
        self._usable = [_usable(t, bool(m.get("is_item"))) for t, m in zip(self.sent_text, self.sent_meta)]
        self._names_examples = [bool(_NAMES_EXAMPLES.search(t)) for t in self.sent_text]

    def candidates(self, retrieved: Retrieved, passages: int = 4) -> list[_Candidate]:
        spaces = [(space, q) for space, q in zip(self._spaces, (retrieved.query_vector, retrieved.second_vector))
                  if q is not None]
        keywords = set(retrieved.query.keywords)
        wants_list = bool(_WANTS_LIST.search(retrieved.query.text))
        out: list[_Candidate] = []
        for rank, chunk_row in enumerate(retrieved.chunk_rows[:passages]):
            rows = self.rows_by_chunk.get(chunk_row, [])
            if not rows:
                continue
            own = sum(sp.sentences[rows] @ q - sp.generic_sentences[rows] for sp, q in spaces) / len(spaces)
            win = sum(sp.windows[rows] @ q - sp.generic_windows[rows] for sp, q in spaces) / len(spaces)
            for j, row in enumerate(rows):
                text = self.sent_text[row]
                is_item = bool(self.sent_meta[row].get("is_item"))
                if not self._usable[row]:
                    continue
                overlap = len(keywords & self._stemmed[row]) / max(1, len(keywords)) if keywords else 0.0
                w = SCORE_WEIGHTS
                score = w["own"] * float(own[j]) + w["window"] * float(win[j]) + w["overlap"] * overlap - w["rank"] * rank
                if wants_list and self._names_examples[row]:
                    score += w["examples"]
                out.append(_Candidate(row, chunk_row, rank, int(self.sent_meta[row]["position"]), text, is_item, score))
        return out

    def select(self, candidates: list[_Candidate]) -> list[_Candidate]:
        if not candidates:
            return []
        ranked = sorted(candidates, key=lambda c: -c.score)
        best = ranked[0].score
        chosen: list[_Candidate] = []
        seen_text: set[str] = set()
        for cand in ranked:
            if len(chosen) >= self.max_sentences:
                break
            if len(chosen) >= self.min_sentences and cand.score < best - SCORE_MARGIN:
                break
            key = " ".join(words(cand.text))
            if key in seen_text:
                continue
            if any(float(self.sent_vecs[cand.row] @ self.sent_vecs[c.row]) > 0.88 for c in chosen):
                continue
            chosen.append(cand)
            seen_text.add(key)
        return chosen

    def with_their_list(self, chosen: list[_Candidate], question: str) -> list[_Candidate]:
        """A "which ones" question answered by a sentence that leads into a list ("Here are some poses
        ...:"), or by one item of a list, gets that list: its opener and up to LIST_ITEMS items."""
        if not _WANTS_LIST.search(question):
            return chosen
        for cand in chosen:
            if cand.is_item:
                opener = self._list_opener(cand.chunk_row, cand.position)
            else:  # a sentence brings only the list that starts right after it
                after = self._row_at.get((cand.chunk_row, cand.position + 1))
                opener = cand.position + 1 if after is not None and self._opens_list(after) else None
            if opener is None:
                continue
            items = []
            while self._is_item(cand.chunk_row, opener + 1 + len(items)):
                items.append(opener + 1 + len(items))
            if len(items) < 2:
                continue
            have = {c.row for c in chosen}
            rows = [self._row_at[(cand.chunk_row, p)] for p in [opener, *items[:LIST_ITEMS]]]
            extra = [_Candidate(row, cand.chunk_row, cand.rank, p, self.sent_text[row], p != opener, cand.score)
                     for p, row in zip([opener, *items[:LIST_ITEMS]], rows) if row not in have]
            return [*chosen, *extra]  # one list is enough
        return chosen

    def _is_item(self, chunk_row: int, position: int) -> bool:
        row = self._row_at.get((chunk_row, position))
        return row is not None and bool(self.sent_meta[row].get("is_item"))

    def _list_opener(self, chunk_row: int, position: int) -> int | None:
        """Position of the sentence opening the list that the sentence at ``position`` is in: the
        nearest sentence before it that is not an item, when it ends with ":"."""
        for p in range(position - 1, -1, -1):
            row = self._row_at.get((chunk_row, p))
            if row is None or self.sent_meta[row].get("is_item"):
                continue
            return p if self._opens_list(row) else None
        return None

    def _opens_list(self, row: int) -> bool:
        return not self.sent_meta[row].get("is_item") and bool(_BARE_INTRO.search(self.sent_text[row]))

    def with_list_intros(self, chosen: list[_Candidate]) -> list[_Candidate]:
        """A list item read alone can mislead ("Pain worsens during walking."): put the sentence that
        introduces its list ("certain signs suggest ... problems:") before it."""
        out = list(chosen)
        have = {c.row for c in chosen}
        for item in [c for c in chosen if c.is_item]:
            opener = self._list_opener(item.chunk_row, item.position)
            row = None if opener is None else self._row_at[(item.chunk_row, opener)]
            if row is not None and row not in have:
                out.append(_Candidate(row, item.chunk_row, item.rank, opener, self.sent_text[row], False, item.score))
                have.add(row)
        # reading order: passages by the strength of their best sentence, sentences as written
        group_best: dict[int, float] = {}
        for c in out:
            group_best[c.chunk_row] = max(group_best.get(c.chunk_row, -1.0), c.score)
        return sorted(out, key=lambda c: (-group_best[c.chunk_row], c.position))

    def _with_neighbours(self, chosen: list[_Candidate], step: int, takes) -> list[_Candidate]:
        """Each chosen sentence that is not a list item brings the sentence ``step`` away in its passage
        (not an item, not yet chosen) when ``takes(candidate, row)``, while the answer has room."""
        out = list(chosen)
        have = {c.row for c in out}
        for cand in chosen:
            if len(out) >= self.max_sentences or cand.is_item:
                continue
            position = cand.position + step
            row = self._row_at.get((cand.chunk_row, position))
            if row is None or row in have or self.sent_meta[row].get("is_item") or not takes(cand, row):
                continue
            out.append(_Candidate(row, cand.chunk_row, cand.rank, position, self.sent_text[row], False, cand.score))
            have.add(row)
        return out

    def with_what_they_lean_on(self, chosen: list[_Candidate]) -> list[_Candidate]:
        """A sentence that starts "These benefits ..." gets the sentence before it, while the answer
        has room. (Scoring such sentences down instead cost key facts on every eval set.)"""
        return self._with_neighbours(chosen, -1, lambda cand, row: bool(_LEANS_BACK.match(cand.text)))

    def with_what_follows(self, chosen: list[_Candidate]) -> list[_Candidate]:
        """A sentence followed by one that carries it on ("... warm up your muscles." "This can be
        achieved by ...") gets that sentence too, while the answer has room: the how or the why."""
        return self._with_neighbours(chosen, 1, lambda cand, row: (
            not cand.text.rstrip().endswith(":") and self._usable[row] and bool(_LEANS_BACK.match(self.sent_text[row]))))

    @staticmethod
    def answer_first(ordered: list[_Candidate], question: str) -> list[_Candidate]:
        """The sentence that answers goes first: the best one, or for "how long / how often" the best
        one that holds a figure. The rest keep their reading order."""
        # a sentence that leans on the one before it ("This gentle exercise ...") cannot open the answer
        leads = [c for c in ordered if not c.is_item and not c.text.rstrip().endswith(":") and not _LEANS_BACK.match(c.text)]
        if _WANTS_FIGURE.search(question):
            leads = [c for c in leads if _NUMBER.search(c.text)] or leads
        if not leads:
            return ordered
        lead = max(leads, key=lambda c: c.score)
        return [lead, *[c for c in ordered if c is not lead]]

    def compose(self, retrieved: Retrieved, contexts: list[Context]) -> Composition:
        question = retrieved.query.message
        chosen = self.with_what_follows(self.with_what_they_lean_on(self.select(self.candidates(retrieved))))
        chosen = self.with_list_intros(self.with_their_list(chosen, retrieved.query.text))
        steps = bool(_WANTS_STEPS.search(question)) and not _WANTS_FIGURE.search(question)
        return self.render(self.answer_first(chosen, question), contexts, steps=steps)

    def quote_passages(self, contexts: list[Context], limit: int = 8) -> Composition:
        """The passages themselves, in order: for questions that ask for a whole list (warning signs)."""
        row_of = {cid: i for i, cid in enumerate(self.retriever.chunk_ids)}
        chosen: list[_Candidate] = []
        for rank, ctx in enumerate(contexts):
            chunk_row = row_of[ctx.chunk_id]
            for row in self.rows_by_chunk.get(chunk_row, []):
                text = self.sent_text[row]
                is_item = bool(self.sent_meta[row].get("is_item"))
                if len(chosen) < limit and (self._usable[row] or _BARE_INTRO.search(text)):
                    chosen.append(_Candidate(row, chunk_row, rank, int(self.sent_meta[row]["position"]), text, is_item, 1.0))
        return self.render(chosen, contexts)

    def render(self, chosen: list[_Candidate], contexts: list[Context], steps: bool = False) -> Composition:
        """Sentences with their [n]; a how-to answer without a list of its own becomes numbered steps.
        Each citation quotes only the sentences used, inside the passage they came from."""
        by_chunk = {ctx.chunk_id: ctx for ctx in contexts}
        numbers: dict[int, int] = {}
        citations: list[Citation] = []
        lines: list[str] = []
        paragraph: list[str] = []
        used: dict[int, list[_Candidate]] = {}
        steps = steps and len(chosen) > 1 and not any(c.is_item for c in chosen)
        previous: _Candidate | None = None
        for cand in chosen:
            used.setdefault(cand.chunk_row, []).append(cand)
            if cand.chunk_row not in numbers:
                numbers[cand.chunk_row] = len(numbers) + 1
                chunk_id = self.retriever.chunk_ids[cand.chunk_row]
                ctx = by_chunk.get(chunk_id)
                meta = self.retriever.chunk_meta[cand.chunk_row]
                citations.append(
                    Citation(
                        n=numbers[cand.chunk_row],
                        title=meta["title"],
                        source=meta["source"],
                        section=meta["section"],
                        quote="",  # filled below with the sentences used
                        score=ctx.score if ctx else cand.score,
                        passage=self.retriever.chunk_text[cand.chunk_row],
                    )
                )
            text = cand.text
            follows = previous is not None and previous.chunk_row == cand.chunk_row and previous.position == cand.position - 1
            if not follows and not cand.is_item:
                stripped = _CONNECTIVE.sub("", text, count=1)
                text = stripped[:1].upper() + stripped[1:] if stripped != text else text
            previous = cand
            marked = f"{text} [{numbers[cand.chunk_row]}]"
            if steps:
                lines.append(f"{len(lines) + 1}. {marked}")
            elif cand.is_item:
                if paragraph:
                    lines.append(" ".join(paragraph))
                    paragraph = []
                lines.append(f"- {marked}")
            else:
                if lines and lines[-1].startswith("- ") and not paragraph:
                    lines.append("")
                if paragraph and text.rstrip().endswith(":"):  # a list's opener starts its own line
                    lines.append(" ".join(paragraph))
                    paragraph = []
                paragraph.append(marked)
        if paragraph:
            lines.append(" ".join(paragraph))
        body = "\n".join(lines).replace("\n\n\n", "\n\n")
        row_of_number = {n: row for row, n in numbers.items()}
        citations = [
            replace(c, quote=" ".join(x.text for x in sorted(used[row_of_number[c.n]], key=lambda x: x.position)))
            for c in citations
        ]
        return Composition(text=body, citations=citations)


def small_talk_reply(text: str) -> str | None:
    """Greetings and thanks get a friendly word and a pointer, not a refusal."""
    if _GREETING.match(text.strip()):
        return GREETING_TEXT
    if _THANKS.match(text.strip()):
        return THANKS_TEXT
    return None


def near_topic_text(subjects: list[str], helped_by: str = "") -> str:
    """A near-topic question gets its subject named, so the refusal reads as understood, not ignored, and
    a pointer to who can help with that subject (a vet for a pet, not a pharmacist)."""
    subject = " or ".join(subjects[:2])
    helper = "" if helped_by == "-" else f"{helped_by or 'A doctor, pharmacist or physiotherapist'} can help with that. "
    return (
        f"I'm sorry, I can only help with walking and back pain, and your question is about {subject}, "
        f"which my sources don't cover. {helper}" + SUGGESTIONS
    )


def no_answer_text(contexts: list[Context], terms: list[str] = ()) -> str:
    topics = list(dict.fromkeys(c.section.split(" > ")[-1] for c in contexts[:3]))
    suggestion = "; ".join(f"\u201c{t}\u201d" for t in topics)
    subject = " and ".join(f"\u201c{t}\u201d" for t in terms[:3]) if terms else "that"
    text = (
        f"I'm sorry, my sources don't cover {subject}, so I won't guess. "
        "They cover walking for back pain: its benefits, how to start and build up, posture and technique, "
        "shoes and surfaces, stretching, and warning signs that need a doctor."
    )
    if suggestion:
        text += f" The closest sections I found are {suggestion}."
    return text + " For anything beyond that, a doctor or physiotherapist is the right person to ask."
