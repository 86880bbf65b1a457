"""The public API: ``Assistant`` (load once, call from many threads) and ``answer()``."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Sequence

from .chain import Turnstate, build_chain, pipeline_steps, run_pipeline
from .compose import (DISCLAIMER, NOT_A_DOCTOR_TEXT, OUT_OF_SCOPE_TEXT, Composer, near_topic_text, no_answer_text,
                      small_talk_reply)
from .embeddings import Embedder, get_embedder
from .errors import CorpusError, StoreError
from .models import Thresholds
from .results import AnswerResult, Citation, Context
from .retrieval import Retriever, strip_markup, words
from .safety import INFO_REQUEST_NOTE, SafetyScreen, red_flag_reply
from .scope import ScopeJudge, without_sign_off
from .settings import Settings, get_settings
from .store import REBUILD_HINT, LoadedIndex, Store
from .validation import validate_history, validate_message

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

log = logging.getLogger(__name__)

WARNING_SIGNS_QUERY = (
    "when to seek medical advice: warning signs such as severe unrelenting pain, numbness or weakness "
    "in the legs, bowel or bladder dysfunction; consult your healthcare provider"
)
ENGLISH_ONLY_NOTE = "_My sources are in English, so here is what they say:_"


class Assistant:
    """Loads the model, the store and the rules once; ``answer`` is safe to call from many threads."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        ensure_index: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        self.settings = settings or get_settings()
        self.embedder = embedder or get_embedder(self.settings)
        self.thresholds = Thresholds.load(self.embedder.spec)
        self._share_clauses = bool(self.embedder.spec and self.embedder.spec.share_clause_vectors)
        chosen = self.settings.min_relevance
        self._min_relevance = self.thresholds.min_relevance if chosen is None else chosen
        second = self.settings.ensemble_settings()
        self.retriever = Retriever(self._load_index(ensure_index), self.embedder, self.settings,
                                   second=get_embedder(second) if second else None)
        self.scope = ScopeJudge(self.retriever.chunk_text, self.retriever.knows,
                                lambda w: self.embedder.count_tokens(w) - 2,  # less [CLS] and [SEP]
                                self.retriever.correct)
        self.composer = Composer(self.retriever, max_sentences=self.settings.max_answer_sentences)
        self.safety = SafetyScreen(self.embedder, thresholds=self.thresholds)
        self._warning_contexts = self._find_warning_passages()
        self._steps = pipeline_steps(self)
        self._chain: Runnable | None = None
        self._chain_lock = threading.Lock()
        self.answer("Is walking good for back pain?")  # warm every code path once
        self.load_seconds = time.perf_counter() - t0
        log.info("assistant ready in %.1fs (%d passages)", self.load_seconds, len(self.retriever.chunk_ids))

    def _load_index(self, ensure_index: bool) -> LoadedIndex:
        """The index, whole: one left half-built (a build killed part-way) is repaired from the
        corpus once; one that is still broken, or empty, stops here with what to do."""
        store = Store(self.settings, self.embedder)
        if ensure_index:
            store.sync(progress=True)
        records = store.load_records()
        problems = records.problems()
        if problems:
            log.warning("the index is incomplete (%s): repairing it from %s", "; ".join(problems), self.settings.corpus_dir)
            store.sync(progress=False)
            records = store.load_records()
            problems = records.problems()
            if problems:
                raise StoreError(f"the index is inconsistent ({'; '.join(problems)}): {REBUILD_HINT}")
        if not len(records):
            raise CorpusError(
                f"the index is empty: there is no readable document in {self.settings.corpus_dir}. Add .md, .txt, "
                ".html or .pdf files there (or point BACKPAIN_CORPUS_DIR at them) and run `backpain index`"
            )
        return records

    # ------------------------------------------------------------ public

    def answer(self, question: Any, history: Sequence[Any] | None = None) -> AnswerResult:
        return run_pipeline(self._steps, {"question": question, "history": history})

    def as_runnable(self) -> "Runnable":
        """The same pipeline as a LangChain runnable (invoke, batch, stream), built on first use."""
        with self._chain_lock:
            if self._chain is None:
                self._chain = build_chain(self._steps)
            return self._chain

    # ------------------------------------------------------------ pipeline steps (see chain.py)

    def step_validate(self, state: Turnstate) -> Turnstate:
        checked = validate_message(state.message, self.settings.max_message_chars)
        if not checked.ok:
            state.result = AnswerResult(kind="invalid_input", text=checked.problem)
            return state
        state.text = checked.text
        state.history = validate_history(state.raw_history, self.settings.max_history_turns, self.settings.max_history_chars)
        return state

    def step_safety(self, state: Turnstate) -> Turnstate:
        query = self.retriever.analyse(state.text, state.history)
        clauses = self.safety.sentences(state.text)
        if self._share_clauses and clauses and query.followup_of is None and not query.foreign:
            query.shared_texts = tuple(clauses)
        # one model call for everything this message needs; the embedder caches each text
        self.embedder.encode(clauses if query.shared_texts else [*clauses, query.dense_text])
        state.query = query
        state.safety = self.safety.assess(state.text, state.history)
        if state.safety.flagged:
            state.result = self._red_flag_result(state)
        return state

    def step_retrieve(self, state: Turnstate) -> Turnstate:
        query = state.query
        retrieved = self.retriever.retrieve(query)
        state.retrieved = retrieved
        contexts = retrieved.contexts
        scope = self.scope.judge(query.text, words(strip_markup(without_sign_off(query.message))), query.foreign)
        # what the sources do not cover: named terms, or a figure the top passages never give. A question
        # about warning signs may name a syndrome the warning-sign passages describe without naming it.
        named = [t for t in scope.terms if not (state.safety.info_request and t in scope.rare_words)]
        uncovered = list(dict.fromkeys(query.uncovered_terms + named)) or self.scope.missing_figure(
            query.text, [c.text for c in contexts[:3]])
        if scope.verdict == "not_a_doctor":
            state.result = self._out_of_scope(state, NOT_A_DOCTOR_TEXT, "not_a_doctor")
        elif scope.verdict == "out_of_scope":
            state.result = self._out_of_scope(state, near_topic_text(scope.terms, scope.helped_by), "near_topic")
        elif (not state.safety.info_request and not query.on_topic_words
              and retrieved.best_similarity < self.thresholds.off_topic):
            chat = small_talk_reply(state.text)
            state.result = self._out_of_scope(state, chat or OUT_OF_SCOPE_TEXT, "small_talk" if chat else "off_topic")
        elif uncovered:
            state.result = self._no_answer(state, contexts, uncovered)
        elif self._about_warning_signs(state):
            return state  # a question about warning signs is answered from the warning-sign passages
        elif retrieved.best_similarity < self._min_relevance:
            state.result = self._no_answer(state, contexts, [])
        return state

    def step_compose(self, state: Turnstate) -> Turnstate:
        retrieved = state.retrieved
        if self._about_warning_signs(state):
            composition = self.composer.quote_passages(self._warning_contexts)
        else:
            composition = self.composer.compose(retrieved, retrieved.contexts)
        if not composition.citations:
            state.result = self._no_answer(state, retrieved.contexts, [])
            return state
        parts = [composition.text]
        if retrieved.query.foreign:
            parts.insert(0, ENGLISH_ONLY_NOTE)
        if state.safety.info_request:
            parts.append(INFO_REQUEST_NOTE)
        parts.append(DISCLAIMER)
        state.result = AnswerResult(
            kind="answer",
            text="\n\n".join(parts),
            answer_text=composition.text,
            citations=composition.citations,
            safety=state.safety,
            contexts=retrieved.contexts,
        )
        return state

    # ------------------------------------------------------------ helpers

    def _out_of_scope(self, state: Turnstate, text: str, reason: str) -> AnswerResult:
        return AnswerResult(kind="out_of_scope", text=text, safety=state.safety, contexts=state.retrieved.contexts,
                            reason=reason)

    def _no_answer(self, state: Turnstate, contexts: list[Context], terms: list[str]) -> AnswerResult:
        return AnswerResult(
            kind="no_answer",
            text=f"{no_answer_text(contexts, terms)}\n\n{DISCLAIMER}",
            safety=state.safety,
            contexts=contexts,
        )

    def _about_warning_signs(self, state: Turnstate) -> bool:
        """The screen reads a message as asking about warning signs from its wording ("what are the signs",
        "I'm a student", "if someone ..."); the warning-sign passages answer it only when the question's own
        retrieval finds them too. A student asking about a laptop bag gets the passages about bags."""
        if not (state.safety.info_request and self._warning_contexts):
            return False
        found = {c.chunk_id for c in state.retrieved.contexts[:3]}
        return any(c.chunk_id in found for c in self._warning_contexts)

    def _find_warning_passages(self) -> list[Context]:
        query = self.retriever.analyse(WARNING_SIGNS_QUERY)
        found = self.retriever.retrieve(query, k=3)
        return [c for c in found.contexts if c.score >= self.thresholds.warning_passage][:2]

    def _red_flag_result(self, state: Turnstate) -> AnswerResult:
        citations = [
            Citation(n=i, title=c.title, source=c.source, section=c.section, quote=c.text, score=c.score)
            for i, c in enumerate(self._warning_contexts, start=1)
        ]
        text = red_flag_reply(state.safety)
        if citations:
            refs = " ".join(f"[{c.n}]" for c in citations)
            text += f"\n\nMy sources list warning signs like these as reasons to see a professional {refs}."
        return AnswerResult(
            kind="red_flag",
            text=f"{text}\n\n{DISCLAIMER}",
            citations=citations,
            safety=state.safety,
            contexts=list(self._warning_contexts),
        )


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant(ensure_index=True)
        return _default


def answer(question: Any, history: Sequence[Any] | None = None) -> AnswerResult:
    """Answer with the shared default assistant (built on first use from the default settings)."""
    return default_assistant().answer(question, history)
