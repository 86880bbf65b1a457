"""Running the eval sets through the public API, the baselines, and the threshold check."""

from __future__ import annotations

import logging
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..settings import PROJECT_ROOT, Settings
from .datasets import (
    DatasetError,
    QACase,
    SafetyCase,
    ScopeCase,
    dataset_counts,
    load_qa,
    load_safety,
    load_scope,
    validate_evidence,
)
from .metrics import REGISTRY, CaseRecord, compute_all

log = logging.getLogger(__name__)

EVALS_DIR = PROJECT_ROOT / "evals"
DEFAULT_OUT_DIR = EVALS_DIR / "report"
DEFAULT_THRESHOLDS = EVALS_DIR / "thresholds.toml"
WARM_UP_QUESTION = "is walking good for back pain?"

AnswerFn = Callable[..., Any]


@dataclass
class ThresholdCheck:
    metric: str
    value: float | None
    limit: float
    direction: str  # "min" or "max"
    passed: bool


@dataclass
class EvalRun:
    records: list[CaseRecord]
    metrics: dict[str, float | None]
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {label, metrics, records}
    counts: dict[str, Any] = field(default_factory=dict)
    checks: list[ThresholdCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed_checks(self) -> list[ThresholdCheck]:
        return [c for c in self.checks if not c.passed]


# ---------------------------------------------------------------- data


def load_datasets(data_dir: Path = EVALS_DIR, corpus_dir: Path | None = None,
                  files: dict[str, Path] | None = None) -> tuple[list[QACase], list[ScopeCase], list[SafetyCase], list[str]]:
    """Load and validate every set in ``data_dir``, or only the ``files`` given by set name ("qa",
    "scope", "safety": a clinic's own sets); raises DatasetError when the QA set does not match the
    corpus, a given file is missing, or there is no set at all. A set absent from the folder is
    noted, not an error: a blind batch may hold only QA or only safety messages."""
    notes: list[str] = []
    sets: list[list] = []
    for name, loader in (("qa", load_qa), ("scope", load_scope), ("safety", load_safety)):
        if files:
            path = files.get(name)
            if path is None:
                sets.append([])
                continue
            if not Path(path).is_file():
                raise DatasetError(f"--{name} {path}: no such file")
        else:
            path = data_dir / f"{name}.jsonl"
        if Path(path).is_file():
            sets.append(loader(path))
        else:
            sets.append([])
            notes.append(f"{path} not found: its metrics are not computed")
    if not any(sets) and (files or len(notes) == len(sets)):
        raise DatasetError("no eval cases: the files given are empty" if files else
                           f"{data_dir} holds none of qa.jsonl, scope.jsonl, safety.jsonl")
    qa, scope, safety = sets
    if corpus_dir is not None and qa:
        problems = validate_evidence(qa, corpus_dir)
        if problems:
            raise DatasetError("qa.jsonl does not match the corpus:\n  " + "\n  ".join(problems))
    return qa, scope, safety, notes


# ---------------------------------------------------------------- running


def _to_dict(result: Any) -> dict:
    if isinstance(result, dict):
        return result
    if hasattr(result, "to_dict"):
        return result.to_dict()
    raise TypeError(f"answer() returned {type(result).__name__}, expected a result with to_dict()")


def _call(answer_fn: AnswerFn, dataset: str, case, system: str = "assistant") -> CaseRecord:
    history = [dict(t) for t in case.history] or None
    t0 = time.perf_counter()
    try:
        result = _to_dict(answer_fn(case.prompt, history=history))
        error = None
    except Exception as exc:  # a crash is a failed case, not a crashed suite
        log.exception("answer() raised on %s", case.id)
        result, error = {"kind": "error", "text": f"{type(exc).__name__}: {exc}"}, f"{type(exc).__name__}: {exc}"
    latency = (time.perf_counter() - t0) * 1000.0
    return CaseRecord(dataset=dataset, case=case, result=result, latency_ms=latency, system=system, error=error)


def run_cases(answer_fn: AnswerFn, qa: Sequence[QACase], scope: Sequence[ScopeCase], safety: Sequence[SafetyCase],
              progress: Callable[[str], None] | None = None) -> list[CaseRecord]:
    records: list[CaseRecord] = []
    for dataset, cases in (("qa", qa), ("scope", scope), ("safety", safety)):
        t0 = time.perf_counter()
        for case in cases:
            records.append(_call(answer_fn, dataset, case))
        if progress:
            progress(f"{dataset}: {len(cases)} cases in {time.perf_counter() - t0:.1f} s")
    return records


def run_baselines(qa: Sequence[QACase], corpus_dir: Path, embedder) -> dict[str, dict[str, Any]]:
    from .baselines import build_baselines

    cases = [c for c in qa if c.answerable]
    out: dict[str, dict[str, Any]] = {}
    for b in build_baselines(corpus_dir, embedder):
        t0 = time.perf_counter()
        ranked = b.search_many([c.question for c in cases])
        ms = (time.perf_counter() - t0) * 1000.0 / max(1, len(cases))
        records = [
            CaseRecord(dataset="qa", case=c, result={"kind": "answer", "text": "", "contexts": ctx}, system=b.name)
            for c, ctx in zip(cases, ranked)
        ]
        out[b.name] = {
            "label": b.label,
            "records": records,
            "metrics": compute_all(records, baseline_only=True),
            "mean_query_ms": ms,
            "chunks": len(b.chunks),
        }
    return out


def run_suite(
    answer_fn: AnswerFn,
    *,
    data_dir: Path = EVALS_DIR,
    files: dict[str, Path] | None = None,
    corpus_dir: Path | None = None,
    baselines: bool = True,
    embedder=None,
    thresholds: Path | dict | None = None,
    progress: Callable[[str], None] | None = None,
    context: dict[str, Any] | None = None,
) -> EvalRun:
    """Score ``answer_fn(question, history=...)`` (the public ``answer`` or ``Assistant.answer``) on
    every eval set, optionally beside the baselines, and check the thresholds."""
    started = time.perf_counter()
    corpus_dir = Path(corpus_dir) if corpus_dir is not None else PROJECT_ROOT / "corpus"
    qa, scope, safety, notes = load_datasets(Path(data_dir), corpus_dir, files)

    t0 = time.perf_counter()
    _to_dict(answer_fn(WARM_UP_QUESTION, history=None))  # load models and index outside the timings
    warm_up_ms = (time.perf_counter() - t0) * 1000.0

    records = run_cases(answer_fn, qa, scope, safety, progress)
    metrics = compute_all(records, context)
    if not safety:
        for name, metric in REGISTRY.items():
            if metric.group == "safety":
                metrics[name] = None

    base: dict[str, dict[str, Any]] = {}
    if baselines:
        try:
            if embedder is None:
                from ..embeddings import get_embedder

                embedder = get_embedder()
            base = run_baselines(qa, corpus_dir, embedder)
        except ImportError as exc:
            notes.append(f"baselines skipped: {exc} (pip install langchain-text-splitters bm25s)")
        if progress and base:
            progress("baselines: " + ", ".join(base))

    run = EvalRun(
        records=records,
        metrics=metrics,
        baselines=base,
        counts=dataset_counts(qa, scope, safety),
        notes=notes,
        info={
            "corpus_dir": str(corpus_dir),
            "corpus_files": sorted(p.name for p in corpus_dir.glob("*.md")),
            "warm_up_ms": round(warm_up_ms, 1),
        },
    )
    if thresholds is not None:
        limits = load_thresholds(thresholds) if isinstance(thresholds, Path) else thresholds
        if files:  # a clinic's own sets: gate only what they measure
            limits = {k: v for k, v in limits.items() if metrics.get(k) is not None}
        run.checks = check_thresholds(metrics, limits)
    run.info["duration_s"] = round(time.perf_counter() - started, 2)
    return run


# ---------------------------------------------------------------- thresholds


def load_thresholds(path: Path) -> dict[str, float]:
    """``[thresholds]`` table of metric name -> figure. The figure is a minimum for metrics where
    higher is better and a maximum for the others (latency, false positives, errors)."""
    with Path(path).open("rb") as f:
        data = tomllib.load(f)
    table = data.get("thresholds", {})
    unknown = sorted(set(table) - set(REGISTRY))
    if unknown:
        raise ValueError(f"{path}: unknown metrics in [thresholds]: {', '.join(unknown)}")
    return {k: float(v) for k, v in table.items()}


def check_thresholds(metrics: dict[str, float | None], limits: dict[str, float]) -> list[ThresholdCheck]:
    checks = []
    for name, limit in limits.items():
        metric = REGISTRY[name]
        value = metrics.get(name)
        direction = "min" if metric.higher_is_better else "max"
        if value is None:
            passed = False  # a gated metric that could not be computed fails loudly
        elif direction == "min":
            passed = value >= limit - 1e-9
        else:
            passed = value <= limit + 1e-9
        checks.append(ThresholdCheck(name, value, limit, direction, passed))
    return checks


# ---------------------------------------------------------------- CLI entry point


def run_from_cli(
    out_dir: Path | None = None,
    thresholds: Path | None = None,
    baselines: bool = True,
    settings: Settings | None = None,
    files: dict[str, Path] | None = None,
    compare: Path | None = None,
    max_failures: int = 20,
) -> int:
    """What ``backpain eval`` runs: the whole suite (or the ``files`` given) through the public API,
    the report in ``out_dir`` (default ``evals/report``), a summary on stdout, and with ``compare``
    the changes since an earlier report.json. Returns the exit code: 0 when every threshold holds,
    1 when any metric is below its threshold (or could not be computed), 2 when the data sets are
    broken."""
    from .compare import compare_reports, load_report
    from .report import format_failures, format_summary, render_json, write_report

    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR
    thresholds = Path(thresholds) if thresholds is not None else DEFAULT_THRESHOLDS
    files = {k: Path(v) for k, v in (files or {}).items() if v is not None}

    def progress(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    try:
        old = load_report(compare) if compare is not None else None
    except DatasetError as exc:
        print(f"eval data error: {exc}", file=sys.stderr)
        return 2
    if settings is None:
        from .. import answer as answer_fn
        from ..settings import get_settings

        corpus_dir = get_settings().corpus_dir
        _ensure_index(None)
    else:
        from .. import Assistant

        corpus_dir = settings.corpus_dir
        _ensure_index(settings)
        answer_fn = Assistant(settings).answer

    limits: dict[str, float] = {}
    if thresholds.is_file():
        limits = load_thresholds(thresholds)
    else:
        print(f"warning: {thresholds} not found, no thresholds checked", file=sys.stderr)

    try:
        run = run_suite(answer_fn, files=files, corpus_dir=corpus_dir, baselines=baselines, thresholds=limits,
                        progress=progress)
    except DatasetError as exc:
        print(f"eval data error: {exc}", file=sys.stderr)
        return 2
    paths = write_report(run, out_dir)
    print(format_summary(run))
    failures = format_failures(run, max_failures)
    if failures:
        print("\n" + failures)
    if old is not None:
        print("\n" + compare_reports(old, render_json(run), str(compare)).format())
    print(f"\nreport: {paths['md']}")
    if run.failed_checks:
        names = ", ".join(c.metric for c in run.failed_checks)
        print(f"FAILED: {len(run.failed_checks)} metric(s) below threshold: {names}")
        return 1
    print("all thresholds met" if run.checks else "no thresholds checked")
    return 0


def _ensure_index(settings: Settings | None) -> None:
    """Bring the index up to date with the corpus (incremental: no-op when nothing changed)."""
    try:
        from ..store import build_index
    except ImportError:
        return
    build_index(settings, progress=False)
