"""The answering pipeline as a LangChain runnable: validate -> safety -> retrieve -> compose.

Each step takes and returns a ``Turnstate``; a step that settles the answer (bad input, red flag,
off-topic) sets ``result`` and the later steps pass it through untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableLambda

from .results import AnswerResult, SafetyResult, Turn

if TYPE_CHECKING:
    from .api import Assistant


@dataclass
class Turnstate:
    message: Any
    history: tuple[Turn, ...] = ()
    text: str = ""
    safety: SafetyResult = field(default_factory=SafetyResult)
    query: Any = None
    retrieved: Any = None
    result: AnswerResult | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)


def _as_state(inp: Any) -> Turnstate:
    if isinstance(inp, Turnstate):
        return inp
    if isinstance(inp, dict):
        history = tuple(t for t in (Turn.coerce(h) for h in inp.get("history") or ()) if t)
        return Turnstate(message=inp.get("question", inp.get("message")), history=history)
    return Turnstate(message=inp)


def _timed(name: str, fn):
    def step(state: Any) -> Turnstate:
        state = _as_state(state)
        if state.result is not None:
            return state
        t = time.perf_counter()
        out = fn(state)
        state.timings_ms[name] = (time.perf_counter() - t) * 1000
        return out

    return RunnableLambda(step, name=name)


def build_chain(bot: "Assistant") -> Runnable:
    """``{"question": str, "history": [...]}`` (or a bare string) in, ``AnswerResult`` out."""

    def finish(state: Turnstate) -> AnswerResult:
        result = state.result
        if result is None:
            raise RuntimeError("pipeline ended without a result")
        result.timings_ms = {**state.timings_ms, "total": (time.perf_counter() - state.started) * 1000}
        return result

    return (
        _timed("validate", bot.step_validate)
        | _timed("safety", bot.step_safety)
        | _timed("retrieve", bot.step_retrieve)
        | _timed("compose", bot.step_compose)
        | RunnableLambda(finish, name="result")
    ).with_config(run_name="backpain_answer")
