"""Derive the model-dependent similarity cut-offs from the dev sets, and print what each is chosen from.

    .venv/bin/python benchmarks/thresholds.py --model mpnet [--precision int8]

Prints, for one model: the best-window similarity of on-topic and off-topic messages (off_topic),
of answerable and unanswerable questions (min_relevance), the passages the warning-signs query
finds (warning_passage), and a grid over the safety detector's semantic cut-offs scored on
the safety messages with every QA and scope message as a further negative. The chosen values go into
assistant/data/model_thresholds.toml by hand, with the figures they came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant.api import WARNING_SIGNS_QUERY  # noqa: E402
from assistant.chain import Turnstate  # noqa: E402
from assistant.evaluation import load_datasets  # noqa: E402
from assistant.safety import LEVEL_RANK  # noqa: E402
from assistant.evaluation.batches import model_assistant  # noqa: E402

# The dev sets: evals/ and the blind batches that have been scored and read (they join the dev sets).
DEV = [ROOT / "evals", ROOT / "evals" / "blind" / "2026-12-01-qa-a", ROOT / "evals" / "blind" / "2026-12-01-safety-a"]


def quantiles(values: list[float]) -> str:
    if not values:
        return "(none)"
    q = np.quantile(values, [0.0, 0.02, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    return " ".join(f"{p}:{v:.3f}" for p, v in zip(("min", "p2", "p5", "p25", "p50", "p75", "p95", "max"), q))


def best_similarity(bot: Assistant, text: str) -> tuple[float, bool]:
    state = bot.step_validate(Turnstate(message=text))
    state = bot.step_safety(state)
    retrieved = bot.retriever.retrieve(state.query)
    return retrieved.best_similarity, bool(state.query.on_topic_words)


def split_point(low: list[float], high: list[float]) -> float:
    """The cut-off with the fewest errors (low should fall below, high at or above); midpoint of ties."""
    candidates = sorted(set(round(x, 3) for x in low + high))
    scored = [(sum(v >= c for v in low) + sum(v < c for v in high), c) for c in candidates]
    fewest = min(s for s, _ in scored)
    best = [c for s, c in scored if s == fewest]
    return round((best[0] + best[-1]) / 2, 3)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mpnet")
    parser.add_argument("--precision", default=None, help="fp32 or int8 (default: the model's own)")
    args = parser.parse_args()
    spec = f"{args.model}:{args.precision}" if args.precision else args.model
    bot = model_assistant(spec)
    qa, scope, safety = [], [], []
    for folder in DEV:
        more = load_datasets(folder)
        qa, scope, safety = qa + more[0], scope + more[1], safety + more[2]

    answerable = [best_similarity(bot, c.question) for c in qa if c.answerable and not c.history]
    unanswerable = [best_similarity(bot, c.question) for c in qa if not c.answerable and not c.history]
    off = [best_similarity(bot, c.message) for c in scope if c.expected_kind == "out_of_scope" and c.message.strip()]
    print(f"== {args.model} {bot.settings.resolved_precision()}")
    print("answerable best similarity:  ", quantiles([s for s, _ in answerable]))
    print("unanswerable best similarity:", quantiles([s for s, _ in unanswerable]))
    print("off-topic best similarity:   ", quantiles([s for s, _ in off]))
    no_topic_on = [s for s, t in answerable if not t]
    no_topic_off = [s for s, t in off if not t]
    print(f"no topic word: {len(no_topic_on)} on-topic {quantiles(no_topic_on)}")
    print(f"no topic word: {len(no_topic_off)} off-topic {quantiles(no_topic_off)}")
    print("suggested off_topic:", split_point(no_topic_off, [s for s, _ in answerable]))
    print("suggested min_relevance (just under the least similar answerable question):",
          round(min(s for s, _ in answerable) - 0.02, 2))

    found = bot.retriever.retrieve(bot.retriever.analyse(WARNING_SIGNS_QUERY), k=5)
    print("warning-signs query, top 5:")
    for c in found.contexts:
        print(f"  {c.score:.3f}  {c.section[:50]!r}: {c.text[:90]!r}")
    scores = sorted((c.score for c in found.contexts), reverse=True)
    gap = max(range(len(scores) - 1), key=lambda i: scores[i] - scores[i + 1])
    print("suggested warning_passage (middle of the widest gap in the top 5):", round((scores[gap] + scores[gap + 1]) / 2, 3))

    messages = [(c.message, c.expected_level) for c in safety]
    messages += [(c.question, "none") for c in qa] + [(c.message, "none") for c in scope if c.message.strip()]
    screen = bot.safety
    for text, _ in messages:  # embed every clause once; the grid below only re-scores
        screen.embedder.encode(screen.sentences(text))
    concept_offsets = {cid: value - bot.thresholds.safety_semantic for cid, value in bot.thresholds.safety_concepts.items()}

    def set_cutoffs(semantic: float, margin: float, escalation: float) -> None:
        concepts = {cid: semantic + offset for cid, offset in concept_offsets.items()}
        screen.set_thresholds(dataclasses.replace(
            bot.thresholds, safety_semantic=semantic, safety_margin=margin, safety_escalation=escalation,
            safety_concepts=concepts,
        ))

    def figures(levels: list[tuple[str, str]]) -> tuple[float, float, float]:
        emergency = np.mean([g == "emergency" for g, w in levels if w == "emergency"])
        flagged = np.mean([g != "none" for g, w in levels if w != "none"])
        false_alarms = np.mean([g != "none" for g, w in levels if w == "none"])
        return float(emergency), float(flagged), float(false_alarms)

    def semantic_alone(text: str) -> str:
        mentions = [m for m in screen._semantic(screen._analyse(text), []) if screen._raises(m)]
        return max((m.concept.level for m in mentions), key=LEVEL_RANK.get, default="none")

    # The rules were written against evals/safety.jsonl, so on it they leave the similarity detector
    # nothing to decide: its cut-offs are chosen on what it does alone, then checked combined.
    print(f"semantic detector alone, {len(messages)} messages (concept offsets kept: {concept_offsets}):")
    alone = []
    for semantic, margin in itertools.product(np.arange(0.56, 0.90, 0.02), (0.0, 0.03)):
        set_cutoffs(float(semantic), margin, 1.01)
        alone.append((*figures([(semantic_alone(t), w) for t, w in messages]), round(float(semantic), 2), margin))
    for r in alone:
        print(f"  semantic {r[3]:.2f} margin {r[4]:.2f}: emergency {r[0]:.3f} any level {r[1]:.3f} false alarms {r[2]:.3f}")
    # At most 1 false alarm in 200 dev negatives: a tolerance of 2% there still gave 20% false alarms
    # and 7 of 60 answerable questions flagged on the first blind batches (2026-12-01); none at all
    # leaves the detector almost nothing, as one ordinary message sits at 0.80.
    allowed = [r for r in alone if r[2] <= 0.005]
    pick = max(allowed, key=lambda r: (r[0] + r[1], -r[3])) if allowed else max(alone, key=lambda r: r[3])
    print(f"suggested semantic {pick[3]} margin {pick[4]} (most recall with false alarms <= 0.005 alone)")
    print("with the rules, by escalation cut-off:")
    for escalation in (0.80, 0.84, 0.88, 0.92, 1.01):
        set_cutoffs(pick[3], pick[4], escalation)
        e, f, fa = figures([(screen.assess(t).level, w) for t, w in messages])
        print(f"  escalation {escalation:.2f}: emergency {e:.3f} any level {f:.3f} false alarms {fa:.3f}")

if __name__ == "__main__":
    main()
