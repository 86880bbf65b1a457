"""The red-flag rules (``data/red_flags.yaml``) compiled into regular expressions.

All medical vocabulary lives in the YAML file; this module only expands macros, compiles the
patterns and checks that the file is consistent, so a bad edit fails at start-up, not mid-answer.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..settings import DATA_DIR, parse_yaml

RULES_PATH = DATA_DIR / "red_flags.yaml"
LEVEL_RANK = {"none": 0, "urgent": 1, "emergency": 2}


def _compile(patterns: Sequence[str], macros: dict[str, str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    expanded = [_expand(p, macros) for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in expanded))


def _expand(pattern: str, macros: dict[str, str]) -> str:
    for _ in range(4):  # macros may use macros
        new = re.sub(r"%([A-Z_]+)%", lambda m: macros[m.group(1)], pattern)
        if new == pattern:
            break
        pattern = new
    return pattern


@dataclass
class Concept:
    id: str
    level: str
    comment: str
    label: str
    pattern: re.Pattern[str] | None
    benign: re.Pattern[str] | None
    unless: re.Pattern[str] | None
    requires: tuple[str, ...]
    history_is_risk: bool
    quote_context: str | None = None


@dataclass
class Rules:
    concepts: list[Concept]
    contexts: dict[str, re.Pattern[str]]
    idioms: re.Pattern[str] | None
    terminators: re.Pattern[str]
    list_continuation: re.Pattern[str]
    pseudo_negation: re.Pattern[str]
    negation_pre: re.Pattern[str]
    negation_post: re.Pattern[str]
    normal_finding: re.Pattern[str]
    negation_window: int
    post_negation_window: int
    historical: re.Pattern[str]
    resolution: re.Pattern[str]
    improving: re.Pattern[str]
    clearance: re.Pattern[str]
    clearance_negators: re.Pattern[str]
    experiencer: re.Pattern[str]
    first_person: re.Pattern[str]
    own_report: re.Pattern[str]
    carer: re.Pattern[str]
    professional: re.Pattern[str]
    under_care: re.Pattern[str]
    hypothetical: re.Pattern[str]
    definitional: re.Pattern[str]
    affirmation: re.Pattern[str]
    info_request: re.Pattern[str]
    fuzzy_vocabulary: tuple[str, ...]
    fuzzy_protected: frozenset[str]
    unit_min_words: int
    unit_max_clauses: int
    source: str = ""  # the file's text, so anything derived from it can tell when it changed
    # body sites away from the back, legs and trunk (hands, wrists, elbows), and the sites red flags
    # live in: the learned detector does not raise a clause that names only the former
    away_sites: re.Pattern[str] | None = None
    flag_sites: re.Pattern[str] | None = None
    both_sides: re.Pattern[str] | None = None  # what a bilateral_* concept needs the message to say


def load_rules(path: Path | None = None) -> Rules:
    """Compile the rules file; raises ValueError on an inconsistent file."""
    source = Path(path or RULES_PATH).read_text(encoding="utf-8")
    data = parse_yaml(source)
    macros = {k: str(v) for k, v in (data.get("macros") or {}).items()}
    sc = data["scoping"]

    def comp(key_or_list: Any) -> re.Pattern[str]:
        pats = key_or_list if isinstance(key_or_list, list) else [key_or_list]
        compiled = _compile([str(p) for p in pats], macros)
        assert compiled is not None
        return compiled

    concepts = []
    seen = set()
    for c in data["concepts"]:
        cid = str(c["id"])
        if cid in seen:
            raise ValueError(f"duplicate concept id {cid!r} in {path or RULES_PATH}")
        seen.add(cid)
        level = str(c["level"])
        if level not in ("urgent", "emergency"):
            raise ValueError(f"concept {cid!r}: level must be urgent or emergency")
        concepts.append(
            Concept(
                id=cid,
                level=level,
                comment=str(c.get("comment", "")),
                label=str(c.get("label", cid.replace("_", " "))),
                pattern=_compile(c.get("patterns") or [], macros),
                benign=_compile(c.get("benign") or [], macros),
                unless=_compile(c.get("unless") or [], macros),
                requires=tuple(c.get("requires") or ()),
                history_is_risk=bool(c.get("history_is_risk", False)),
                quote_context=c.get("quote_context"),
            )
        )
    contexts = {name: comp(pats) for name, pats in (data.get("contexts") or {}).items()}
    for c in concepts:
        for r in c.requires:
            if r not in contexts:
                raise ValueError(f"concept {c.id!r} requires unknown context {r!r}")
    units = data.get("units") or {}
    sites = data.get("body_sites") or {}
    return Rules(
        away_sites=_compile(sites.get("away") or [], macros),
        flag_sites=_compile(sites.get("red_flag") or [], macros),
        both_sides=_compile(sites.get("both_sides") or [], macros),
        concepts=concepts,
        contexts=contexts,
        idioms=_compile(data.get("idioms") or [], macros),
        terminators=comp(sc["terminators"]),
        list_continuation=comp(sc["list_continuation"]),
        pseudo_negation=comp(sc["pseudo_negation"]),
        negation_pre=comp(sc["negation_pre"]),
        negation_post=comp(sc["negation_post"]),
        normal_finding=comp(sc["normal_finding"]),
        negation_window=int(sc.get("negation_window", 6)),
        post_negation_window=int(sc.get("post_negation_window", 4)),
        historical=comp(sc["historical"]),
        resolution=comp(list(sc["resolution"]) + list(sc["clearance"])),
        improving=comp(sc["improving"]),
        clearance=comp(sc["clearance"]),
        clearance_negators=comp(sc["clearance_negators"]),
        experiencer=comp(sc["experiencer"]),
        first_person=comp(sc["first_person"]),
        own_report=comp(sc["own_report"]),
        carer=comp(sc["carer"]),
        professional=comp(sc["professional"]),
        under_care=comp(sc["under_care"]),
        hypothetical=comp(sc["hypothetical"]),
        definitional=comp(sc["definitional"]),
        affirmation=comp(sc["affirmation"]),
        info_request=comp(sc["info_request"]),
        fuzzy_vocabulary=tuple(str(w) for w in data.get("fuzzy_vocabulary") or ()),
        fuzzy_protected=frozenset(str(w) for w in data.get("fuzzy_protected") or ()),
        unit_min_words=int(units.get("min_words", 3)),
        unit_max_clauses=int(units.get("max_clauses", 16)),
        source=source,
    )


# Plain-language labels for the reply, filled from the rules (default file loaded lazily).
_LABELS: dict[str, str] = {}
_LABELS_LOCK = threading.Lock()


def label(category: str) -> str:
    """The plain words for a concept id, as the reply shows them."""
    with _LABELS_LOCK:
        if not _LABELS:
            try:
                _LABELS.update({c.id: c.label for c in load_rules().concepts})
            except Exception:  # pragma: no cover - the reply must never fail
                pass
        return _LABELS.get(category, category.replace("_", " "))


def register_labels(rules: Rules) -> None:
    with _LABELS_LOCK:
        _LABELS.update({c.id: c.label for c in rules.concepts})
