"""Both embedding models side by side on the dev sets and on every blind batch.

    .venv/bin/python benchmarks/models.py [--models mpnet,minilm] [--out evals/report/models.md]

For each model: every figure of ``assistant.evaluation.batches`` on ``evals/`` (dev) and on each
folder under ``evals/blind/``, with answer() latency p50/p95 from the same calls. Prints a Markdown
table and writes it to ``--out``. Each model has its own index under ``index/models/``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.evaluation.batches import model_assistant, score_folder  # noqa: E402


def folders() -> list[tuple[str, Path]]:
    out = [("dev", ROOT / "evals")]
    blind = ROOT / "evals" / "blind"
    out += [(f"blind {p.name}", p) for p in sorted(blind.iterdir()) if p.is_dir() and any(p.glob("*.jsonl"))]
    return out


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mpnet,minilm", help="comma-separated KEY[:PRECISION], e.g. mpnet:fp32")
    parser.add_argument("--out", type=Path, default=ROOT / "evals" / "report" / "models.md")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",")]
    table: dict[tuple[str, str], dict[str, float]] = {}
    for model in models:
        bot = model_assistant(model)
        for name, folder in folders():
            table[(name, model)], _ = score_folder(bot.answer, folder)
            print(f"  {model} on {name}: done", file=sys.stderr, flush=True)
    lines = [f"| set | figure | {' | '.join(models)} |", f"|---|---|{'---|' * len(models)}"]
    for name, _ in folders():
        figures = list(dict.fromkeys(k for m in models for k in table[(name, m)]))
        for fig in figures:
            cells = [table[(name, m)].get(fig, math.nan) for m in models]
            lines.append(f"| {name} | {fig} | " + " | ".join("-" if math.isnan(v) else f"{v:.3f}" for v in cells) + " |")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Embedding models side by side\n\n{text}\n")


if __name__ == "__main__":
    main()
