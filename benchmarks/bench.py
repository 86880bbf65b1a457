"""Latency and build-time figures for the README and closing notes.

    .venv/bin/python benchmarks/bench.py [--calls 300] [--model mpnet|minilm] [--setup]

Prints: with --setup, the one-time unpack and ONNX export of the model into an empty cache (a new
process); index build time (fresh store), cold start to first answer (a new process), warm
``answer()`` p50/p95 over distinct questions (nothing cached) and over repeated ones, and the
time the safety screen adds per message.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.settings import Settings  # noqa: E402

COLD_START = """
import time
t0 = time.perf_counter()
from pathlib import Path
from assistant import Assistant
from assistant.settings import Settings
bot = Assistant(Settings(index_dir=Path({index!r}), collection={collection!r}))
r = bot.answer("is walking good for my lower back?")
print(time.perf_counter() - t0, r.kind)
"""


SETUP = """
from assistant.embeddings import Embedder
Embedder().encode(["warm up"])
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def questions() -> list[str]:
    out: list[str] = []
    for name in ("qa.jsonl", "safety.jsonl", "scope.jsonl"):
        for line in (ROOT / "evals" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                text = item.get("question") or item.get("message")
                if isinstance(text, str) and 0 < len(text) <= 2000:
                    out.append(text)
    return list(dict.fromkeys(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="warm calls to time (at least 200)")
    parser.add_argument("--model", default=None, help="minilm or mpnet (default: BACKPAIN_EMBEDDING_MODEL, else minilm)")
    parser.add_argument("--setup", action="store_true", help="also time the one-time unpack and export")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    env = dict(os.environ)
    if args.model:
        env["BACKPAIN_EMBEDDING_MODEL"] = os.environ["BACKPAIN_EMBEDDING_MODEL"] = args.model
    print(f"model: {Settings().embedding_model} ({Settings().resolved_precision()})")
    if args.setup:
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", SETUP], env={**env, "BACKPAIN_CACHE_DIR": cache},
                           cwd=ROOT, check=True, capture_output=True)
            print(f"one-time unpack and ONNX export into an empty cache (new process): {time.perf_counter() - t:.1f} s")

    from assistant.embeddings import get_embedder
    from assistant.store import build_index

    embedder = get_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=Path(tmp) / "index", collection="bench")
        t = time.perf_counter()
        summary = build_index(settings, progress=False)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        build_index(settings, progress=False)
        noop_s = time.perf_counter() - t
        print(f"index build (fresh, {summary.records_added} records from {summary.documents} documents): {build_s:.2f} s")
        print(f"index re-run with no change: {noop_s:.2f} s")

        cold = []
        for _ in range(3):
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", COLD_START.format(index=str(settings.index_dir), collection=settings.collection)],
                capture_output=True, text=True, cwd=ROOT, check=True, env=env,
            )
            wall = time.perf_counter() - t
            inner = float(out.stdout.split()[0])
            cold.append((wall, inner))
        print(
            "cold start to first answer (new process, median of 3): "
            f"{statistics.median(w for w, _ in cold):.2f} s wall, {statistics.median(i for _, i in cold):.2f} s after interpreter start"
        )

        from assistant import Assistant

        bot = Assistant(settings, embedder=embedder)
        pool = questions()
        calls = max(200, args.calls)
        distinct = [pool[i % len(pool)] + ("" if i < len(pool) else f" ({i // len(pool)})") for i in range(calls)]
        timings, kinds = [], {}
        for q in distinct:
            t = time.perf_counter()
            r = bot.answer(q)
            timings.append((time.perf_counter() - t) * 1000)
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        print(
            f"warm answer(), {calls} distinct messages: p50 {pct(timings, 50):.1f} ms, p95 {pct(timings, 95):.1f} ms, "
            f"max {max(timings):.1f} ms  (kinds: {kinds})"
        )
        repeated = []
        for i in range(calls):
            q = pool[i % 20]
            t = time.perf_counter()
            bot.answer(q)
            repeated.append((time.perf_counter() - t) * 1000)
        print(f"warm answer(), 20 messages repeated ({calls} calls): p50 {pct(repeated, 50):.1f} ms, p95 {pct(repeated, 95):.1f} ms")

        safety_ms = []
        for q in pool[:calls]:
            bot.embedder.encode(bot.safety.sentences(q))
            t = time.perf_counter()
            bot.safety.assess(q)
            safety_ms.append((time.perf_counter() - t) * 1000)
        print(f"safety screen per message (sentences already embedded in the shared batch): "
              f"p50 {pct(safety_ms, 50):.2f} ms, p95 {pct(safety_ms, 95):.2f} ms")

        embed_only, embed_batch = [], []
        for i, q in enumerate(pool[:calls]):
            text = f"{q} #{i}"
            t = time.perf_counter()
            bot.embedder.encode([text])
            embed_only.append((time.perf_counter() - t) * 1000)
            sents = [f"{s} #{i}" for s in bot.safety.sentences(q)]
            t = time.perf_counter()
            bot.embedder.encode([*sents, f"{text} batch"])
            embed_batch.append((time.perf_counter() - t) * 1000)
        extra = [b - o for b, o in zip(embed_batch, embed_only)]
        print(f"query embedding alone: p50 {pct(embed_only, 50):.1f} ms; with the safety sentences in the same batch: "
              f"p50 {pct(embed_batch, 50):.1f} ms (safety's share of the model call p50 {pct(extra, 50):.1f} ms)")


if __name__ == "__main__":
    main()
