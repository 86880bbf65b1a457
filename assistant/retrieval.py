"""Hybrid retrieval tuned for questions as patients type them.

Every article here is about walking and back pain, so those words match everything. The signal
is in the rest: the question is cleaned, misspellings are mapped onto the corpus vocabulary,
lay and foreign words are expanded to the articles' terms, and rankings are fused by reciprocal
rank: dense over whole chunks, sentence windows and bare sentences, and BM25 on the distinctive
words. A second embedding model (the ensemble) adds its own three dense rankings: the two models
miss different paraphrases. Everything but the query embeddings is precomputed at load time.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .embeddings import Embedder
from .results import Context, Turn
from .scope import outside_quotes, without_object_backs
from .settings import DATA_DIR, Settings, load_yaml
from .store import LoadedIndex

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?", re.UNICODE)
_TAG = re.compile(r"<[^>]{0,200}>")
_FOLLOWUP_START = re.compile(
    r"^(and|also|but|so|what about|how about|ok(ay)?|then|and what|what if|is that|is it|are they|does it|do they|"
    r"should i do (it|that|them|this)|how (long|often|many|far|much)|which ones?|why|when)\b"
)
_ANAPHORA = re.compile(r"\b(it|that|this|those|these|them|they|each one|each|one|ones|there|same)\b")

OTHER_LANGUAGES = ("es", "fr", "de", "it", "pt", "nl")
RRF_K = 20
# Weights of the rankings in the fusion, measured on paraphrased questions: the bare sentence and
# BM25 lists carry most of the signal, whole-chunk similarity the least. The ensemble model's three
# rankings weigh the same as the first model's (1.5 times as much scored 0.005 higher on dev: not worth a knob).
WEIGHTS = {"chunk": 0.6, "window": 0.8, "sentence": 1.0, "bm25": 1.2}


@dataclass(frozen=True)
class Lexicon:
    expansions: dict[str, str]
    topic_words: frozenset[str]
    common_words: frozenset[str]
    specialist_terms: tuple[str, ...] = ()
    _pattern: re.Pattern | None = None

    @classmethod
    def load(cls, path=None) -> "Lexicon":
        data = load_yaml(path or DATA_DIR / "lexicon.yaml")
        expansions = {str(k).lower(): str(v) for k, v in (data.get("expansions") or {}).items()}
        keys = sorted(expansions, key=len, reverse=True)  # longest phrase wins where several start
        pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(map(re.escape, keys)) + r")(?![^\W_])") if keys else None
        return cls(
            expansions=expansions,
            topic_words=frozenset(w.lower() for w in data.get("topic_words") or []),
            common_words=frozenset(w.lower() for w in data.get("common_words") or []),
            specialist_terms=tuple(str(w).lower() for w in data.get("specialist_terms") or []),
            _pattern=pattern,
        )

    def expand(self, text: str) -> list[str]:
        if self._pattern is None:
            return []
        return list(dict.fromkeys(self.expansions[m.group(0)] for m in self._pattern.finditer(text)))


@lru_cache(maxsize=1)
def stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    extra = {"im", "i'm", "ive", "i've", "dont", "don't", "can't", "cant", "get", "got", "really", "should", "would",
             "could", "much", "many", "bit", "lot", "thing", "things", "anything", "something", "ok", "okay",
             "please", "thanks", "hi", "hello", "hey", "also", "just", "like", "yeah", "lol", "tell", "know", "want",
             "need", "go", "going", "make", "makes", "making", "way", "ways", "best", "better", "good", "bad", "well",
             "actually", "actual", "even", "use", "using", "say", "says", "said", "keep", "keeps", "take", "give",
             "people", "person", "time", "times", "work", "works", "other", "others", "try", "trying", "supposed",
             "meant", "reckon", "sort", "kind", "type", "types", "stuff", "guys", "anyone", "someone", "does",
             "worth", "normal", "okay", "fine", "sure", "mean", "means", "thing", "able", "seem", "seems"}
    return frozenset(STOPWORDS_EN_PLUS) | extra


def _looks_foreign(tokens: Sequence[str]) -> bool:
    """Most words are clearly commoner in another language than in English."""
    from wordfreq import zipf_frequency

    longer = [t for t in tokens if len(t) >= 3 and t.isalpha()]
    if len(longer) < 2:
        return False
    votes = 0
    for t in longer:
        english = zipf_frequency(t, "en", wordlist="small")
        other = max(zipf_frequency(t, lang, wordlist="small") for lang in OTHER_LANGUAGES)
        votes += other >= english + 1.0
    return votes * 2 > len(longer)


def words(text: str) -> list[str]:
    return [w.replace("\u2019", "'") for w in _WORD.findall(text.lower())]


def strip_markup(text: str) -> str:
    return " ".join(_TAG.sub(" ", text).split())


@dataclass
class Query:
    """What retrieval made of one message."""

    message: str
    text: str
    expansions: list[str]
    content_words: list[str]
    keywords: list[str]
    uncovered_terms: list[str]
    on_topic_words: list[str]
    foreign: bool = False
    followup_of: str | None = None
    # the safety screen's clauses of this message, when they stand for the whole question: the mean of
    # their vectors is the query vector, so one pass of the model serves both (a second pass over the
    # same words would cost as much as the first on this CPU)
    shared_texts: tuple[str, ...] = ()

    @property
    def dense_text(self) -> str:
        if self.foreign and self.expansions:
            # the model is English-only: embed the English words the question was mapped to
            return " ".join(self.expansions)
        return " ".join([self.text, *self.expansions]).strip()



@dataclass
class Retrieved:
    query: Query
    contexts: list[Context]
    chunk_rows: list[int]
    query_vector: np.ndarray
    best_similarity: float
    second_vector: np.ndarray | None = None  # the query as the ensemble model embeds it


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: Settings, lexicon: Lexicon | None = None,
                 second: Embedder | None = None) -> None:
        import bm25s

        if not len(index):
            raise ValueError("the index is empty: nothing to retrieve from")
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.lexicon = lexicon or Lexicon.load()
        self._lock = threading.Lock()

        self.chunk_ids = index.ids["chunk"]
        self.chunk_meta = index.metas["chunk"]
        self.chunk_text = index.texts["chunk"]
        self.chunk_vecs = index.vectors["chunk"]
        row_of = {cid: i for i, cid in enumerate(self.chunk_ids)}
        self.window_chunk = np.array([row_of[m["chunk_id"]] for m in index.metas["window"]], dtype=np.int64)
        self.window_vecs = index.vectors["window"]
        self.sentence_chunk = np.array([row_of[m["chunk_id"]] for m in index.metas["sentence"]], dtype=np.int64)
        self.sentence_vecs = index.vectors["sentence"]
        # the ensemble model, when the index holds its vectors
        self.second = second if second is not None and index.second is not None else None

        docs = [f"{m['section']} {t}" for m, t in zip(self.chunk_meta, self.chunk_text)]
        doc_tokens = [self._stem(self._index_words(d)) for d in docs]
        self.bm25 = bm25s.BM25()
        self.bm25.index(doc_tokens, show_progress=False)

        vocab: set[str] = set()
        for d in docs + [m["title"] for m in self.chunk_meta]:
            vocab.update(words(d))
        for value in self.lexicon.expansions.values():
            vocab.update(words(value))
        vocab.update(self.lexicon.expansions)
        self.vocab = frozenset(vocab)
        self._vocab_list = sorted(w for w in vocab if len(w) >= 3 and w.isalpha())
        self._vocab_stems = frozenset(self._stem(sorted(vocab)))
        self._duplicate_of = self._near_duplicates()
        self._repeat_mask = self._repeated_sentences(index)
        corpus_words = words(" ".join(docs))
        word_set, joined = set(corpus_words), f" {' '.join(corpus_words)} "
        self._uncovered = tuple(
            t for t in self.lexicon.specialist_terms
            if (f" {' '.join(words(t))} " not in joined if " " in t or "-" in t else t not in word_set)
        )
        self.correct("warmup")  # loads the word-frequency tables now, not on the first question

    # ------------------------------------------------------------ query analysis

    def knows(self, word: str) -> bool:
        """The corpus or the lexicon uses this word, in some inflection ("belts" for "belt"), or a
        longer word it begins ("spondylo-" of "spondylolisthesis", half-remembered)."""
        if word in self.vocab or self._stem([word])[0] in self._vocab_stems:
            return True
        if len(word) < 6:
            return False
        i = bisect.bisect_left(self._vocab_list, word)
        return i < len(self._vocab_list) and self._vocab_list[i].startswith(word)

    def _index_words(self, text: str) -> list[str]:
        stop = _stopwords()
        return [w for w in words(text) if w not in stop]

    def _stem(self, tokens: Sequence[str]) -> list[str]:
        return stemmer().stemWords(list(tokens)) if tokens else []

    def correct(self, token: str) -> str:
        """Map a misspelt word onto the corpus vocabulary when it is not an English word."""
        if token in self.vocab or len(token) < 3 or not token.isalpha():
            return token
        from rapidfuzz import fuzz, process
        from wordfreq import zipf_frequency

        if zipf_frequency(token, "en", wordlist="small") >= 2.0:
            return token
        match = process.extractOne(token, self._vocab_list, scorer=fuzz.ratio, score_cutoff=80)
        return match[0] if match else token

    def analyse(self, message: str, history: Sequence[Turn] = ()) -> Query:
        text = strip_markup(message)
        tokens = words(text)
        corrected = [self.correct(t) for t in tokens]
        if corrected != tokens:
            fixes = dict(zip(tokens, corrected))
            text = _WORD.sub(lambda m: fixes.get(m.group(0).lower().replace("\u2019", "'"), m.group(0)), text)
        lowered = " ".join(corrected)
        expansions = self.lexicon.expand(lowered)
        stop = _stopwords()
        content = [w for w in corrected if w not in stop and w not in self.lexicon.common_words]
        foreign = _looks_foreign(tokens)
        unquoted = " ".join(words(outside_quotes(text)))  # what someone said ('brace your core') is not asked
        uncovered = [t for t in self._uncovered if re.search(rf"(?<![^\W_]){re.escape(t)}(?![^\W_])", unquoted)]
        on_topic = [w for w in corrected if self._is_topic_word(w)]
        if "back" in on_topic and "back" not in words(without_object_backs(lowered)):
            on_topic = [w for w in on_topic if w != "back"]  # a back garden is not a back
        query = Query(
            message=message,
            text=text,
            expansions=expansions,
            content_words=content,
            keywords=[],
            uncovered_terms=uncovered,
            on_topic_words=on_topic,
            foreign=foreign,
        )
        previous = self._followup_context(lowered, content, history)
        if previous is not None:
            prev = self.analyse(previous)
            query.followup_of = previous
            query.text = f"{prev.text} {query.text}"
            query.expansions = list(dict.fromkeys(prev.expansions + query.expansions))
            query.content_words = list(dict.fromkeys(prev.content_words + query.content_words))
            query.on_topic_words = list(dict.fromkeys(prev.on_topic_words + query.on_topic_words))
            query.uncovered_terms = list(dict.fromkeys(prev.uncovered_terms + query.uncovered_terms))
        kw = [w for w in query.content_words] + [w for e in query.expansions for w in words(e)]
        query.keywords = [k for k in self._stem(kw) if k in self.bm25.vocab_dict]
        return query

    def _is_topic_word(self, word: str) -> bool:
        if word in self.lexicon.topic_words:
            return True
        return len(word) >= 5 and any(word.startswith(t) for t in self.lexicon.topic_words if len(t) >= 5)

    def _followup_context(self, lowered: str, content: list[str], history: Sequence[Turn]) -> str | None:
        """A follow-up is read together with the last user question it depends on."""
        previous = next((t.content for t in reversed(history) if t.role == "user" and t.content.strip()), None)
        if not previous:
            return None
        short = len(content) <= 3
        refers = bool(_FOLLOWUP_START.search(lowered)) or bool(_ANAPHORA.search(lowered))
        if (short and refers) or len(content) <= 1:
            return previous
        return None

    # ------------------------------------------------------------ ranking

    def _near_duplicates(self) -> dict[int, int]:
        """Rows whose text is a near copy of an earlier row: kept out of the ranking."""
        sims = self.chunk_vecs @ self.chunk_vecs.T
        dup: dict[int, int] = {}
        for i in range(len(sims)):
            for j in range(i):
                if j not in dup and sims[i, j] >= 0.97:
                    dup[i] = j
                    break
        return dup

    def _repeated_sentences(self, index: LoadedIndex) -> np.ndarray:
        """True for a sentence that repeats an earlier one (articles restate themselves in summaries);
        only the first copy counts, so the repeat does not pull its passage up a second time."""
        vecs = self.sentence_vecs
        sims = vecs @ vecs.T
        np.fill_diagonal(sims, 0.0)
        repeated = np.zeros(len(vecs), dtype=bool)
        for i in range(len(vecs)):
            earlier = sims[i, :i] >= 0.95
            repeated[i] = bool(earlier.any()) and index.metas["sentence"][i].get("is_item") is False
        return repeated

    def embed(self, query: Query) -> np.ndarray:
        if query.shared_texts:
            mean = self.embedder.encode(list(query.shared_texts)).mean(axis=0)
            return mean / max(float(np.linalg.norm(mean)), 1e-12)
        return self.embedder.encode([query.dense_text])[0]

    def _dense(self, qv: np.ndarray, chunks: np.ndarray, windows: np.ndarray, sentences: np.ndarray) -> dict[str, np.ndarray]:
        """Per passage: its own similarity, its best window's and its best sentence's."""
        window_sim = np.full(len(self.chunk_ids), -1.0, dtype=np.float32)
        np.maximum.at(window_sim, self.window_chunk, np.where(self._repeat_mask, -1.0, windows @ qv))
        sentence_sim = np.full(len(self.chunk_ids), -1.0, dtype=np.float32)
        np.maximum.at(sentence_sim, self.sentence_chunk, np.where(self._repeat_mask, -1.0, sentences @ qv))
        return {"chunk": chunks @ qv, "window": window_sim, "sentence": sentence_sim}

    def retrieve(self, query: Query, k: int | None = None, vector: np.ndarray | None = None) -> Retrieved:
        k = k or self.settings.top_k
        qv = vector if vector is not None else self.embed(query)

        first = self._dense(qv, self.chunk_vecs, self.window_vecs, self.sentence_vecs)
        chunk_sim, window_sim, sentence_sim = first["chunk"], first["window"], first["sentence"]
        rankings = list(first.items())
        second_qv = None
        if self.second is not None:
            vectors = self.index.second
            second_qv = self.second.encode([query.dense_text])[0]
            rankings += self._dense(second_qv, vectors["chunk"], vectors["window"], vectors["sentence"]).items()
        if query.keywords:
            rankings.append(("bm25", self.bm25.get_scores(query.keywords)))

        fused = np.zeros(len(self.chunk_ids), dtype=np.float64)
        for name, scores in rankings:
            if not WEIGHTS[name] or (name == "bm25" and not np.any(scores > 0)):
                continue
            order = np.argsort(-scores, kind="stable")
            ranks = np.empty(len(order), dtype=np.float64)
            ranks[order] = np.arange(1, len(order) + 1)
            fused += WEIGHTS[name] / (RRF_K + ranks)
        for dup in self._duplicate_of:
            fused[dup] = -1.0
        order = np.argsort(-fused, kind="stable")[:k]
        best = float(window_sim.max())
        contexts = [
            Context(
                chunk_id=self.chunk_ids[i],
                source=self.chunk_meta[i]["source"],
                title=self.chunk_meta[i]["title"],
                section=self.chunk_meta[i]["section"],
                text=self.chunk_text[i],
                score=float(max(window_sim[i], chunk_sim[i], sentence_sim[i])),
            )
            for i in order
        ]
        return Retrieved(
            query=query,
            contexts=contexts,
            chunk_rows=[int(i) for i in order],
            query_vector=qv,
            best_similarity=best,
            second_vector=second_qv,
        )
