"""A grounded, safety-first assistant for questions about walking and back pain.

    from assistant import answer
    print(answer("Is walking good for lower back pain?").to_dict())
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("backpain-assistant")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

from .api import Assistant, answer  # noqa: E402
from .errors import BackpainError, CorpusError, ReadOnlyIndex, StoreError, StoreUnavailable, UsageError  # noqa: E402
from .results import AnswerResult, Citation, Context, SafetyResult  # noqa: E402

__all__ = [
    "Assistant", "AnswerResult", "BackpainError", "Citation", "Context", "CorpusError", "ReadOnlyIndex",
    "SafetyResult", "StoreError", "StoreUnavailable", "UsageError", "answer", "__version__",
]
