"""Which red-flag patterns stand for a concept, and which were written for one sentence.

    .venv/bin/python benchmarks/rule_audit.py [--all]

Each pattern (one entry of a concept's `patterns`, `benign` or `unless`, or of `idioms`) is counted
over two independent sets of normalised messages: the dev eval messages (evals/ and the read blind
batches) and the red-flag training examples (written by helpers that never saw the rules). A pattern
that matches exactly one eval message and no training example was most likely written for that one
sentence: it is listed for generalising or removal. ``--all`` prints every count.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.embeddings import get_embedder  # noqa: E402
from assistant.evaluation.batches import read_batches  # noqa: E402
from assistant.safety import SafetyScreen  # noqa: E402
from assistant.safety.rules import _expand  # noqa: E402
from assistant.settings import load_yaml  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args()
    screen = SafetyScreen(get_embedder())
    data = load_yaml(ROOT / "assistant" / "data" / "red_flags.yaml")
    macros = {k: str(v) for k, v in data["macros"].items()}

    def texts(messages: list[str]) -> list[str]:
        return [screen.analyse(m).text for m in messages]

    evals = []
    for folder in [ROOT / "evals", *read_batches()]:
        path = folder / "safety.jsonl"
        if path.is_file():
            evals += [json.loads(line)["message"] for line in path.read_text().splitlines() if line.strip()]
    eval_texts = texts(evals)
    # idioms are blanked before matching, so they are counted on the raw normalised text
    train_texts = texts([e.text for e in screen.detector.examples])

    entries = [("idioms", "-", p) for p in data.get("idioms") or []]
    for c in data["concepts"]:
        for key in ("patterns", "benign", "unless"):
            entries += [(c["id"], key, p) for p in c.get(key) or []]
    single = 0
    for owner, key, pattern in entries:
        rx = re.compile(_expand(str(pattern), macros))
        n_eval = sum(bool(rx.search(t)) for t in eval_texts)
        n_train = sum(bool(rx.search(t)) for t in train_texts)
        flag = n_eval == 1 and n_train == 0
        single += flag
        if args.all or flag:
            print(f"{'ONE-SENTENCE ' if flag else ''}{owner}/{key}: eval {n_eval}, training {n_train}: {str(pattern)[:110]}")
    print(f"{len(entries)} patterns; {single} match exactly one eval message and no training example "
          f"({len(eval_texts)} eval messages, {len(train_texts)} training examples)")


if __name__ == "__main__":
    main()
