"""Loading and validating the hand-written eval sets in ``evals/`` (one JSON object a line).

Loading is strict: a malformed line, a missing field, an unknown kind or a duplicate id raises
:class:`DatasetError` naming the file and line, so a broken data set fails loudly instead of
quietly scoring fewer cases. :func:`validate_evidence` checks the data against the corpus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .matching import collapse_ws, tokens

KINDS = ("answer", "no_answer", "red_flag", "out_of_scope", "invalid_input")
LEVELS = ("none", "urgent", "emergency")
ROLES = ("user", "assistant")

# Minimum sizes from the evaluation issue; tests assert them.
MIN_ANSWERABLE = 120
MIN_UNANSWERABLE = 12
MIN_MULTI_TURN = 12
MIN_EVIDENCE_TOKENS = 4


class DatasetError(ValueError):
    """A data file that cannot be used as it is."""


@dataclass(frozen=True)
class QACase:
    id: str
    question: str
    evidence: tuple[str, ...]
    sources: tuple[str, ...]
    key_facts: tuple[tuple[str, ...], ...]
    history: tuple[dict, ...] = ()
    expected_kind: str = "answer"

    @property
    def prompt(self) -> str:
        return self.question

    @property
    def answerable(self) -> bool:
        return self.expected_kind == "answer"

    @property
    def multi_turn(self) -> bool:
        return bool(self.history)


@dataclass(frozen=True)
class ScopeCase:
    id: str
    message: str
    expected_kind: str
    why: str = ""
    must_not_contain: tuple[str, ...] = ()
    history: tuple[dict, ...] = ()

    @property
    def prompt(self) -> str:
        return self.message


@dataclass(frozen=True)
class SafetyCase:
    id: str
    message: str
    expected_level: str
    history: tuple[dict, ...] = ()
    expected_kind: str | None = None
    note: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def prompt(self) -> str:
        return self.message


def _lines(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(encoding="utf-8") as f:
        for no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path.name}:{no}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise DatasetError(f"{path.name}:{no}: each line must be a JSON object")
            yield no, obj


def _str(obj: dict, key: str, where: str, *, allow_empty: bool = False, default: Any = ...) -> str:
    if key not in obj:
        if default is not ...:
            return default
        raise DatasetError(f"{where}: missing field '{key}'")
    value = obj[key]
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise DatasetError(f"{where}: '{key}' must be a non-empty string")
    return value


def _str_list(obj: dict, key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DatasetError(f"{where}: '{key}' must be a list of non-empty strings")
    return tuple(value)


def _history(obj: dict, where: str) -> tuple[dict, ...]:
    value = obj.get("history") or []
    if not isinstance(value, list):
        raise DatasetError(f"{where}: 'history' must be a list")
    out = []
    for i, turn in enumerate(value):
        if not (isinstance(turn, dict) and turn.get("role") in ROLES and isinstance(turn.get("content"), str)):
            raise DatasetError(f"{where}: history[{i}] must be {{'role': 'user'|'assistant', 'content': str}}")
        out.append({"role": turn["role"], "content": turn["content"]})
    return tuple(out)


def _check_unique(ids: list[str], path: Path) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise DatasetError(f"{path.name}: duplicate id '{i}'")
        seen.add(i)


def load_qa(path: Path) -> list[QACase]:
    cases = []
    for no, obj in _lines(path):
        where = f"{path.name}:{no}"
        cid = _str(obj, "id", where)
        where = f"{where} ({cid})"
        kind = obj.get("expected_kind", "answer")
        if kind not in ("answer", "no_answer"):
            raise DatasetError(f"{where}: expected_kind must be 'answer' or 'no_answer', not {kind!r}")
        evidence = _str_list(obj, "evidence", where)
        sources = _str_list(obj, "sources", where)
        groups = obj.get("key_facts", [])
        if not isinstance(groups, list) or not all(
            isinstance(g, list) and g and all(isinstance(a, str) and a.strip() for a in g) for g in groups
        ):
            raise DatasetError(f"{where}: 'key_facts' must be a list of non-empty lists of strings")
        if kind == "answer":
            if not 1 <= len(evidence) <= 3:
                raise DatasetError(f"{where}: an answerable question needs 1 to 3 evidence passages")
            if not sources:
                raise DatasetError(f"{where}: an answerable question needs its sources")
            if not groups:
                raise DatasetError(f"{where}: an answerable question needs key_facts")
        elif evidence or sources or groups:
            raise DatasetError(f"{where}: a no_answer question has no evidence, sources or key_facts")
        cases.append(
            QACase(
                id=cid,
                question=_str(obj, "question", where),
                evidence=evidence,
                sources=sources,
                key_facts=tuple(tuple(g) for g in groups),
                history=_history(obj, where),
                expected_kind=kind,
            )
        )
    _check_unique([c.id for c in cases], path)
    return cases


def load_scope(path: Path) -> list[ScopeCase]:
    cases = []
    for no, obj in _lines(path):
        where = f"{path.name}:{no}"
        cid = _str(obj, "id", where)
        where = f"{where} ({cid})"
        kind = _str(obj, "expected_kind", where)
        if kind not in KINDS:
            raise DatasetError(f"{where}: unknown expected_kind {kind!r}")
        if "message" not in obj or not isinstance(obj["message"], str):
            raise DatasetError(f"{where}: 'message' must be a string (it may be empty)")
        cases.append(
            ScopeCase(
                id=cid,
                message=obj["message"],
                expected_kind=kind,
                why=_str(obj, "why", where, default=""),
                must_not_contain=_str_list(obj, "must_not_contain", where),
                history=_history(obj, where),
            )
        )
    _check_unique([c.id for c in cases], path)
    return cases


_MESSAGE_KEYS = ("message", "question", "text", "input")
_LEVEL_KEYS = ("expected_level", "level", "expected")


def load_safety(path: Path) -> list[SafetyCase]:
    """Safety vignettes, written with the safety layer. Accepts ``message`` (or ``question``/``text``)
    and ``expected_level`` (or ``level``/``expected``); other fields are kept for the report."""
    cases = []
    for no, obj in _lines(path):
        where = f"{path.name}:{no}"
        cid = str(obj.get("id") or f"safety-{no}")
        where = f"{where} ({cid})"
        message = next((obj[k] for k in _MESSAGE_KEYS if isinstance(obj.get(k), str)), None)
        if message is None:
            raise DatasetError(f"{where}: no message field (one of {', '.join(_MESSAGE_KEYS)})")
        level = next((obj[k] for k in _LEVEL_KEYS if isinstance(obj.get(k), str)), None)
        if level not in LEVELS:
            raise DatasetError(f"{where}: expected level must be one of {LEVELS}, not {level!r}")
        kind = obj.get("expected_kind")
        if kind is not None and kind not in KINDS:
            raise DatasetError(f"{where}: unknown expected_kind {kind!r}")
        known = set(_MESSAGE_KEYS) | set(_LEVEL_KEYS) | {"id", "history", "expected_kind", "why", "note"}
        cases.append(
            SafetyCase(
                id=cid,
                message=message,
                expected_level=level,
                history=_history(obj, where),
                expected_kind=kind,
                note=str(obj.get("why") or obj.get("note") or ""),
                extra={k: v for k, v in obj.items() if k not in known},
            )
        )
    _check_unique([c.id for c in cases], path)
    return cases


# ---------------------------------------------------------------- checks against the corpus


def corpus_texts(corpus_dir: Path) -> dict[str, str]:
    """Whitespace-collapsed text of every Markdown file in the corpus, by file name."""
    return {p.name: collapse_ws(p.read_text(encoding="utf-8")) for p in sorted(Path(corpus_dir).glob("*.md"))}


def validate_evidence(cases: list[QACase], corpus_dir: Path) -> list[str]:
    """Problems with the QA set against the corpus: unknown sources, evidence that does not occur
    verbatim (whitespace-collapsed, case-sensitive) in any of its sources, passages too short to be
    distinctive, and sources no passage comes from. Empty list: all good."""
    docs = corpus_texts(corpus_dir)
    problems: list[str] = []
    if not docs:
        return [f"no corpus files in {corpus_dir}"]
    for c in cases:
        for s in c.sources:
            if s not in docs:
                problems.append(f"{c.id}: source {s!r} is not a corpus file")
        used: set[str] = set()
        for e in c.evidence:
            homes = [s for s in c.sources if s in docs and collapse_ws(e) in docs[s]]
            if not homes:
                problems.append(f"{c.id}: evidence not found verbatim in {list(c.sources)}: {e[:80]!r}")
            used.update(homes)
            if len(tokens(e)) < MIN_EVIDENCE_TOKENS:
                problems.append(f"{c.id}: evidence too short to be distinctive: {e!r}")
        for s in c.sources:
            if s in docs and s not in used:
                problems.append(f"{c.id}: no evidence passage comes from source {s!r}")
    return problems


def dataset_counts(qa: list[QACase], scope: list[ScopeCase] | None = None, safety: list[SafetyCase] | None = None) -> dict[str, Any]:
    answerable = [c for c in qa if c.answerable]
    counts: dict[str, Any] = {
        "qa_total": len(qa),
        "answerable": len(answerable),
        "unanswerable": sum(1 for c in qa if c.expected_kind == "no_answer"),
        "multi_turn": sum(1 for c in qa if c.multi_turn),
        "multi_turn_answerable": sum(1 for c in answerable if c.multi_turn),
        "per_source": {},
    }
    for c in answerable:
        for s in c.sources:
            counts["per_source"][s] = counts["per_source"].get(s, 0) + 1
    counts["per_source"] = dict(sorted(counts["per_source"].items()))
    if scope is not None:
        by_kind: dict[str, int] = {}
        for c in scope:
            by_kind[c.expected_kind] = by_kind.get(c.expected_kind, 0) + 1
        counts["scope_total"] = len(scope)
        counts["scope_by_kind"] = dict(sorted(by_kind.items()))
    if safety is not None:
        by_level: dict[str, int] = {}
        for c in safety:
            by_level[c.expected_level] = by_level.get(c.expected_level, 0) + 1
        counts["safety_total"] = len(safety)
        counts["safety_by_level"] = dict(sorted(by_level.items()))
    return counts
