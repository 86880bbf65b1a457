"""Aggregate figures of one eval folder (dev sets or a blind batch) for one model, cases never shown.

Used by ``evals/blind/score.py`` (first scores of a batch nobody has read),
``benchmarks/models.py`` (both models side by side on every folder) and ``benchmarks/thresholds.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..settings import PROJECT_ROOT, Settings
from .metrics import compute_all
from .runner import load_datasets, run_cases

if TYPE_CHECKING:
    from ..api import Assistant

# the registered metrics reported for each kind of set a folder holds
FIGURES = {
    "qa": ("hit@1", "hit@3", "hit@5", "mrr", "citation_evidence_rate", "key_fact_recall", "answered_rate", "decline_rate"),
    "scope": ("scope_accuracy",),
    "safety": ("safety_emergency_recall", "safety_urgent_recall", "safety_any_level_recall", "safety_none_fp_rate",
               "safety_level_accuracy"),
}


def model_assistant(spec: str) -> "Assistant":
    """An assistant on model ``KEY[:PRECISION]`` (``mpnet``, ``minilm:fp32``) with an up-to-date index of
    its own under ``index/models/``, so comparing models never rebuilds the default index."""
    from ..api import Assistant
    from ..store import build_index

    key, _, precision = spec.partition(":")
    base = Settings(embedding_model=key, **({"embedding_precision": precision} if precision else {}))
    settings = base.model_copy(update={"index_dir": PROJECT_ROOT / "index" / "models" / f"{key}-{base.resolved_precision()}"})
    build_index(settings, progress=False)
    return Assistant(settings)


def score_folder(answer_fn: Callable[..., Any], folder: Path) -> tuple[dict[str, float], dict[str, int]]:
    """(figures, sizes) of ``answer_fn`` on the sets in ``folder``; a set that is absent adds no figure."""
    qa, scope, safety, _ = load_datasets(folder)
    sizes = {"qa": len(qa), "scope": len(scope), "safety": len(safety)}
    metrics = compute_all(run_cases(answer_fn, qa, scope, safety))
    names = [n for kind, count in sizes.items() if count for n in FIGURES[kind]]
    names += ["latency_p50_ms", "latency_p95_ms", "errors"]
    return {n: metrics[n] for n in names if metrics.get(n) is not None}, sizes


def read_batches(root: Path = PROJECT_ROOT / "evals" / "blind") -> list[Path]:
    """Blind batches that have had their first score logged, and so may be read and used as dev sets.

    A batch not yet in LOG.md is still blind: tuning scripts must not see it.
    """
    log = root / "LOG.md"
    logged = log.read_text(encoding="utf-8") if log.is_file() else ""
    return sorted(p for p in root.iterdir() if p.is_dir() and f"| {p.name} |" in logged)
