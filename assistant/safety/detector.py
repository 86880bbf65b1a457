"""The learned red-flag detector: a small neural network (scikit-learn's MLPClassifier, one hidden
layer) over the sentence vectors the pipeline already computes, trained at start-up from the
labelled examples in ``data/red_flag_examples/``.

Rules only see the wordings someone wrote a pattern for; the classifier generalises over the ways
people describe the same thing (no "numb" in "can't feel the loo paper"). It scores every clause,
every sentence of several clauses and the whole message; the rules' scoping (negated, past,
hypothetical, educational) is applied to the clause that carries the signal, exactly as for a
lexicon match. So it learns at both levels:
whole messages, single-clause fragments (``fragments_*.toml``), the clauses of ordinary messages as
negatives, and the red-flag clause of each long red-flag example as a positive.

Training is deterministic (fixed seed and data order) and takes about 1-2 s on two cores. The
example vectors are embedded once and kept in the on-disk vector cache, and the fitted weights are
kept as plain arrays in the cache folder under a hash of everything they depend on (model, rules,
examples, architecture), so a restart loads them; nothing fitted is ever committed. On the dev sets a logistic regression over the same vectors caught fewer emergencies
at equal false alarms (benchmarks/safety.py prints both ways of measuring).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..embeddings import Embedder
from ..models import Thresholds
from ..settings import DATA_DIR
from .analysis import Analyser, Analysis
from .matcher import Mention, RuleMatcher
from .rules import LEVEL_RANK, Concept, Rules

log = logging.getLogger(__name__)

EXAMPLES_DIR = DATA_DIR / "red_flag_examples"
LEVELS = ("none", "urgent", "emergency")
NEGATIVE_KINDS = frozenset(
    {"idiom", "negation", "resolved_past", "hypothetical", "educational", "exertion", "benign_third_person", "ordinary"}
)
HARD_NEGATIVE_KINDS = NEGATIVE_KINDS - {"ordinary"}


@dataclass(frozen=True)
class Example:
    text: str
    level: str
    concept: str  # the example file's concept id
    category: str  # the rules' concept id it raises (reasons and reply labels); "" for level none
    kind: str
    register: str
    source_file: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def load_examples(folder: Path = EXAMPLES_DIR, categories: set[str] | None = None) -> list[Example]:
    """Every example in the folder's TOML files, checked: a broken file fails at start-up, loudly."""
    out: list[Example] = []
    seen: set[str] = set()
    for path in sorted(folder.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for c in data.get("concept", []):
            cid, level, kind = str(c["id"]), str(c["level"]), str(c.get("kind", ""))
            where = f"{path.name}: concept {cid!r}"
            if cid in seen:
                raise ValueError(f"{where} is defined twice")
            seen.add(cid)
            if level not in LEVELS:
                raise ValueError(f"{where}: level must be one of {LEVELS}")
            category = str(c.get("category", ""))
            if level == "none":
                if kind not in NEGATIVE_KINDS:
                    raise ValueError(f"{where}: kind must be one of {sorted(NEGATIVE_KINDS)}")
            elif categories is not None and category not in categories:
                raise ValueError(f"{where}: category {category!r} is not a concept of red_flags.yaml")
            for register, texts in (c.get("examples") or {}).items():
                for text in texts:
                    out.append(Example(" ".join(str(text).split()), level, cid, category, kind, register, path.name))
    if not out:
        raise ValueError(f"no red-flag training examples in {folder}")
    return out


# Chosen on the dev sets (benchmarks/safety.py): wider or longer-trained networks scored no better
# and broke the 2 s training budget (30 epochs took 2.35 s on 4,999 examples plus their clauses;
# 20 epochs at a slightly higher rate took 1.4-1.6 s and scored the same within noise).
HIDDEN_UNITS = 96
EPOCHS = 20
BATCH = 512
LEARNING_RATE = 4e-3
L2 = 1e-3
# a red-flag example's clause this close to an ordinary clause or message is not taught as a red flag
ORDINARY_LOOKALIKE = 0.8
ARCHITECTURE = (HIDDEN_UNITS, EPOCHS, BATCH, LEARNING_RATE, L2, ORDINARY_LOOKALIKE)
# the kinds of ordinary text a red flag must read less like than like a red-flag example; hard
# negatives (negated, past, hypothetical, idioms) are left out: they share a red flag's wording and
# the rules' scoping deals with them
LOOKALIKE_KINDS = frozenset({"ordinary", "exertion"})


@dataclass
class _Model:
    """The fitted network as plain arrays: one hidden ReLU layer, softmax over LEVELS."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    positives: np.ndarray  # (dim, n_pos) training vectors of the red-flag examples
    positive_categories: np.ndarray  # (n_pos,) rules concept ids
    positive_levels: np.ndarray  # (n_pos,) LEVEL_RANK of each
    lookalikes: np.ndarray  # (dim, n) ordinary messages and their clauses (kinds in LOOKALIKE_KINDS)
    train_seconds: float

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = np.maximum(x @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        """Arrays only (no pickle), written atomically: a cache, never committed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, train_seconds=np.float64(self.train_seconds),
                 **{k: getattr(self, k) for k in ("w1", "b1", "w2", "b2", "positives", "positive_categories", "positive_levels", "lookalikes")})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "_Model":
        with np.load(path, allow_pickle=False) as z:
            fields = {k: z[k] for k in z.files}
        fields["train_seconds"] = float(fields["train_seconds"])
        return cls(**fields)


_models: dict[str, _Model] = {}
_models_lock = threading.Lock()


def train(embedder: Embedder, analyser: Analyser, examples: list[Example]) -> _Model:
    """Fit on the examples as the screen will see them (normalised, idioms blanked), at message and
    at clause level."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    prepared = [analyser.prepare(e.text) for e in examples]
    texts = [a.message_text or (a.unit_texts[0] if a.unit_texts else a.text) for a in prepared]
    labels = np.asarray([LEVELS.index(e.level) for e in examples])
    # the screen also scores single clauses: every clause of a message with no red flag is itself
    # ordinary, so those clauses teach that "and my back aches" alone is not a red flag
    ordinary_units = {u for e, a in zip(examples, prepared) if e.level == "none" for u in a.unit_texts}
    pieces = sorted(ordinary_units - set(texts))
    x = _settled(embedder.encode_uncached(texts + pieces))
    clause_x, clause_y = _red_flag_clauses(embedder, examples, prepared, labels, ordinary_units,
                                           x[: len(texts)], x[len(texts):])
    x_all = np.vstack([x, clause_x])
    y_all = np.concatenate([labels, np.zeros(len(pieces), dtype=int), clause_y])
    t0 = time.perf_counter()
    network = MLPClassifier(
        hidden_layer_sizes=(HIDDEN_UNITS,), alpha=L2, batch_size=BATCH, learning_rate_init=LEARNING_RATE,
        max_iter=EPOCHS, random_state=0,
    )
    # training is the one large matrix job: it may use every inference thread (answers use one)
    with warnings.catch_warnings(), threadpool_limits(limits=embedder.settings.inference_threads, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
        network.fit(x_all, y_all)
    seconds = time.perf_counter() - t0
    pos = labels > 0
    # ordinary messages and their clauses: every one is already a row of x (a message or a piece)
    row_of = {t: i for i, t in enumerate(texts + pieces)}
    lookalike = [i for i, e in enumerate(examples) if e.level == "none" and e.kind in LOOKALIKE_KINDS]
    lookalike_units = sorted({u for i in lookalike for u in prepared[i].unit_texts})
    lookalikes = x[lookalike + [row_of[u] for u in lookalike_units]]
    log.info("red-flag detector trained on %d examples (+%d ordinary clauses, +%d red-flag clauses) in %.2fs",
             len(examples), len(pieces), len(clause_y), seconds)
    return _Model(
        w1=network.coefs_[0].astype(np.float32),
        b1=network.intercepts_[0].astype(np.float32),
        w2=network.coefs_[1].astype(np.float32),
        b2=network.intercepts_[1].astype(np.float32),
        positives=np.ascontiguousarray(x[: len(texts)][pos].T),
        positive_categories=np.asarray([e.category for e in examples if e.level != "none"]),
        positive_levels=labels[pos],
        lookalikes=np.ascontiguousarray(lookalikes.T),
        train_seconds=seconds,
    )


def _red_flag_clauses(
    embedder: Embedder,
    examples: list[Example],
    prepared: list[Analysis],
    labels: np.ndarray,
    ordinary_units: set[str],
    messages: np.ndarray,
    ordinary: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The clause that carries the red flag in each multi-clause red-flag example, with its label.

    In a long message the sign sits in one clause ("... and this morning my bits feel like they
    belong to someone else ..."), and the screen scores that clause alone, so the network must see
    such clauses as red flags; otherwise it learns that any short text is ordinary. The examples do
    not mark the clause, so it is chosen as the one nearest its concept's centre and farthest from
    ordinary clauses, and dropped when it reads like an ordinary clause ("my back is agony")."""
    concepts = np.asarray([e.concept for e in examples])
    ordinary_all = np.vstack([ordinary, messages[labels == 0]])
    ordinary_centre = _unit(ordinary.mean(axis=0))
    candidates = [
        (i, [u for u in a.unit_texts if u not in ordinary_units])
        for i, (e, a) in enumerate(zip(examples, prepared))
        if e.level != "none" and len(a.unit_texts) > 1
    ]
    clauses = sorted({u for _, units in candidates for u in units})
    none_found = np.zeros((0, messages.shape[1]), dtype=messages.dtype), np.zeros(0, dtype=int)
    if not clauses:
        return none_found
    vector_of = dict(zip(clauses, _settled(embedder.encode_uncached(clauses))))
    centres = {c: _unit(messages[concepts == c].mean(axis=0)) for c in set(concepts[labels > 0])}
    out_x, out_y = [], []
    for i, units in candidates:
        if not units:
            continue
        v = np.stack([vector_of[u] for u in units])
        lookalike = (v @ ordinary_all.T).max(axis=1)
        margin = v @ centres[concepts[i]] - v @ ordinary_centre
        best = int(np.argmax(margin))
        if margin[best] > 0 and lookalike[best] < ORDINARY_LOOKALIKE:
            out_x.append(v[best])
            out_y.append(labels[i])
    return (np.stack(out_x), np.asarray(out_y)) if out_x else none_found


def _settled(x: np.ndarray) -> np.ndarray:
    """Vectors rounded to 3 decimals before training. An embedding differs in its last bits with the
    batch it was computed in (padding), and vectors come from a disk cache filled at other times, so
    unrounded inputs made the network, trained for a fixed number of epochs, land somewhere else on
    every machine: dev false alarms varied from 0.010 to 0.049 with the same data."""
    return np.round(x, 3).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


# the code that turns an example into what the network sees: a change to it changes the weights
_TRAINING_CODE = ("normalise.py", "analysis.py", "detector.py")


def data_version(embedder: Embedder, rules_text: str, examples: list[Example]) -> str:
    """Changes whenever anything the fitted weights depend on changes, code included."""
    h = hashlib.sha256()
    for part in (embedder.model_name, embedder.precision, rules_text, repr(ARCHITECTURE)):
        h.update(part.encode())
    for name in _TRAINING_CODE:
        h.update((Path(__file__).parent / name).read_bytes())
    for e in examples:
        h.update(f"{e.level}\t{e.category}\t{e.text}\n".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Signal:
    """The detector's view of one message: its strongest clause per tier after scoping."""

    emergency: float  # highest P(emergency) of a clause (or the whole message) not scoped away
    mentions: tuple[Mention, ...]


NO_SIGNAL = Signal(0.0, ())


class Detector:
    def __init__(
        self,
        embedder: Embedder,
        rules: Rules,
        matcher: RuleMatcher,
        analyser: Analyser,
        rules_text: str = "",
        examples_dir: Path = EXAMPLES_DIR,
    ) -> None:
        self.embedder = embedder
        self.matcher = matcher
        self._concepts = {c.id: c for c in rules.concepts}
        self.examples = load_examples(examples_dir, set(self._concepts))
        self.thresholds: Thresholds | None = None
        self.version = data_version(embedder, rules_text, self.examples)
        self._model = self._fitted(analyser)

    def _fitted(self, analyser: Analyser) -> _Model:
        """Trained once per data version: weights are kept in memory and in the cache folder (plain
        arrays), so a restart loads them instead of training again."""
        path = self.embedder.settings.cache_dir / "detector" / f"{self.version}.npz"
        with _models_lock:
            if self.version not in _models:
                try:
                    _models[self.version] = _Model.load(path)
                except (OSError, ValueError, KeyError, TypeError):
                    model = train(self.embedder, analyser, self.examples)
                    try:
                        model.save(path)
                    except OSError as exc:  # a read-only cache only costs a retrain next time
                        log.warning("could not keep the red-flag detector in %s: %s", path, exc)
                    _models[self.version] = model
            return _models[self.version]

    def set_thresholds(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds

    @property
    def train_seconds(self) -> float:
        return self._model.train_seconds

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 3) probabilities over LEVELS."""
        return self._model.probabilities(self.embedder.encode(texts))

    def signal(self, a: Analysis, lexicon_hits: list[Mention]) -> Signal:
        """Scores every clause and the whole message; a clause the rules' scoping puts in the past,
        negates or marks as a question does not count. A clause whose words the lexicon already
        flagged at the same or a higher tier adds nothing."""
        assert self.thresholds is not None
        units = list(a.units)
        texts, groups = a.scored()
        if not texts:
            return NO_SIGNAL
        vectors = self.embedder.encode(texts)
        p = self._model.probabilities(vectors)
        p_any = p[:, 1] + p[:, 2]
        t = self.thresholds
        best_e = 0.0
        mentions: list[Mention] = []
        unit_p = p[: len(units)]
        order = sorted(range(len(texts)), key=lambda i: -float(p_any[i]))
        done: set[str] = set()
        for i in order:
            if p_any[i] < min(t.safety_any, t.safety_unsure, t.safety_emergency):
                break
            # a sentence or the whole message is scoped through its strongest clause
            lo, hi = groups[i]
            ui = lo + int(np.argmax(unit_p[lo:hi, 1] + unit_p[lo:hi, 2]))
            s, e = units[ui]
            if self._elsewhere(a.unit_texts[ui]):
                continue
            level = "emergency" if p[i, 2] >= t.safety_emergency else "urgent"
            concept, support = self._concept_for(vectors[i], level)
            if concept is None or support < t.safety_support or not self._sides_agree(concept, a):
                continue
            # the network extrapolates: a text nearer an ordinary message than any red-flag example
            # is taken as ordinary ("this back pain is", "she's seeing her doctor")
            if support - float((vectors[i] @ self._model.lookalikes).max()) < t.safety_margin:
                continue
            status = self.matcher.status(a, concept, s, e, inside=True)
            m = Mention(concept, s, e, status, "learned", float(p[i, 2] if level == "emergency" else p_any[i]))
            if not m.raises:
                mentions.append(m)
                continue
            best_e = max(best_e, float(p[i, 2]))
            raised = level == "emergency" or p_any[i] >= t.safety_any
            explained = max((LEVEL_RANK[h.concept.level] for h in lexicon_hits if h.start < e and s < h.end), default=0)
            if not raised or explained >= LEVEL_RANK[level] or concept.id in done:
                continue
            done.add(concept.id)
            mentions.append(m)
        return Signal(best_e, tuple(mentions))

    def _elsewhere(self, clause: str) -> bool:
        """A clause about the hands or wrists alone ("my hands go numb when I knit") is not a back red
        flag, however close its wording is to one; the rules still read it."""
        rules = self.matcher.rules
        if rules.away_sites is None or not rules.away_sites.search(clause):
            return False
        return rules.flag_sites is None or not rules.flag_sites.search(clause)

    def _sides_agree(self, concept: Concept, a: Analysis) -> bool:
        """A both-legs concept the model reads into a one-leg message is the one-sided kind."""
        both = self.matcher.rules.both_sides
        return not concept.id.startswith("bilateral") or both is None or bool(both.search(a.text))

    def _concept_for(self, vector: np.ndarray, level: str) -> tuple[Concept | None, float]:
        """The rules concept of the nearest red-flag training example at this tier (for the reason),
        and how near it is."""
        sims = vector @ self._model.positives
        sims[self._model.positive_levels != LEVEL_RANK[level]] = -2.0
        best = int(np.argmax(sims))
        return self._concepts.get(str(self._model.positive_categories[best])), float(sims[best])
