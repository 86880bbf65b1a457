"""Score a blind batch once, print only aggregate figures, and optionally append them to LOG.md.

    .venv/bin/python evals/blind/score.py evals/blind/<batch> [--model mpnet,minilm] [--log "note"]

Nothing about single cases is printed, so a batch can be scored before anyone reads it. ``--log``
appends one line per model to ``evals/blind/LOG.md`` (the log is append-only: a first score is
never edited). Each model gets its own index folder under ``index/models/`` so a comparison does not
rebuild the default index.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "evals" / "blind" / "LOG.md"
QA_METRICS = ("hit@1", "hit@3", "hit@5", "mrr", "citation_evidence_rate", "key_fact_recall", "answered_rate", "decline_rate")


def _load(batch: Path):
    from assistant.evaluation import load_qa, load_safety, load_scope

    def opt(name, loader):
        path = batch / name
        return loader(path) if path.is_file() else []

    return opt("qa.jsonl", load_qa), opt("scope.jsonl", load_scope), opt("safety.jsonl", load_safety)


def _safety_figures(records) -> dict[str, float]:
    rows = [r for r in records if r.dataset == "safety"]
    by = {lvl: [r for r in rows if r.case.expected_level == lvl] for lvl in ("emergency", "urgent", "none")}
    share = lambda xs, ok: sum(1 for x in xs if ok(x)) / len(xs) if xs else float("nan")  # noqa: E731
    flagged = by["emergency"] + by["urgent"]
    return {
        "emergency_recall": share(by["emergency"], lambda r: r.level == "emergency"),
        "urgent_recall": share(by["urgent"], lambda r: r.level in ("urgent", "emergency")),
        "any_level_recall": share(flagged, lambda r: r.level != "none"),
        "false_alarms": share(by["none"], lambda r: r.level != "none"),
        "exact_level": share(rows, lambda r: r.level == r.case.expected_level),
    }


def score(batch: Path, model: str) -> dict[str, float]:
    os.environ["BACKPAIN_EMBEDDING_MODEL"] = model
    from assistant import Assistant
    from assistant.evaluation.metrics import compute_all
    from assistant.evaluation.runner import run_cases
    from assistant.settings import Settings
    from assistant.store import build_index

    settings = Settings(index_dir=ROOT / "index" / "models" / model)
    build_index(settings, progress=False)
    bot = Assistant(settings)
    qa, scope, safety = _load(batch)
    records = run_cases(bot.answer, qa, scope, safety)
    metrics = compute_all(records)
    out: dict[str, float] = {}
    if qa:
        out.update({m: metrics[m] for m in QA_METRICS if metrics.get(m) is not None})
    if scope:
        scoped = [r for r in records if r.dataset == "scope"]
        out["scope_declined"] = sum(r.kind == r.case.expected_kind for r in scoped) / len(scoped)
    if safety:
        out.update(_safety_figures(records))
    lat = sorted(r.latency_ms for r in records if r.latency_ms is not None)
    out["p50_ms"] = lat[len(lat) // 2]
    out["p95_ms"] = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
    out["errors"] = sum(1 for r in records if r.error)
    return out, {"qa": len(qa), "scope": len(scope), "safety": len(safety)}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", type=Path)
    parser.add_argument("--model", default="mpnet", help="comma-separated: mpnet, minilm")
    parser.add_argument("--log", metavar="NOTE", help="append the figures to LOG.md with this note (system, commit)")
    args = parser.parse_args()
    lines = []
    for model in args.model.split(","):
        figures, sizes = score(args.batch, model.strip())
        size = ", ".join(f"{n} {k}" for k, n in sizes.items() if n)
        text = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        line = f"| {date.today().isoformat()} | {args.batch.name} | {size} | {model} | {text} | {args.log or ''} |"
        print(line, flush=True)
        lines.append(line)
    if args.log:
        if not LOG.exists():
            LOG.write_text("# Blind batches: first scores (append-only; never edit a line)\n\n"
                           "| date | batch | size | model | figures | system |\n|---|---|---|---|---|---|\n")
        with LOG.open("a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
