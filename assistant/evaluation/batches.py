"""Aggregate figures of one eval folder (dev sets or a blind batch) for one model, cases never shown.

Used by ``evals/blind/score.py`` (first scores of a batch nobody has read) and
``benchmarks/models.py`` (both models side by side on every folder).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from .datasets import load_qa, load_safety, load_scope
from .metrics import CaseRecord, compute_all
from .runner import run_cases

QA_FIGURES = ("hit@1", "hit@3", "hit@5", "mrr", "citation_evidence_rate", "key_fact_recall", "answered_rate", "decline_rate")


def load_folder(folder: Path) -> tuple[list, list, list]:
    def optional(name: str, loader: Callable) -> list:
        path = folder / name
        return loader(path) if path.is_file() else []

    return optional("qa.jsonl", load_qa), optional("scope.jsonl", load_scope), optional("safety.jsonl", load_safety)


def _share(rows: list[CaseRecord], ok: Callable[[CaseRecord], bool]) -> float:
    return sum(1 for r in rows if ok(r)) / len(rows) if rows else math.nan


def safety_figures(records: list[CaseRecord]) -> dict[str, float]:
    rows = [r for r in records if r.dataset == "safety"]
    by = {lvl: [r for r in rows if r.case.expected_level == lvl] for lvl in ("emergency", "urgent", "none")}
    return {
        "emergency_recall": _share(by["emergency"], lambda r: r.level == "emergency"),
        "urgent_recall": _share(by["urgent"], lambda r: r.level in ("urgent", "emergency")),
        "any_level_recall": _share(by["emergency"] + by["urgent"], lambda r: r.level != "none"),
        "false_alarms": _share(by["none"], lambda r: r.level != "none"),
        "exact_level": _share(rows, lambda r: r.level == r.case.expected_level),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else math.nan


def score_folder(answer_fn: Callable[..., Any], folder: Path) -> tuple[dict[str, float], dict[str, int]]:
    """(figures, sizes) of ``answer_fn`` on the sets in ``folder``; a set that is absent adds no figure."""
    qa, scope, safety = load_folder(folder)
    records = run_cases(answer_fn, qa, scope, safety)
    figures: dict[str, float] = {}
    if qa:
        metrics = compute_all(records)
        figures.update({m: metrics[m] for m in QA_FIGURES if metrics.get(m) is not None})
    if scope:
        figures["scope_correct"] = _share([r for r in records if r.dataset == "scope"], lambda r: r.kind == r.case.expected_kind)
    if safety:
        figures.update(safety_figures(records))
    latencies = [r.latency_ms for r in records if r.latency_ms is not None]
    figures["p50_ms"] = percentile(latencies, 0.50)
    figures["p95_ms"] = percentile(latencies, 0.95)
    figures["errors"] = float(sum(1 for r in records if r.error))
    return figures, {"qa": len(qa), "scope": len(scope), "safety": len(safety)}
