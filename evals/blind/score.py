"""Score a blind batch once, print only aggregate figures, and optionally append them to LOG.md.

    .venv/bin/python evals/blind/score.py evals/blind/<batch> [--model minilm,mpnet] [--log "note"]

Nothing about single cases is printed, so a batch can be scored before anyone reads it. ``--log``
appends one line per model to ``evals/blind/LOG.md`` (append-only: a first score is never edited).
Each model gets its own index folder under ``index/models/`` so scoring does not rebuild the
default index.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
LOG = ROOT / "evals" / "blind" / "LOG.md"


def main() -> None:
    from assistant.evaluation.batches import model_assistant, score_folder

    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", type=Path)
    parser.add_argument("--model", default="minilm,mpnet", help="comma-separated KEY[:PRECISION], e.g. mpnet,minilm,mpnet:fp32")
    parser.add_argument("--log", metavar="NOTE", help="append the figures to LOG.md with this note (system, commit)")
    args = parser.parse_args()
    lines = []
    for model in args.model.split(","):
        figures, sizes = score_folder(model_assistant(model.strip()).answer, args.batch)
        size = ", ".join(f"{n} {k}" for k, n in sizes.items() if n)
        text = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
        line = f"| {date.today().isoformat()} | {args.batch.name} | {size} | {model} | {text} | {args.log or ''} |"
        print(line, flush=True)
        lines.append(line)
    if args.log:
        with LOG.open("a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
