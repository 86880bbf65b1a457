"""The evaluation suite (``backpain eval``): hand-written eval sets in ``evals/``, scored through
the public ``answer()`` API, with retrieval baselines, thresholds and a readable report.

Entry points: :func:`run_from_cli` (what the CLI calls) and :func:`run_suite` (any answer function,
used by the tests with the session's ``Assistant``).
"""

from .datasets import DatasetError, QACase, SafetyCase, ScopeCase, dataset_counts, load_qa, load_safety, load_scope, validate_evidence
from .metrics import REGISTRY, CaseRecord, Metric, compute_all, register
from .runner import (
    DEFAULT_OUT_DIR,
    DEFAULT_THRESHOLDS,
    EVALS_DIR,
    EvalRun,
    check_thresholds,
    load_datasets,
    load_thresholds,
    run_from_cli,
    run_suite,
)

__all__ = [
    "CaseRecord",
    "DEFAULT_OUT_DIR",
    "DEFAULT_THRESHOLDS",
    "DatasetError",
    "EVALS_DIR",
    "EvalRun",
    "Metric",
    "QACase",
    "REGISTRY",
    "SafetyCase",
    "ScopeCase",
    "check_thresholds",
    "compute_all",
    "dataset_counts",
    "load_datasets",
    "load_qa",
    "load_safety",
    "load_scope",
    "load_thresholds",
    "register",
    "run_from_cli",
    "run_suite",
    "validate_evidence",
]
