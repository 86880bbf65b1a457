"""Derive the model-dependent similarity cut-offs from the dev sets, and print what each is chosen from.

    .venv/bin/python benchmarks/thresholds.py --model mpnet [--precision int8]

Prints, for one model: the best-window similarity of on-topic and off-topic messages (off_topic),
of answerable and unanswerable questions (min_relevance), the passages the warning-signs query
finds (warning_passage). The red-flag detector's cut-offs come from ``benchmarks/safety.py --grid``.
The chosen values go into assistant/data/model_thresholds.toml by hand, with the figures they came from.
"""

from __future__ import annotations

import argparse
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
from assistant.evaluation.batches import model_assistant, read_batches  # noqa: E402

# The dev sets: evals/ and the blind batches that have been scored and read (they join the dev sets).
DEV = [ROOT / "evals", *read_batches()]


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
    qa, scope = [], []
    for folder in DEV:
        more = load_datasets(folder)
        qa, scope = qa + more[0], scope + more[1]

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


if __name__ == "__main__":
    main()
