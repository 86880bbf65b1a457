"""Typed results of the public API; ``to_dict()`` is the stable JSON shape other tools depend on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Kind = Literal["answer", "no_answer", "red_flag", "out_of_scope", "invalid_input"]
Level = Literal["none", "urgent", "emergency"]


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str

    @classmethod
    def coerce(cls, item: object) -> "Turn | None":
        """Accept dicts (OpenAI/Gradio style, content as str or list of blocks) or Turns; drop anything else."""
        if isinstance(item, Turn):
            return item
        if not isinstance(item, dict):
            return None
        role = item.get("role")
        content = item.get("content")
        if isinstance(content, list):
            content = " ".join(
                b.get("text", "") if isinstance(b, dict) else str(b) for b in content
            )
        if role not in ("user", "assistant") or not isinstance(content, str):
            return None
        return cls(role=role, content=content)


@dataclass(frozen=True)
class SafetyReason:
    category: str
    level: Level
    matched: str
    detector: Literal["lexicon", "learned", "history"] = "lexicon"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.category}: \u201c{self.matched}\u201d"


@dataclass(frozen=True)
class SafetyResult:
    level: Level = "none"
    reasons: tuple[SafetyReason, ...] = ()
    info_request: bool = False
    # urgent, and an emergency was likely but not certain: the reply lists the signs to check now
    # (not in to_dict: the documented JSON shape stays {"level", "reasons"})
    unsure: bool = False

    @property
    def flagged(self) -> bool:
        return self.level != "none"

    def to_dict(self) -> dict:
        return {"level": self.level, "reasons": [str(r) for r in self.reasons]}


@dataclass(frozen=True)
class Context:
    chunk_id: str
    source: str
    title: str
    section: str
    text: str
    score: float

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "text": self.text,
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True)
class Citation:
    n: int
    title: str
    source: str
    section: str
    quote: str  # the sentences the answer used, as written in the source
    score: float
    passage: str = ""  # the whole passage they sit in, shown with the quote highlighted

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "title": self.title,
            "source": self.source,
            "section": self.section,
            "quote": self.quote,
            "passage": self.passage or self.quote,
            "score": round(float(self.score), 4),
        }


@dataclass
class AnswerResult:
    kind: Kind
    text: str
    citations: list[Citation] = field(default_factory=list)
    safety: SafetyResult = field(default_factory=SafetyResult)
    contexts: list[Context] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    # why an out_of_scope reply: "small_talk" (a greeting or thanks, answered in kind), "off_topic",
    # "near_topic" (another joint, a route, insurance: named in the text) or "not_a_doctor" (asked to
    # prescribe, diagnose or act as a clinician)
    reason: str = ""
    # the answer alone: the composed sentences, without the notes and the disclaimer around them
    # (what the evaluation searches for key facts, so boilerplate never counts as an answer)
    answer_text: str = ""

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "text": self.text,
            "answer_text": self.answer_text,
            "citations": [c.to_dict() for c in self.citations],
            "safety": self.safety.to_dict(),
            "contexts": [c.to_dict() for c in self.contexts],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
